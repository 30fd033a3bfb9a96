"""CoViAR's uint8 storage encodings of motion vectors and residuals.

Motion vectors (pixels): clip to ``[-bound, bound]`` (bound 20), multiply by ``127.5 / bound``, truncate
toward zero (CoViAR's ``astype(np.int32)``), add 128: ``q`` in [1, 255], zero motion -> 128. Decoding
``(q - 128) * bound / 127.5`` is within ``bound / 127.5`` (0.157 px) of the clipped value.

Residuals (int, [-255, 255]): add 128 and clip to [0, 255]; decoding ``q - 128`` is exact for residuals in
[-128, 127].
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..core.config import ExtractMvConfig

BOUND = ExtractMvConfig().mv_bound     # the config's default (20 px, CoViAR)


def encode_mv(motion: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """Float motion in pixels (any shape) -> same-shape uint8 (CoViAR)."""
    v = np.clip(np.asarray(motion, np.float64), -bound, bound) * (127.5 / bound)
    return (np.trunc(v) + 128).astype(np.uint8)


def decode_mv(q: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """uint8 -> float32 pixels: ``(q - 128) * bound / 127.5``."""
    return (q.astype(np.float32) - 128) * np.float32(bound / 127.5)


@functools.lru_cache(maxsize=16)
def mv_lut(scale: int, bound: float = BOUND) -> tuple[np.ndarray, int]:
    """Lookup table for :func:`encode_mv_units`: (256,) uint8 and the index offset."""
    off = int(np.ceil(bound * scale))
    if 2 * off > 255:
        raise ValueError(f"bound {bound} at 1/{scale} pixel does not fit a 256-entry table")
    idx = np.arange(256) - off
    return encode_mv(np.minimum(idx, off) / scale, bound), off


def encode_mv_units(units: np.ndarray, scale: int, bound: float = BOUND, channels_last: bool = False,
                    out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 2) int16 motion in ``1/scale`` pixels -> (2, H, W) uint8 (or (H, W, 2) with ``channels_last``),
    equal to ``encode_mv(units_to_pixels(units, scale), bound)``. ``out``: a (2, H, W) uint8 array to write
    into.

    Two OpenCV passes and the channel split: ``units + offset`` saturated to uint8 (values below the table
    land on entry 0 = -bound, above it on 255; the table repeats +bound from ``2 * offset`` on), then a
    256-entry table lookup (:func:`mv_lut`).
    """
    lut, off = mv_lut(scale, bound)
    units = np.asarray(units, np.int16)
    q = cv2.LUT(cv2.add(units, (off, off, 0, 0), dtype=cv2.CV_8U), lut).reshape(units.shape)
    if channels_last:
        return q
    if out is None:
        out = np.empty((2, *units.shape[:-1]), np.uint8)
    cv2.extractChannel(q, 0, dst=out[0])
    cv2.extractChannel(q, 1, dst=out[1])
    return out


def dense_mv(q: np.ndarray, cell: int, height: int, width: int) -> np.ndarray:
    """Vectors stored per ``cell`` x ``cell`` pixels, ``(..., 2, ceil(H/cell), ceil(W/cell))`` (any dtype;
    the ``mv`` stream of an ``extract_mv`` shard, attribute ``grid``) -> the dense map
    ``(..., 2, height, width)``: each cell's value repeated over its pixels, the partial cells at the right
    and bottom edges cut. ``cell`` 0 or 1: returned unchanged (a dense stream)."""
    if cell in (0, 1):
        return q
    q = np.asarray(q)
    gh, gw = -(-height // cell), -(-width // cell)
    if q.shape[-2:] != (gh, gw):
        raise ValueError(f"{q.shape} is not a ({gh}, {gw}) grid of {cell}-pixel cells for {width}x{height}")
    return np.ascontiguousarray(q.repeat(cell, axis=-2)[..., :height, :].repeat(cell, axis=-1)[..., :width])


def encode_residual(res: np.ndarray) -> np.ndarray:
    """Integer residual -> uint8 ``clip(res + 128, 0, 255)``."""
    return np.clip(res.astype(np.int16) + 128, 0, 255).astype(np.uint8)


def encode_residual_of(frame: np.ndarray, prediction: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``encode_residual(frame - prediction)`` in one pass (uint8 inputs of the same shape); ``out``: an
    array of that shape to write into."""
    return cv2.addWeighted(frame, 1.0, prediction, -1.0, 128.0, dst=out, dtype=cv2.CV_8U)


def decode_residual(q: np.ndarray) -> np.ndarray:
    """uint8 -> int16 ``q - 128``."""
    return q.astype(np.int16) - 128


__all__ = ["encode_mv", "decode_mv", "mv_lut", "encode_mv_units", "dense_mv", "encode_residual", "encode_residual_of",
           "decode_residual"]
