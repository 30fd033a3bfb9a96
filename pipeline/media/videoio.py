"""Writing video files with PyAV (used by ``make-demo``, the tests and the benchmarks)."""

from __future__ import annotations

import itertools
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping

import av
import numpy as np

# codec -> pixel format it is fed. libx264rgb (qp 0) and ffv1 are lossless: pixels come back exactly.
CODECS: Mapping[str, str] = {
    "libx264rgb": "rgb24",
    "ffv1": "bgr0",
    "libx264": "yuv420p",
    "mpeg4": "yuv420p",
    "mjpeg": "yuvj420p",
}


def ffmpeg_exe() -> str:
    """Path of an ffmpeg binary: the one shipped in the imageio-ffmpeg wheel (no system install needed)."""
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float | Fraction, codec: str = "libx264rgb",
                options: Mapping[str, str] | None = None) -> Path:
    """Encode (H, W, 3) RGB uint8 frames to ``path`` at a constant ``fps`` (12.5 is written exactly).

    ``libx264rgb`` (qp 0) and ``ffv1`` are lossless; ``libx264`` with ``options={"crf": "18"}`` gives
    ordinary lossy footage.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    opts = dict(options or {})
    if codec == "libx264rgb":
        opts.setdefault("qp", "0")
    if codec.startswith("libx264"):
        opts.setdefault("preset", "ultrafast" if codec == "libx264rgb" else "veryfast")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    h, w = first.shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, options=opts)
        stream.width, stream.height = w, h
        stream.pix_fmt = CODECS.get(codec, "yuv420p")
        for img in itertools.chain([first], it):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_h264(path: str | Path, frames: Iterable[np.ndarray], fps: float | Fraction, crf: int = 18,
               preset: str = "veryfast") -> Path:
    """Encode (H, W, 3) RGB uint8 frames to an ordinary lossy H.264 (yuv420p) file with the ffmpeg binary,
    one fresh process per file, written atomically. Reproducible: the same frames give the same file. (In a
    long-lived process, libx264 through PyAV gave different bitstreams of the same frames from run to run
    for 2 of the 40 demo videos, with one thread or many; a fresh encoder process did not.)"""
    from ..core.atomic import atomic_path

    path = Path(path)
    frames = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    h, w = frames[0].shape[:2]
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(rate), "-i", "-", "-an", "-c:v", "libx264", "-preset", preset,
           "-crf", str(crf), "-pix_fmt", "yuv420p", "-threads", "1", "-f", "mp4"]
    with atomic_path(path) as tmp:
        proc = subprocess.run([*cmd, str(tmp)], input=b"".join(f.tobytes() for f in frames), capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{path}: ffmpeg failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return path


def set_rotation(src: str | Path, dst: str | Path, degrees: int) -> Path:
    """Copy ``src`` to ``dst`` (MP4/MOV) with a display-matrix rotation of ``degrees`` counter-clockwise,
    without re-encoding, the way phone footage carries its orientation."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", str(degrees), "-i", str(src),
           "-c", "copy", str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return Path(dst)
