"""Residual frames (Tao et al., eq. 1): ``ResFrame_i = |F_i - F_i+1|`` on RGB, or a signed variant.

:func:`resframes_from_jpeg` is the one function both the ``resframe`` stage (which stores its output)
and a training loader (which may compute residual frames on the fly from the JPEGs of an RGB shard) call, so
both give identical arrays (and identical tensors after ``torch.from_numpy``). When the target size is the
stored size divided by exactly 2, 4 or 8 (170x128 from the 340x256 RGB shards), it decodes the JPEGs
directly at that size with libjpeg's DCT scaling, which costs less than a full-size decode; otherwise it
decodes at full size and resizes with INTER_AREA. :func:`resframes_from_rgb` works on frames already decoded
(full size, INTER_AREA); its output differs slightly from the DCT-scaled one (a different downscaling
filter, mean absolute difference about 2 levels), so a loader must use the function the shards were made
with (the stream attribute ``resize`` names it).

Encodings (uint8): absolute: ``|F_i - F_i+1|`` exactly (0..255). Signed: ``(F_i - F_i+1 + 256) >> 1``
(0..255, zero difference -> 128; decode ``2 q - 256``, within 1 level).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import simplejpeg

from ..core.config import ResframeConfig

SIZE = ResframeConfig().size          # the config's default (170x128, residual frames 4.3)

DCT_SCALED = "libjpeg DCT scaling (decode at 1/2, 1/4 or 1/8 size)"
AREA = "full decode, OpenCV INTER_AREA"


def resize_frames(frames: Sequence[np.ndarray] | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size[1], size[0], 3) uint8 with OpenCV INTER_AREA (INTER_LINEAR to enlarge);
    frames already at ``size`` are returned unchanged."""
    w, h = int(size[0]), int(size[1])
    out = np.empty((len(frames), h, w, 3), np.uint8)
    for i, f in enumerate(frames):
        if f.shape[0] == h and f.shape[1] == w:
            out[i] = f
        else:
            mode = cv2.INTER_AREA if (w <= f.shape[1] and h <= f.shape[0]) else cv2.INTER_LINEAR
            cv2.resize(np.ascontiguousarray(f), (w, h), dst=out[i], interpolation=mode)
    return out


