"""The errors a user sees. Each is a :class:`MotionprepError`; ``prep-cli`` prints its one-line message and
exits with status 2. Any other exception is a bug in motionprep and stops the command with a traceback.

:class:`InputError` is the one kind a stage records as a video's failure (in ``shard-K.failures.json``) and
goes on from: the video, frame folder or upstream entry itself cannot be processed. Code that finds a bad
input raises an :class:`InputError` subclass naming the video; nothing else is ever recorded as data.
"""

from __future__ import annotations


class MotionprepError(Exception):
    """A user-facing error: bad configuration, manifest, shard, or a stage that cannot complete."""


class ConfigError(MotionprepError, ValueError):
    """A configuration value is missing, of the wrong type or outside its allowed values."""


class ManifestError(MotionprepError, ValueError):
    """A manifest (or the split files it is built from) is malformed or does not match the files on disk."""


class ShardError(MotionprepError, ValueError):
    """A shard file is missing, malformed or does not match what the caller expects."""


class StageError(MotionprepError, RuntimeError):
    """A stage cannot complete; the message names the stage and the video (or shard)."""


class InputError(MotionprepError, ValueError):
    """One input (a video file, a frame folder, an upstream video) cannot be processed. A stage records
    it as that video's failure and goes on with the others (or stops, in strict mode)."""


class VideoError(InputError):
    """A video cannot be decoded (corrupt, no video stream, zero frames, unsupported codec)."""


class CheckpointError(MotionprepError, ValueError):
    """A checkpoint cannot be used: missing, not a motionprep checkpoint, from a newer format version, or
    holding pickled Python objects (never unpickled)."""


__all__ = ["CheckpointError", "MotionprepError", "ConfigError", "ManifestError", "ShardError", "StageError", "InputError",
           "VideoError"]
