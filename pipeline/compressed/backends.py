"""Decoders that yield, for every frame of a video, its picture type, RGB pixels and motion-vector table.

- ``pyav`` (default): FFmpeg through PyAV with ``flags2=+export_mvs``; vectors come from the frame's
  ``MOTION_VECTORS`` side data.
- ``mvextractor``: the ``motion-vector-extractor`` package (``mvextractor.videocap.VideoCap``, its own
  bundled FFmpeg), a second, independent reading used as a cross-check. Install it with
  ``pip install --no-deps motion-vector-extractor`` (its declared ``opencv-python`` dependency would
  replace the ``opencv-contrib-python-headless`` build this project uses; the wheel bundles its own OpenCV
  libraries and does not need it). Its vectors and pixels equal PyAV's exactly (at 340x256 too, measured with
  motion-vector-extractor 2.0.0; an earlier difference in the last ``width % 16`` columns came from PyAV's
  ``rgba`` conversion, no longer used).

Frames are (H, W, 3) uint8 RGB, converted by swscale on the calling thread (``threads=1``: PyAV's default,
0 = automatic, gives every frame's new swscale context its own thread pool, which cost 0.2 ms of CPU a frame
at 340x256 here, 0.67 against 0.46 ms, measured). (PyAV's ``rgba`` conversion is not used: at 340x256 its last 4 columns,
``width % 8``, came back as garbage that changed from run to run, measured with PyAV 18.1; ``rgb24`` is
deterministic.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import InputError, MotionprepError, VideoError

# FFmpeg exports motion vectors only from its mpegvideo-family decoders and H.264.
MV_CODECS = frozenset({"mpeg4", "h264", "mpeg1video", "mpeg2video", "h263", "h263p", "h263i", "flv",
                       "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "msmpeg4", "wmv1", "wmv2"})
BACKENDS = ("pyav", "mvextractor")
# FFmpeg's AVPictureType values (PyAV >= 14 may give plain ints)
_PICT_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


class BackendError(MotionprepError, RuntimeError):
    """A decoder backend is unavailable (a setup problem: it stops the stage, it is not one video's fault)."""


class NoMotionVectorsError(InputError):
    """The video's codec does not carry (or FFmpeg does not export) motion vectors."""


@dataclass
class DecodedFrame:
    pict_type: str        # "I", "P", "B", ... as the decoder reports it
    image: np.ndarray     # (H, W, 3) uint8 RGB
    table: np.ndarray     # (N, 8) int32 vector table (pipeline.compressed.motion.COLUMNS)
    has_side_data: bool   # the decoder attached motion-vector side data to this frame


def _check_codec(codec: str, path: Path) -> None:
    if codec not in MV_CODECS:
        raise NoMotionVectorsError(
            f"{path.name}: codec {codec!r} exports no motion vectors (FFmpeg exports them for MPEG-4 Part 2, "
            f"MPEG-1/2, H.263 and H.264); re-encode it with `prep-cli reencode` first")


def probe_codec(path: str | Path) -> tuple[str, int]:
    """(codec name, frame count from the container or 0) of the first video stream."""
    import av
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise VideoError(f"{Path(path).name}: no video stream")
        s = c.streams.video[0]
        return s.codec_context.name, int(s.frames or 0)


def iter_pyav(path: str | Path, threads: int = 1) -> Iterator[DecodedFrame]:
    """Decode with PyAV (``export_mvs``); one :class:`DecodedFrame` per frame in display order."""
    import av

    path = Path(path)
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(f"{path.name}: no video stream")
        stream = container.streams.video[0]
        _check_codec(stream.codec_context.name, path)
        stream.codec_context.options = {"flags2": "+export_mvs"}
        if threads == 1:
            stream.thread_type = "NONE"
        stream.codec_context.thread_count = threads
        for frame in container.decode(stream):
            yield frame_of(frame)


def frame_of(frame) -> DecodedFrame:
    """A PyAV frame decoded with ``export_mvs`` as a :class:`DecodedFrame` (RGB by swscale on this thread).

    The side data is read through a container made here, not ``frame.side_data``: that one is cached on the
    frame and refers back to it, a cycle only the garbage collector frees. PyAV allocates each frame one
    decode call ahead, so the frame is already in an older generation when it arrives, and the stage used to
    keep every frame of its shard (0.26 MB a frame at 340x256, 66 MB a 10 s video: BENCHMARKS.md,
    "extract_mv memory"). Without the cycle a frame is freed as soon as the caller drops it."""
    from av.sidedata.sidedata import SideDataContainer

    from .motion import mv_table

    sd = SideDataContainer(frame).get("MOTION_VECTORS")
    table = mv_table(sd.to_ndarray()) if sd is not None else np.zeros((0, 8), np.int32)
    pt = frame.pict_type
    name = _PICT_TYPES.get(int(pt), "?") if isinstance(pt, int) else str(getattr(pt, "name", pt))
    return DecodedFrame(name, frame.to_ndarray(format="rgb24", threads=1), table, sd is not None)


def mvextractor_available() -> tuple[bool, str]:
    """(True, "") when ``mvextractor`` imports, else (False, the reason)."""
    try:
        from mvextractor.videocap import VideoCap  # noqa: F401
    except Exception as exc:  # ImportError, or a broken shared library
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def iter_mvextractor(path: str | Path) -> Iterator[DecodedFrame]:
    """Decode with mv-extractor; same output as :func:`iter_pyav`."""
    import cv2

    ok, why = mvextractor_available()
    if not ok:
        raise BackendError("backend 'mvextractor' needs the motion-vector-extractor package: install it with "
                           f"`pip install --no-deps motion-vector-extractor` ({why})")
    from mvextractor.videocap import VideoCap

    path = Path(path)
    _check_codec(probe_codec(path)[0], path)
    cap = VideoCap()
    if not cap.open(str(path)):
        raise VideoError(f"{path.name}: mv-extractor cannot open the file")
    try:
        while True:
            ret, frame, mvs, ftype = cap.read()[:4]
            if not ret:
                break
            mvs = np.asarray(mvs, np.int32).reshape(-1, 10)
            table = np.ascontiguousarray(mvs[:, [0, 1, 2, 5, 6, 7, 8, 9]])
            yield DecodedFrame(str(ftype), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), table, len(table) > 0)
    finally:
        cap.release()


def iter_frames(path: str | Path, backend: str = "pyav") -> Iterator[DecodedFrame]:
    if backend == "pyav":
        return iter_pyav(path)
    if backend == "mvextractor":
        return iter_mvextractor(path)
    raise BackendError(f"unknown motion-vector backend {backend!r}; allowed: {BACKENDS}")


__all__ = ["MV_CODECS", "BACKENDS", "BackendError", "NoMotionVectorsError", "DecodedFrame", "frame_of", "iter_pyav",
           "iter_mvextractor", "iter_frames", "mvextractor_available", "probe_codec"]
