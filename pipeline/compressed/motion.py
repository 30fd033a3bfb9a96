"""Motion vectors as exported by decoders -> dense per-pixel maps, and their accumulation within a GOP.

A *vector table* is an ``(N, 8)`` int32 array, one row per block, columns :data:`COLUMNS`:
``source`` (-1: past reference, +1: future reference), block ``w``, ``h`` (16 or 8 in MPEG-4 Part 2,
4..16 in H.264), block centre ``dst_x``, ``dst_y`` in the current frame, ``motion_x``, ``motion_y`` and
``motion_scale`` (2 for MPEG-4 half-pel, 4 for quarter-pel). The motion in pixels is
``motion / motion_scale = src - dst`` (see the package docstring for the sign convention).

Internally motion fields are ``(H, W, 2)`` int16 arrays in units of ``1/scale`` pixel ("units"): exact,
compact and directly usable as OpenCV remap offsets. :func:`dense_motion` gives the public float view,
``(2, H, W)`` float32 pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..core.errors import InputError

COLUMNS = ("source", "w", "h", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale")


class MotionError(InputError):
    """A vector table that cannot be turned into a past-reference motion map."""


def mv_table(records: np.ndarray | None) -> np.ndarray:
    """An ``(N, 8)`` int32 vector table from PyAV's structured ``MotionVectors.to_ndarray()`` records
    (fields source, w, h, src_x, src_y, dst_x, dst_y, flags, motion_x, motion_y, motion_scale)."""
    if records is None or len(records) == 0:
        return np.zeros((0, 8), np.int32)
    out = np.empty((len(records), 8), np.int32)
    for j, c in enumerate(COLUMNS):
        out[:, j] = records[c]
    return out


def table_scale(table: np.ndarray) -> int:
    """The largest ``motion_scale`` of a table (1 when it is empty)."""
    return int(table[:, 7].max()) if len(table) else 1


def block_grid(table: np.ndarray, height: int, width: int, scale: int = 2) -> tuple[np.ndarray, int]:
    """The vectors on a grid of ``g``-pixel cells: ``(ceil(H/g), ceil(W/g), 2)`` int16 units and ``g``.

    ``g`` is the gcd of the block sizes and positions (8 or 16 for MPEG-4). Vectorised: one fancy-indexing
    assignment per cell offset inside a block (at most (16/g)^2), never a Python loop per vector. Cells no
    vector covers (intra-coded macroblocks) are 0. Raises :class:`MotionError` for future-reference
    (B-frame) vectors and for vectors finer than ``1/scale``.
    """
    if len(table) == 0:
        return np.zeros((math.ceil(height / 16), math.ceil(width / 16), 2), np.int16), 16
    t = np.asarray(table, np.int32)
    if t[:, 0].max() > 0:
        raise MotionError("motion vectors reference a future frame (B-frame); re-encode without B-frames")
    w, h, cx, cy, mx, my, sc = t[:, 1:].T
    if sc.min() == scale and sc.max() == scale:          # the usual case: units as exported
        ux, uy = mx, my
    else:
        if np.any(sc <= 0) or np.any(scale % sc):
            raise MotionError(f"motion_scale {sorted(set(sc.tolist()))} does not divide the field scale {scale}")
        ux, uy = mx * (scale // sc), my * (scale // sc)
    x0, y0 = cx - w // 2, cy - h // 2
    # gcd of the sizes, positions and 16: a power of two, the lowest bit set in any of them
    bits = int(np.bitwise_or.reduce(np.concatenate([w, h, x0, y0]))) | 16
    g = bits & -bits
    gh, gw = math.ceil(height / g), math.ceil(width / g)
    grid = np.zeros((gh, gw, 2), np.int16)
    bx, by = x0 // g, y0 // g
    vec = np.stack([ux, uy], axis=1)
    for oy in range(int(h.max()) // g):
        for ox in range(int(w.max()) // g):
            yy, xx = by + oy, bx + ox
            ok = (yy >= 0) & (yy < gh) & (xx >= 0) & (xx < gw) & (h > oy * g) & (w > ox * g)
            grid[yy[ok], xx[ok]] = vec[ok]
    return grid, g


def expand_grid(grid: np.ndarray, g: int, height: int, width: int, contiguous: bool = True) -> np.ndarray:
    """Cells of ``g`` pixels -> ``(height, width, C)`` (each cell's value repeated over its pixels).
    ``contiguous=False`` may return a row-strided view (fine for OpenCV, saves a copy)."""
    if g == 1:
        out = grid[:height, :width]
    else:
        gh, gw = grid.shape[:2]
        full = cv2.resize(grid, (gw * g, gh * g), interpolation=cv2.INTER_NEAREST)
        out = full.reshape(gh * g, gw * g, -1)[:height, :width]
    return np.ascontiguousarray(out) if contiguous else out


def dense_units(table: np.ndarray, height: int, width: int, scale: int = 2) -> np.ndarray:
    """Fill every block with its vector: ``(height, width, 2)`` int16 ``[dx, dy]`` in ``1/scale`` pixels
    (see :func:`block_grid`; 0 where no vector covers a pixel)."""
    grid, g = block_grid(table, height, width, scale)
    return expand_grid(grid, g, height, width)


def dense_motion(table: np.ndarray, height: int, width: int) -> np.ndarray:
    """Dense motion map of one P-frame: ``(2, height, width)`` float32 pixels ``[dx, dy]``
    (``motion / motion_scale``; 0 where no vector covers a pixel)."""
    s = table_scale(table)
    return units_to_pixels(dense_units(table, height, width, s), s)


def units_to_pixels(units: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, 2) int units -> (2, H, W) float32 pixels."""
    return np.ascontiguousarray(units.transpose(2, 0, 1), dtype=np.float32) / np.float32(scale)


def pixels_to_units(motion: np.ndarray, scale: int) -> np.ndarray:
    """(2, H, W) float pixels (multiples of 1/scale) -> (H, W, 2) int16 units; ValueError otherwise."""
    u = np.rint(np.asarray(motion, np.float64) * scale)
    if not np.array_equal(u, np.asarray(motion, np.float64) * scale):
        raise MotionError(f"motion is not a multiple of 1/{scale} pixel")
    return np.ascontiguousarray(u.transpose(1, 2, 0)).astype(np.int16)


_GRIDS: dict[tuple[int, int, int], np.ndarray] = {}


def unit_grid(height: int, width: int, scale: int) -> np.ndarray:
    """``scale * (x, y)`` for every pixel: (H, W, 2) int16, cached per size (read-only)."""
    key = (height, width, scale)
    if key not in _GRIDS:
        x, y = np.meshgrid(np.arange(width) * scale, np.arange(height) * scale)
        g = np.stack([x, y], axis=-1).astype(np.int16)
        g.setflags(write=False)
        _GRIDS[key] = g
    return _GRIDS[key]


def accumulate_units(previous: np.ndarray | None, motion: np.ndarray, scale: int = 2) -> np.ndarray:
    """:func:`accumulate` on (H, W, 2) int16 unit fields (``scale`` a power of two)."""
    if previous is None:
        return motion.copy()
    h, w = motion.shape[:2]
    shift = scale.bit_length() - 1
    pos = unit_grid(h, w, scale) + motion + np.int16(scale // 2)
    np.right_shift(pos, shift, out=pos)          # floor((s*p + m + s/2) / s) = floor(p + m/s + 1/2)
    sampled = cv2.remap(previous, pos, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return motion + sampled


def pixel_grid(height: int, width: int) -> np.ndarray:
    """``(x, y)`` of every pixel: (H, W, 2) int16, cached per size (read-only)."""
    return unit_grid(height, width, 1)


def accumulate_cells(previous: np.ndarray | None, motion: np.ndarray, grid: np.ndarray, g: int,
                     scale: int = 2) -> np.ndarray:
    """:func:`accumulate_units` for a block motion field: equal to ``accumulate_units(previous, motion,
    scale)`` when ``motion == expand_grid(grid, g, H, W)`` ((H, W, 2) int16 units; ``grid`` (gh, gw, 2)
    int16 cells of ``g`` pixels, ``scale`` a power of two). Returns (H, W, 2) int16 units.

    The sample position ``floor((s*p + m + s/2) / s)`` is ``p + ((m + s/2) >> log2 s)``, an offset that is
    constant per cell: it is computed on the grid and expanded, so the per-pixel work is one add, one
    nearest-neighbour ``cv2.remap`` gather and one add.
    """
    if previous is None:
        return motion.copy()
    h, w = motion.shape[:2]
    shift = scale.bit_length() - 1
    offset = np.right_shift(grid + np.int16(scale // 2), shift).astype(np.int16)
    pos = cv2.add(pixel_grid(h, w), expand_grid(offset, g, h, w, contiguous=False))
    return cv2.add(motion, gather32(previous, pos))


def gather32(image: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``image[clamp(pos.y), clamp(pos.x)]`` for an (H, W, C) array with 4-byte pixels (int16 pairs, RGBX
    uint8): (h, w, C) of the same dtype. ``pos``: (h, w, 2) int16 ``[x, y]``.

    The pixels are gathered as one float32 channel (a nearest-neighbour ``cv2.remap``, about twice as fast
    as on 2 x int16 or 4 x uint8). Nearest-neighbour remap only copies them, and copies keep every bit
    pattern, NaNs included (tested)."""
    image = np.ascontiguousarray(image)
    if image.dtype.itemsize * image.shape[-1] != 4:
        raise ValueError(f"gather32 needs 4-byte pixels, got {image.shape[-1]} x {image.dtype}")
    flat = image.view(np.float32).reshape(image.shape[:2])
    out = cv2.remap(flat, pos, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(*out.shape, 1).view(image.dtype)


def accumulate(previous: np.ndarray | None, motion: np.ndarray, scale: int = 2) -> np.ndarray:
    """Trace a P-frame's motion back to its GOP's I-frame (CoViAR's accumulated vectors).

    ``previous``: the accumulated map of the previous frame, (2, H, W) float32 pixels (None right after the
    I-frame); ``motion``: this frame's dense map. Returns ``acc(p) = motion(p) + previous(q)`` with
    ``q = floor(p + motion(p) + 1/2)`` (nearest pixel, halves rounded up, clamped to the frame), so that
    ``p + acc(p)`` is where ``p`` comes from in the I-frame. (2, H, W) float32 pixels.
    """
    prev = None if previous is None else pixels_to_units(previous, scale)
    return units_to_pixels(accumulate_units(prev, pixels_to_units(motion, scale), scale), scale)


__all__ = ["COLUMNS", "MotionError", "mv_table", "table_scale", "block_grid", "expand_grid", "dense_units",
           "dense_motion",
           "units_to_pixels", "pixels_to_units", "unit_grid", "pixel_grid", "accumulate_units",
           "accumulate_cells", "gather32", "accumulate"]
