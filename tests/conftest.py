"""Shared fixtures: tiny synthetic videos with known pixel content, written with real codecs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np
import pytest

from pipeline.media.videoio import write_video


def counter_frames(n: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Frames whose whole area has value ``(10 * i) % 256`` in red, a known colour in green and a ramp in blue,
    so the source frame shown at each output position can be read back exactly."""
    frames = []
    for i in range(n):
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 0] = (10 * i) % 256
        img[..., 1] = 200
        img[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
        frames.append(img)
    return frames


def write_timed_video(path: str | Path, frames: Sequence[np.ndarray], pts_ms: Sequence[int], codec: str = "ffv1",
                      pix_fmt: str = "bgr0") -> Path:
    """A lossless video whose frame ``k`` (RGB uint8) is shown at ``pts_ms[k]`` milliseconds (irregular gaps
    and repeated times allowed): the variable-rate sources of the tests. The container follows the suffix."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        s.time_base = s.codec_context.time_base = tb
        for img, t in zip(frames, pts_ms):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = t, tb
            for packet in s.encode(f):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    return Path(path)


@pytest.fixture
def make_video(tmp_path):
    """make_video(name, n, fps, codec="ffv1", height=48, width=64) -> path of a lossless counter video."""

    def _make(name: str, n: int, fps: float, codec: str = "ffv1", height: int = 48, width: int = 64):
        return write_video(tmp_path / name, counter_frames(n, height, width), fps, codec)

    return _make
