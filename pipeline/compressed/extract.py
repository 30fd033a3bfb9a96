"""One decode pass over an MPEG-4 video -> every compressed-domain array the shards store.

For each frame, in display order (every array has one entry per frame so that all streams of a shard share
its offsets; entries that do not apply are constant fill values), plus the list of I-frames (one per GOP,
(H, W, 3) uint8 RGB, in ``CompressedVideo.iframes``; the stage stores them as JPEG in a second file):

=============  ===================  =========================================================================
stream          shape, dtype         content
=============  ===================  =========================================================================
frame_type     (), uint8            0 = I-frame, 1 = P-frame
gop_index      (), int32            GOP number in the video (0-based; a GOP starts at each I-frame)
gop_pos        (), int32            position in the GOP (0 = the I-frame)
mv             (2, h, w), uint8     motion to the previous frame (DMC-Net), CoViAR encoding, one vector per
                                    8x8 cell (h, w = ceil(H/8), ceil(W/8); :func:`.encoding.dense_mv`); 128 at I
mv_acc         (2, H, W), uint8     motion traced back to the GOP's I-frame (CoViAR), encoded; 128 at I
residual       (H, W, 3), uint8     frame - compensate(previous frame, mv), +128 clipped; 128 at I
residual_acc   (H, W, 3), uint8     frame - compensate(I-frame, mv_acc), +128 clipped; 128 at I
=============  ===================  =========================================================================

Vectors are in pixels with the package's sign convention (``motion / motion_scale = src - dst``).
``mv`` is stored per 8x8 cell (MPEG-4 Part 2 vectors are per 16x16 macroblock or 8x8 block, so this loses
nothing; ``dense_mv`` repeats each cell over its pixels and gives the (2, H, W) map). ``mv_acc`` stays
per pixel: accumulation samples the previous map at ``p + mv(p)``, which is not constant per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..core.errors import InputError
from . import fused as _fused
from .backends import DecodedFrame, NoMotionVectorsError
from .encoding import BOUND, encode_mv_units, encode_residual_of, mv_lut
from .motion import MotionError, accumulate_cells, block_grid, expand_grid
from .residual import INTER_TAB_SIZE, SubpelReference, compensate_cells

STREAMS = ("frame_type", "gop_index", "gop_pos", "mv", "mv_acc", "residual", "residual_acc")
I_FRAME, P_FRAME = 0, 1
MV_CELL = 8            # ``mv`` is stored per MV_CELL x MV_CELL pixels


class GopError(InputError):
    """The picture structure is not I/P only, or the video does not start with an I-frame."""


_SHAPES = {"frame_type": ((), np.uint8), "gop_index": ((), np.int32), "gop_pos": ((), np.int32),
           "mv": ("2gg", np.uint8), "mv_acc": ("2hw", np.uint8), "residual": ("hw3", np.uint8),
           "residual_acc": ("hw3", np.uint8)}


@dataclass
class CompressedVideo:
    """Per-frame arrays (one entry per decoded frame, see the module table) and video facts."""

    width: int
    height: int
    scale: int                                   # motion units: 1/scale pixel (2 = MPEG-4 half-pel)
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    iframes: list = field(default_factory=list)  # (H, W, 3) uint8 RGB, one per GOP
    p_frames_with_vectors: int = 0

    @property
    def num_frames(self) -> int:
        return len(self.frames["frame_type"])

    @property
    def num_gops(self) -> int:
        return int(self.frames["gop_index"][-1]) + 1 if self.num_frames else 0


class ArrayPool:
    """Output arrays kept from one video to the next: fresh memory costs a page fault per 4 KiB on first
    touch (about 0.13 ms for the 680 KB a frame here). The arrays of a :class:`CompressedVideo` extracted
    with a pool are valid until the next :func:`extract` with the same pool; the stage writes each video
    to its shard before it extracts the next one."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """An array of ``shape``: a view of the kept one when it has that dtype, shape per entry and at least
        ``shape[0]`` entries, else a new one that is kept from now on."""
        a = self.arrays.get(key)
        if a is None or a.dtype != dtype or a.shape[1:] != shape[1:] or len(a) < shape[0]:
            a = self.arrays[key] = np.empty(shape, dtype)
        return a[:shape[0]]


class _Buffers:
    """Per-frame output arrays, grown by doubling; results are written into them in place."""

    def __init__(self, h: int, w: int, capacity: int, pool: ArrayPool):
        self.h, self.w, self.n, self.pool = h, w, 0, pool
        self.arrays = {k: pool.get(k, (capacity, *self._shape(k)), dt) for k, (_, dt) in _SHAPES.items()}

    def _shape(self, key: str) -> tuple:
        kind = _SHAPES[key][0]
        cells = (2, -(-self.h // MV_CELL), -(-self.w // MV_CELL))
        return {(): (), "2hw": (2, self.h, self.w), "2gg": cells, "hw3": (self.h, self.w, 3)}[kind]

    def next(self) -> int:
        cap = len(self.arrays["frame_type"])
        if self.n == cap:                      # the larger arrays replace the kept ones
            grown = {k: np.concatenate([a, np.empty_like(a)]) for k, a in self.arrays.items()}
            self.pool.arrays.update(grown)
            self.arrays = grown
        self.n += 1
        return self.n - 1

    def result(self) -> dict[str, np.ndarray]:
        return {k: a[:self.n] for k, a in self.arrays.items()}


def _encode_grid(grid: np.ndarray, g: int, scale: int, bound: float, out: np.ndarray, i: int) -> None:
    """The ``mv`` entry (2, ceil(H/8), ceil(W/8)) uint8 of a block grid of ``g``-pixel cells."""
    if g == MV_CELL:
        encode_mv_units(grid, scale, bound, out=out)
    elif g > MV_CELL and g % MV_CELL == 0:          # 16x16 macroblocks only: 2x2 cells each
        r = g // MV_CELL
        q = encode_mv_units(grid, scale, bound).repeat(r, axis=1).repeat(r, axis=2)
        out[...] = q[:, :out.shape[1], :out.shape[2]]
    else:
        raise MotionError(f"frame {i}: vectors on a {g}-pixel grid do not fit the stored "
                          f"{MV_CELL}x{MV_CELL} cells (MPEG-4 Part 2 uses 16x16 and 8x8 blocks)")


def _p_frame_opencv(img, prev_img, iframe, grid, g, scale, bound, acc, iref, a, k):
    """The per-pixel arrays of P-frame ``k`` from the OpenCV functions that define them (what
    :func:`.fused.p_frame` computes in one pass); returns the new accumulated map and the I-frame's
    sub-pel reference (built at the GOP's second P-frame)."""
    h, w = img.shape[:2]
    units = expand_grid(grid, g, h, w, contiguous=False)       # a row-strided view is fine for OpenCV
    # previous frame compensated with the block vectors: one bilinear remap (no phase image)
    pred = (compensate_cells(prev_img, grid, g, scale) if INTER_TAB_SIZE % scale == 0   # exact when scale | 32
            else SubpelReference(prev_img, scale).predict_units(units))
    encode_residual_of(img, pred, out=a["residual"][k])
    if acc is None:                 # first P-frame of the GOP: both modes coincide
        encode_mv_units(units, scale, bound, out=a["mv_acc"][k])
        a["residual_acc"][k] = a["residual"][k]
        return units, iref
    acc = accumulate_cells(acc, units, grid, g, scale)
    encode_mv_units(acc, scale, bound, out=a["mv_acc"][k])
    if iref is None:                # the I-frame's sub-pel phases as RGBX, built once per GOP
        iref = SubpelReference(cv2.cvtColor(iframe, cv2.COLOR_RGB2RGBA), scale)
    pred = cv2.cvtColor(iref.predict_units(acc), cv2.COLOR_RGBA2RGB)   # 4-byte gathers are fastest
    encode_residual_of(img, pred, out=a["residual_acc"][k])
    return acc, iref


class _Extractor:
    """The state of one pass over a video: output buffers, the GOP position, the accumulated motion, the
    previous frame and the GOP's I-frame (and, with the fused kernel, its scratch arrays)."""

    def __init__(self, img: np.ndarray, scale: int, bound: float, fused: bool, expected_frames: int | None,
                 pool: ArrayPool):
        h, w = img.shape[:2]
        self.h, self.w, self.scale, self.bound, self.fused = h, w, scale, bound, fused
        self.out = CompressedVideo(w, h, scale)
        self.buf = _Buffers(h, w, max(1, expected_frames or 16), pool)
        self.lut, self.lut_off = mv_lut(scale, bound)
        self.iref = self.acc = self.prev_img = self.iframe = None
        self.gop, self.pos, self.n_p = -1, 0, 0
        if fused:                           # two accumulation maps used in turn, one I-frame phase image
            self.acc_maps = [pool.get(f"acc{j}", (h, w, 2), np.int16) for j in range(2)]
            self.phases = pool.get("phases", (scale * h, scale * w, 3), np.uint8)
            self.cells = pool.get("cells", (-(-h // MV_CELL), -(-w // MV_CELL), 2), np.int16)

    def add(self, i: int, fr: DecodedFrame, img: np.ndarray) -> None:
        """Frame ``i`` of the video (display order), decoded to ``img``."""
        k = self.buf.next()
        a = self.buf.arrays
        if fr.pict_type == "I":
            self.gop, self.pos, self.acc, self.iref, self.iframe = self.gop + 1, 0, None, None, img
            a["frame_type"][k] = I_FRAME
            self.out.iframes.append(img)
            for key in ("mv", "mv_acc", "residual", "residual_acc"):
                a[key][k] = 128
        elif fr.pict_type == "P":
            if self.gop < 0:
                raise GopError("the first frame is a P-frame, not an I-frame")
            self.pos += 1
            self.n_p += 1
            self.out.p_frames_with_vectors += bool(fr.has_side_data)
            a["frame_type"][k] = P_FRAME
            (self._p_fused if self.fused else self._p_opencv)(i, k, fr, img, a)
        else:
            raise GopError(f"frame {i} is a {fr.pict_type}-frame: only I- and P-frames are supported "
                           "(re-encode with `prep-cli reencode`, which uses no B-frames)")
        self.prev_img = img
        a["gop_index"][k] = self.gop
        a["gop_pos"][k] = self.pos

    def _p_fused(self, i: int, k: int, fr: DecodedFrame, img: np.ndarray, a: dict) -> None:
        try:
            grid = _fused.cell_grid(fr.table, self.h, self.w, self.scale, MV_CELL, out=self.cells)
        except MotionError as exc:
            raise MotionError(f"frame {i}: {exc}") from None
        target = self.acc_maps[0] if self.acc is self.acc_maps[1] else self.acc_maps[1]
        if self.acc is not None and self.iref is None:      # the I-frame's sub-pel phases, once per GOP
            self.iref = _fused.subpel_phases(self.iframe, self.scale, out=self.phases)
        _fused.p_frame(img, self.prev_img, grid, MV_CELL, self.scale, self.acc, self.iref, self.lut, self.lut_off,
                       target, a["mv"][k], a["mv_acc"][k], a["residual"][k], a["residual_acc"][k])
        self.acc = target

    def _p_opencv(self, i: int, k: int, fr: DecodedFrame, img: np.ndarray, a: dict) -> None:
        grid, g = block_grid(fr.table, self.h, self.w, self.scale)
        _encode_grid(grid, g, self.scale, self.bound, a["mv"][k], i)
        self.acc, self.iref = _p_frame_opencv(img, self.prev_img, self.iframe, grid, g, self.scale, self.bound,
                                              self.acc, self.iref, a, k)

    def finish(self, codec: str, require_vectors: bool = True) -> CompressedVideo:
        if require_vectors and self.n_p and self.out.p_frames_with_vectors == 0:
            raise NoMotionVectorsError(f"codec {codec!r}: {self.n_p} P-frames but no motion vectors were "
                                       "exported")
        self.out.frames = self.buf.result()
        return self.out


def extract(decoded: Iterable[DecodedFrame], bound: float = BOUND, scale: int = 2,
            codec: str = "mpeg4", expected_frames: int | None = None, fused: bool | None = None,
            pool: ArrayPool | None = None, require_vectors: bool = True) -> CompressedVideo:
    """Run the decoder output of one video through dense maps, accumulation, compensation and encodings.

    ``expected_frames`` (a hint, e.g. the container's frame count) sizes the output arrays up front; they
    grow when the video is longer. ``fused``: compute the per-pixel arrays of P-frames with the C kernel
    (:mod:`.fused`; None: whenever it is built) or with the OpenCV functions that define them (False); both
    give identical arrays. ``pool``: reuse output arrays across calls (see :class:`ArrayPool`). Raises
    :class:`GopError` for B-frames (or other non-I/P pictures) and a first frame that is not an I-frame,
    :class:`NoMotionVectorsError` when P-frames exist but the decoder exported no vector at all (unless
    ``require_vectors`` is False: a part of a video whose P-frames are all intra-coded, read after the whole
    video was checked; such a frame has no vectors, i.e. zero motion, in either case), and
    :class:`GopError` for an empty video.
    """
    built, why = _fused.available()
    if fused and not built:
        raise RuntimeError(f"fused kernel unavailable: {why}")
    fused = built if fused is None else fused
    fused = fused and scale > 0 and scale & (scale - 1) == 0
    pool = pool or ArrayPool()
    state: _Extractor | None = None
    for i, fr in enumerate(decoded):
        img = np.ascontiguousarray(fr.image)
        if state is None:
            state = _Extractor(img, scale, bound, fused, expected_frames, pool)
        state.add(i, fr, img)
    if state is None:
        raise GopError("the video has no frames")
    return state.finish(codec, require_vectors)


def extract_file(path: str | Path, bound: float, backend: str = "pyav", pool: ArrayPool | None = None
                 ) -> CompressedVideo:
    """Decode one MPEG-4 Part 2 file once: a :class:`CompressedVideo` (``pool``: see :func:`extract`).
    Files of other codecs are refused: H.264 vectors may point to older frames than the previous one
    (multiple references), MPEG-2 has B-frames and field prediction; the residual definitions here hold
    for MPEG-4 Part 2 P-frames only."""
    from .backends import MV_CODECS, iter_frames, probe_codec

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (was it re-encoded? run `prep-cli reencode`)")
    codec, frames = probe_codec(path)
    if codec in MV_CODECS and codec != "mpeg4":
        raise InputError(f"{path.name}: codec {codec!r} is not MPEG-4 Part 2; its vectors do not follow the "
                         "one-previous-frame model; re-encode it with `prep-cli reencode` first")
    decoded = iter_frames(path, backend)
    return extract(decoded, bound=bound, scale=2, codec=codec, expected_frames=frames, pool=pool)


_HEAP_KEPT = False


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory in the process instead of returning it to the kernel at once
    (``mallopt``: trim only above 256 MiB free, ``mmap`` only for blocks above 64 MiB). Every frame allocates
    and frees a few dozen 90-350 KB temporaries; by default each one is a fresh ``mmap`` (or a trimmed heap)
    and page-faults again: 0.2-0.3 ms a frame of system time, measured. Process-wide and permanent, so only
    the stage runner calls it (once); returns False where it does not apply (not glibc)."""
    global _HEAP_KEPT
    if _HEAP_KEPT:
        return True
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        _HEAP_KEPT = bool(libc.mallopt(-1, 256 << 20) and libc.mallopt(-3, 64 << 20))  # M_TRIM_, M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        _HEAP_KEPT = False
    return _HEAP_KEPT


__all__ = ["STREAMS", "MV_CELL", "I_FRAME", "P_FRAME", "GopError", "CompressedVideo", "ArrayPool", "extract",
           "extract_file", "keep_freed_memory"]