def resframes(frames: np.ndarray, signed: bool = False) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N-1, H, W, C) uint8 residual frames (N < 2 gives an empty array)."""
    frames = np.asarray(frames, np.uint8)
    if len(frames) < 2:
        return np.zeros((0, *frames.shape[1:]), np.uint8)
    a, b = frames[:-1], frames[1:]
    if not signed:
        return cv2.absdiff(a.reshape(len(a), -1), b.reshape(len(b), -1)).reshape(a.shape)
    d = a.astype(np.int16) - b.astype(np.int16)
    return ((d + 256) >> 1).astype(np.uint8)


def resframes_from_rgb(frames: Sequence[np.ndarray] | np.ndarray, size: tuple[int, int] | None = SIZE,
                       signed: bool = False, chunk: int = 16) -> np.ndarray:
    """Decoded RGB frames (N, H, W, 3) uint8 -> residual frames (N-1, size[1], size[0], 3) uint8:
    resize (when ``size`` is given, as :func:`resize_frames`), then :func:`resframes`.

    Works through ``chunk`` frames at a time in a small buffer that stays in the CPU cache (each frame is
    resized once); the result equals ``resframes(resize_frames(frames, size), signed)``.
    """
    if size is None:
        return resframes(np.asarray(frames, np.uint8), signed)

    def load(a: int, b: int, dst: np.ndarray) -> None:
        dst[...] = resize_frames(frames[a:b], size)

    return _chunked(len(frames), size, signed, chunk, load)


def _chunked(n: int, size: tuple[int, int], signed: bool, chunk: int, load) -> np.ndarray:
    """Residual frames of ``n`` frames that ``load(a, b, dst)`` writes (frames a..b-1, at ``size``) into
    ``dst``, ``chunk`` at a time through a buffer that stays in the CPU cache; each frame is loaded once."""
    w, h = int(size[0]), int(size[1])
    out = np.empty((max(n - 1, 0), h, w, 3), np.uint8)
    if n < 2:
        return out
    buf = np.empty((chunk + 1, h, w, 3), np.uint8)
    load(0, 1, buf[:1])
    for s in range(0, n - 1, chunk):
        m = min(chunk, n - 1 - s)
        load(s + 1, s + 1 + m, buf[1:m + 1])
        out[s:s + m] = resframes(buf[:m + 1], signed)
        buf[0] = buf[m]
    return out


def jpeg_scale(jpeg: bytes | np.ndarray, size: tuple[int, int]) -> int:
    """The factor f in (1, 2, 4, 8) with stored size == ``size`` * f exactly (``size`` = (width, height)),
    read from the JPEG header; 0 when there is none (then a full decode and a resize are needed)."""
    h, w = simplejpeg.decode_jpeg_header(jpeg)[:2]
    for f in (1, 2, 4, 8):
        if (w, h) == (size[0] * f, size[1] * f):
            return f
    return 0


def decode_at(jpegs: Sequence[bytes | np.ndarray], size: tuple[int, int],
              out: np.ndarray | None = None) -> np.ndarray:
    """JPEG frames (all of one size) -> (N, size[1], size[0], 3) uint8 RGB: decoded directly at ``size``
    with libjpeg's DCT scaling when the stored size is exactly 1, 2, 4 or 8 times ``size`` (no resize
    pass), else decoded at full size and resized like :func:`resize_frames` (INTER_AREA). ``out``: an
    array of that shape to fill."""
    w, h = int(size[0]), int(size[1])
    if out is None:
        out = np.empty((len(jpegs), h, w, 3), np.uint8)
    if not len(jpegs):
        return out
    if jpeg_scale(jpegs[0], (w, h)):
        for i, b in enumerate(jpegs):
            img = simplejpeg.decode_jpeg(b, "RGB", min_height=h, min_width=w, buffer=out[i])
            if img.shape != (h, w, 3):
                raise ValueError(f"JPEG {i} decodes to {img.shape}, not ({h}, {w}, 3): frames of mixed sizes")
        return out
    from ..media.jpeg import decode
    for i, b in enumerate(jpegs):
        out[i] = resize_frames([decode(b)], (w, h))[0]
    return out


def resframes_from_jpeg(jpegs: Sequence[bytes | np.ndarray], size: tuple[int, int] = SIZE,
                        signed: bool = False, chunk: int = 16) -> np.ndarray:
    """JPEG frames of one video or clip (N) -> residual frames (N-1, size[1], size[0], 3) uint8:
    :func:`decode_at` ``size``, then :func:`resframes`, ``chunk`` frames at a time in a buffer that
    stays in the CPU cache. The function the ``resframe`` stage and on-the-fly loaders share."""
    return _chunked(len(jpegs), size, signed, chunk, lambda a, b, dst: decode_at(jpegs[a:b], size, dst))


def resize_method(jpeg: bytes | np.ndarray, size: tuple[int, int]) -> str:
    """How :func:`decode_at` brings a JPEG of this size to ``size``: :data:`DCT_SCALED` or :data:`AREA`."""
    return DCT_SCALED if jpeg_scale(jpeg, size) else AREA


def decode_signed(q: np.ndarray) -> np.ndarray:
    """Signed encoding -> int16 difference ``2 q - 256`` (within 1 of ``F_i - F_i+1``)."""
    return q.astype(np.int16) * 2 - 256


__all__ = ["resize_frames", "resframes", "resframes_from_rgb", "jpeg_scale", "decode_at",
           "resframes_from_jpeg", "resize_method", "decode_signed", "DCT_SCALED", "AREA"]
