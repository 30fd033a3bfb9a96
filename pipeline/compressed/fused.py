"""The fused P-frame kernel (C extension ``_kernels``): one pass per frame instead of ~20 OpenCV passes.

The numpy/OpenCV functions of :mod:`.motion`, :mod:`.residual` and :mod:`.encoding` are the definitions;
:func:`p_frame` computes exactly the same arrays (tests compare both paths bit for bit on real decodes), and
:func:`pipeline.compressed.extract.extract` uses it whenever the extension is built (``pip install``
compiles it; it needs a C compiler and the Python headers). ``MOTIONPREP_FUSED=0`` in the environment turns
it off (the OpenCV path then runs, with identical output).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from .motion import MotionError

try:
    from . import _kernels
    _WHY = ""
except ImportError as exc:          # not built (no compiler at install time, or a source checkout)
    _kernels = None
    _WHY = f"{type(exc).__name__}: {exc}"


def available() -> tuple[bool, str]:
    """(True, "") when the fused kernel can be used, else (False, the reason)."""
    if os.environ.get("MOTIONPREP_FUSED", "1") == "0":
        return False, "turned off by MOTIONPREP_FUSED=0"
    if _kernels is None:
        return False, f"the C extension pipeline.compressed._kernels is not built ({_WHY}); reinstall with a C compiler"
    return True, ""


def _check(a: np.ndarray, shape: tuple, dtype, name: str) -> None:
    if a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
        raise ValueError(f"{name}: need a C-contiguous {shape} {np.dtype(dtype).name} array, "
                         f"got {a.shape} {a.dtype}{'' if a.flags.c_contiguous else ' (not contiguous)'}")


@functools.lru_cache(maxsize=16)
def _fixed_point(lut_bytes: bytes, off: int) -> tuple[int, int]:
    """(mul, shift) with ``|lut[off + c] - 128| == (c * mul) >> shift`` for c in [0, off], the table odd
    around 128 and ``off * mul`` within int16, so the kernel can encode 8 values with one multiply; (0, 0)
    when there is none (the kernel then looks every value up)."""
    lut = np.frombuffer(lut_bytes, np.uint8).astype(np.int64)
    c = np.arange(off + 1)
    target = lut[off + c] - 128
    if off == 0 or np.any(lut[off - c] != 256 - lut[off + c]) or np.any(target < 0):
        return 0, 0
    for shift in range(16):
        base = int(target[-1]) * (1 << shift) // off
        for mul in range(max(1, base - 1), base + 3):
            if mul * off <= 32767 and np.array_equal((c * mul) >> shift, target):
                return mul, shift
    return 0, 0


def subpel_phases(frame: np.ndarray, scale: int, out: np.ndarray | None = None) -> np.ndarray:
    """The sub-pel phase image of ``frame`` (H, W, C) uint8: (scale*H, scale*W, C) uint8, equal to
    ``residual.SubpelReference(frame, scale).upsampled``. ``out``: an array of that shape to write into."""
    frame = np.ascontiguousarray(frame, np.uint8)
    h, w, c = frame.shape
    if out is None:
        out = np.empty((scale * h, scale * w, c), np.uint8)
    _check(out, (scale * h, scale * w, c), np.uint8, "out")
    _kernels.subpel_phases(frame, h, w, c, scale, out)
    return out


_GRID_ERRORS = {1: "motion vectors reference a future frame (B-frame); re-encode without B-frames",
                2: "a motion_scale does not divide the field scale {scale}",
                3: "vectors on blocks that are not made of whole {cell}x{cell}-pixel cells (MPEG-4 Part 2 uses "
                   "16x16 and 8x8 blocks)"}


def cell_grid(table: np.ndarray, height: int, width: int, scale: int, cell: int,
              out: np.ndarray | None = None) -> np.ndarray:
    """The vector table (N, 8) int32 (:data:`.motion.COLUMNS`) on cells of ``cell`` pixels:
    (ceil(H/cell), ceil(W/cell), 2) int16 ``[dx, dy]`` in ``1/scale`` pixel, 0 where no block covers a cell.
    Equal to :func:`.motion.block_grid` repeated onto ``cell``-pixel cells. Raises
    :class:`.motion.MotionError` like it (future references, motion scales that do not divide ``scale``) and
    for blocks that are not whole cells. ``out``: an array of the result's shape to write into."""
    gh, gw = -(-height // cell), -(-width // cell)
    if out is None:
        out = np.empty((gh, gw, 2), np.int16)
    _check(out, (gh, gw, 2), np.int16, "out")
    table = np.ascontiguousarray(table, np.int32)
    if table.ndim != 2 or table.shape[1] != 8:
        raise ValueError(f"table: need (N, 8) int32, got {table.shape}")
    status = _kernels.cell_grid(table, len(table), gh, gw, cell, scale, out)
    if status:
        raise MotionError(_GRID_ERRORS[status].format(scale=scale, cell=cell))
    return out


def p_frame(img: np.ndarray, prev: np.ndarray, grid: np.ndarray, g: int, scale: int,
            acc_prev: np.ndarray | None, phases: np.ndarray | None, lut: np.ndarray, lut_off: int,
            acc_out: np.ndarray, mv_out: np.ndarray, mv_acc_out: np.ndarray, res_out: np.ndarray,
            res_acc_out: np.ndarray) -> None:
    """Everything per pixel of one P-frame, written in place.

    Inputs: ``img``, ``prev`` (H, W, 3) uint8 RGB (this and the previous frame); ``grid`` (gh, gw, 2) int16
    vectors in ``1/scale`` pixel on ``g``-pixel cells (:func:`.motion.block_grid`); ``acc_prev`` (H, W, 2)
    int16 accumulated units of the previous frame, None for the GOP's first P-frame; ``phases`` the GOP
    I-frame's :func:`subpel_phases` (unused when ``acc_prev`` is None); ``lut``, ``lut_off`` from
    :func:`.encoding.mv_lut`.

    Outputs: ``mv_out`` (2, gh, gw) uint8 = :func:`.encoding.encode_mv_units` of ``grid``; ``acc_out`` (H, W, 2) int16 = :func:`.motion.accumulate_cells` (the expanded grid when
    ``acc_prev`` is None); ``mv_acc_out`` (2, H, W) uint8 = :func:`.encoding.encode_mv_units` of it;
    ``res_out`` (H, W, 3) uint8 = ``encode_residual_of(img, compensate_cells(prev, grid, g, scale))``;
    ``res_acc_out`` (H, W, 3) uint8 = ``encode_residual_of(img, phases gathered at scale*p + acc)``, a copy of
    ``res_out`` when ``acc_prev`` is None (the I-frame is the previous frame then).
    """
    h, w = img.shape[:2]
    if scale <= 0 or scale & (scale - 1):
        raise ValueError(f"scale {scale} is not a power of two")
    _check(img, (h, w, 3), np.uint8, "img")
    _check(prev, (h, w, 3), np.uint8, "prev")
    gh, gw = grid.shape[:2]
    _check(grid, (gh, gw, 2), np.int16, "grid")
    if gh * g < h or gw * g < w:
        raise ValueError(f"grid {gh}x{gw} of {g}-pixel cells does not cover {w}x{h}")
    _check(acc_out, (h, w, 2), np.int16, "acc_out")
    _check(mv_out, (2, gh, gw), np.uint8, "mv_out")
    _check(mv_acc_out, (2, h, w), np.uint8, "mv_acc_out")
    _check(res_out, (h, w, 3), np.uint8, "res_out")
    _check(res_acc_out, (h, w, 3), np.uint8, "res_acc_out")
    _check(lut, (256,), np.uint8, "lut")
    if acc_prev is not None:
        _check(acc_prev, (h, w, 2), np.int16, "acc_prev")
        _check(phases, (scale * h, scale * w, 3), np.uint8, "phases")
        if acc_prev is acc_out:
            raise ValueError("acc_prev and acc_out must be different arrays")
    mul, shift = _fixed_point(lut.tobytes(), int(lut_off))
    _kernels.p_frame(img, prev, h, w, grid, gh, gw, g, scale, acc_prev, acc_out, phases, lut, int(lut_off),
                     mul, shift, mv_out, mv_acc_out, res_out, res_acc_out)


__all__ = ["available", "subpel_phases", "cell_grid", "p_frame"]
