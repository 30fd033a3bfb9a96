"""The per-shard driver every frame stage shares: guarded per-video work, failure policy, atomic output.

A stage turns a sequence of work items (manifest entries, or the videos of an upstream shard) into
:class:`VideoResult` or :class:`VideoFailure` values, and :func:`write_shard` stores them: results go into
the shard, failures into the shard's failure report (``shard-K.failures.json`` beside it, and the shard's
``failures`` attribute). With ``strict`` the first failure raises :class:`StageError` and no file is left.
A shard in which no video could be processed is an error too.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from tqdm import tqdm

from .shards import ShardWriter, failures_name, write_failures

log = logging.getLogger("motionprep")


class StageError(RuntimeError):
    """A stage cannot complete; the message names the stage and the video (or shard)."""


@dataclass
class VideoResult:
    """One processed video, ready for :meth:`ShardWriter.add_video`."""

    video_id: str
    label: int
    split: str
    fps: float
    height: int
    width: int
    frames: Mapping[str, Sequence[Any]]
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class VideoFailure:
    video_id: str
    stage: str
    error: str


def guarded(stage: str, fn: Callable[..., VideoResult]) -> Callable[..., VideoResult | VideoFailure]:
    """Wrap ``fn(item, ...)`` so any exception becomes a :class:`VideoFailure` naming the video and stage.

    The item must have a ``video_id`` attribute. The wrapper is picklable (for joblib workers).
    """
    return functools.partial(_call_guarded, stage, fn)


def _call_guarded(stage: str, fn: Callable[..., VideoResult], item: Any, *args, **kwargs):
    try:
        return fn(item, *args, **kwargs)
    except Exception as exc:  # every failure of one video is recorded, never silently dropped
        msg = f"{type(exc).__name__}: {exc}".strip()
        return VideoFailure(getattr(item, "video_id", str(item)), stage, msg)


def write_shard(writer: ShardWriter, results: Iterable[VideoResult | VideoFailure], *, stage: str,
                strict: bool, total: int | None = None, upstream_failures: Iterable[Mapping] = (),
                progress: bool = True) -> dict:
    """Store ``results`` in ``writer`` and the failure report beside it; return a summary dict.

    Raises :class:`StageError` (and leaves no shard) in strict mode on the first failure, or when the shard
    would hold no video at all.
    """
    report_path = writer.path.with_name(failures_name_for(writer.path))
    failures = [dict(f) for f in upstream_failures]
    bar = tqdm(total=total, desc=f"{stage} {writer.path.name}", unit="video", disable=not progress,
               dynamic_ncols=True, leave=False)
    frames = 0
    try:
        for res in results:
            bar.update(1)
            if isinstance(res, VideoFailure):
                if strict:
                    raise StageError(f"{stage}: video {res.video_id}: {res.error}")
                log.warning("%s: video %s failed and is skipped: %s", stage, res.video_id, res.error)
                failures.append({"video_id": res.video_id, "stage": res.stage, "error": res.error})
                continue
            writer.add_video(res.video_id, res.label, res.split, res.fps, res.height, res.width, res.frames,
                             **res.fields)
            frames += len(next(iter(res.frames.values()))) if res.frames else 0
            bar.set_postfix(frames=frames)
        for f in failures:
            writer.add_failure(f["video_id"], f["stage"], f["error"])
        if writer.num_videos == 0:
            raise StageError(f"{stage}: shard {writer.path.name} has no readable video "
                             f"({len(failures)} failed; first: {failures[:1]})")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    write_failures(report_path, failures)
    return {"shard": str(writer.path), "videos": writer.num_videos, "frames": frames, "failures": len(failures)}


def failures_name_for(shard_path: Path) -> str:
    """``shard-00003.h5`` -> ``shard-00003.failures.json``."""
    stem = shard_path.name[:-3] if shard_path.name.endswith(".h5") else shard_path.name
    return f"{stem}.failures.json"


__all__ = ["StageError", "VideoResult", "VideoFailure", "guarded", "write_shard", "failures_name",
           "failures_name_for"]
