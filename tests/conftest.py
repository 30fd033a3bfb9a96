"""Shared fixtures: tiny synthetic videos with known pixel content, written with real codecs."""

from __future__ import annotations

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


@pytest.fixture
def make_video(tmp_path):
    """make_video(name, n, fps, codec="ffv1", height=48, width=64) -> path of a lossless counter video."""

    def _make(name: str, n: int, fps: float, codec: str = "ffv1", height: int = 48, width: int = 64):
        return write_video(tmp_path / name, counter_frames(n, height, width), fps, codec)

    return _make
