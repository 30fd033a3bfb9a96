"""Tiny synthetic videos with a known global translation, for the compressed-domain tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.config import ReencodeConfig
from pipeline.media.videoio import write_video

W, H = 96, 64          # 6 x 4 macroblocks
MARGIN = 24            # interior: pixels at least this far from every border


def _field(height: int, width: int, cell: int, channels: int, rng) -> np.ndarray:
    small = rng.random((height // cell + 2, width // cell + 2, channels)).astype(np.float32)
    big = cv2.resize(small, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return big.reshape(big.shape[0], big.shape[1], channels)[cell:cell + height, cell:cell + width]


def texture(height: int, width: int, seed: int = 0, cell: int = 4) -> np.ndarray:
    """Smooth random RGB texture: luminance features about ``cell`` pixels wide plus colour that varies
    4x more slowly (like camera footage, whose chroma 4:2:0 subsampling then loses little)."""
    rng = np.random.default_rng(seed)
    luma = _field(height, width, cell, 1, rng) * 200 + 28
    chroma = (_field(height, width, 4 * cell, 3, rng) - 0.5) * 60
    return np.clip(luma + chroma, 0, 255).astype(np.uint8)


def translation_frames(n: int, dx: float, dy: float = 0.0, height: int = H, width: int = W,
                       seed: int = 0, cell: int = 12) -> list[np.ndarray]:
    """Frames of a texture whose content moves by (dx, dy) pixels per frame (multiples of 1/2):
    rendered at twice the size, shifted by whole pixels there and halved with INTER_AREA."""
    pad = int(2 * (abs(dx) + abs(dy)) * n) + 8
    big = texture(2 * height + 2 * pad, 2 * width + 2 * pad, seed, cell)
    frames = []
    for t in range(n):
        ox, oy = int(round(2 * dx * t)), int(round(2 * dy * t))
        crop = big[pad - oy:pad - oy + 2 * height, pad - ox:pad - ox + 2 * width]
        frames.append(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))
    return frames


def small_cfg(width: int = W, height: int = H, **kw) -> ReencodeConfig:
    return ReencodeConfig(size=(width, height), **kw)


def write_translation(path: Path, n: int, dx: float, dy: float = 0.0, codec: str = "ffv1", fps: float = 25.0,
                      **kw) -> Path:
    return write_video(path, translation_frames(n, dx, dy, **kw), fps, codec)
