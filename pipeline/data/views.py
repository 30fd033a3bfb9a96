"""Spatial views of a sample: which pixels of a frame become the network's input, as pure functions.

A *view* (:class:`View`) is stated relative to a frame, so the same view gives every modality of a sample
the same window: RGB and flow of one size get the same pixels, residual frames of half the size the same
relative window, motion-vector maps theirs. A view becomes pixels in three steps, for a frame of ``H x W``:

1. ``resize`` (optional): the whole frame is resized first, to a short side (``("short", S)``: the long
   side is ``int(S * long / short)``, as MARS's ``Scale``) or to a fixed ``("fixed", W', H')`` (DMC-Net's
   test view squashes the frame to 256 x 256);
2. ``box``: a window ``(x0, y0, w, h)`` of the (resized) frame, integer pixels;
3. the window is resized to ``out x out`` (nothing to do when it already is that size), then mirrored
   when ``flip``.

:func:`geometry` computes steps 1-2 for a frame size; :func:`apply` carries them out on one frame
((H, W) or (H, W, C) uint8, C <= 4). :func:`apply` also takes a frame that was decoded at ``1/r`` of its
size (libjpeg's DCT scaling, :func:`reduction` says how far a view allows it): the same geometry is then
interpolated from the smaller image, which costs a fraction of decoding the whole frame.

The views of the methods (``train_view`` / ``test_view`` of a recipe):

=================  ====================================================================================
``corner``         MARS's multi-scale corner crop: a square of side ``int(short * scale)`` at the centre
                   or a corner (one of :data:`POSITIONS`), resized to ``out`` (``sample_corner``)
``multiscale``     TSN / CoViAR's multi-scale crop: width and height each ``int(short * scale)`` from the
                   scales (at most ``max_distort`` steps apart), a size within 3 px of ``out`` taken as
                   ``out``, at one of the fixed positions (:func:`fixed_offsets`), resized to ``out``
``window``         a window of ``out`` pixels of the frame as stored, at a relative position ``(fy, fx)``
                   in [0, 1]^2 (random in training, centre at test): no resizing at all
``short_center``   the short side resized to ``resize``, then the centre ``out x out`` (MARS's test view)
``squash_center``  the whole frame resized to ``resize`` = (W', H'), then the centre ``out x out`` (DMC)
``ten_crop``       the short side resized to ``resize``, the four corners and the centre of ``out x out``,
                   each also mirrored: ten views (TSN, Hidden Two-Stream at test)
``squash_ten_crop`` the same of the frame squashed to ``resize x resize`` (CoViAR at test)
=================  ====================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

#: named positions of a window: centre, top-left, top-right, bottom-left, bottom-right
POSITIONS = ("c", "tl", "tr", "bl", "br")
#: MARS's five scales of the multi-scale corner crop: 1, 2^-1/4, 2^-1/2, 2^-3/4, 1/2
MARS_SCALES = tuple(2 ** (-k / 4) for k in range(5))
TRAIN_VIEWS = ("corner", "multiscale", "window")
TEST_VIEWS = ("short_center", "squash_center", "ten_crop", "squash_ten_crop", "window")
#: the single view of each test view that validation uses (its centre)
CENTRE_VIEW = {"short_center": "short_center", "squash_center": "squash_center", "ten_crop": "short_center",
               "squash_ten_crop": "squash_center", "window": "window"}


@dataclass(frozen=True)
class View:
    """One spatial view, relative to any frame (see the module's table).

    ``kind``: ``corner``, ``multiscale``, ``window``, ``short_center``, ``squash_center`` or ``ten_crop_part``
    (one of the ten: a fixed position of the resized frame); ``out``: the side
    of the output; ``scale_w``, ``scale_h``: the window as a fraction of the short side (``corner``: both
    equal; ``multiscale``: the two drawn sizes); ``position``: a name of :data:`POSITIONS` or, for
    ``window``, ``(fy, fx)`` fractions; ``resize``: the short side (int) or ``(W', H')`` the whole frame is
    resized to first (test views); ``flip``: mirrored left-right."""

    kind: str
    out: int
    scale_w: float = 1.0
    scale_h: float = 1.0
    position: str | tuple[float, float] = "c"
    resize: int | tuple[int, int] | None = None
    flip: bool = False


@dataclass(frozen=True)
class Geometry:
    """A view on a frame of one size: the frame resized to ``resize`` (``(w, h)``) or kept (None), the
    window ``box`` = ``(x0, y0, w, h)`` of that frame, the output ``out`` x ``out``, mirrored or not."""

    height: int
    width: int
    resize: tuple[int, int] | None
    box: tuple[int, int, int, int]
    out: int
    flip: bool
    pad: tuple[int, int] = (0, 0)      # window on a smaller frame: edge rows / columns added before (centred)


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """``(w, h)`` of a frame resized so that its short side is ``short`` (the long side ``int(short * long /
    short_side)``, MARS's ``Scale``); a square frame gives ``(short, short)``."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def fixed_offsets(height: int, width: int, crop_h: int, crop_w: int) -> dict[str, tuple[int, int]]:
    """TSN / CoViAR's five fixed window corners ``{position: (x0, y0)}`` of a ``crop_w x crop_h`` window:
    the steps are ``(W - w) // 4`` and ``(H - h) // 4``, the corners at 0 and 4 steps, the centre at 2."""
    ws, hs = (width - crop_w) // 4, (height - crop_h) // 4
    return {"tl": (0, 0), "tr": (4 * ws, 0), "bl": (0, 4 * hs), "br": (4 * ws, 4 * hs), "c": (2 * ws, 2 * hs)}


def corner_offset(height: int, width: int, crop_h: int, crop_w: int, position: str) -> tuple[int, int]:
    """MARS's window corner ``(x0, y0)`` at a named position: corners flush with the frame's edges, the
    centre at ``(W // 2 - w // 2, H // 2 - h // 2)`` (MARS's ``MultiScaleCornerCrop``)."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    x = {"tl": 0, "bl": 0, "tr": width - crop_w, "br": width - crop_w, "c": width // 2 - crop_w // 2}[position]
    y = {"tl": 0, "tr": 0, "bl": height - crop_h, "br": height - crop_h, "c": height // 2 - crop_h // 2}[position]
    return x, y


def geometry(view: View, height: int, width: int) -> Geometry:
    """Where ``view`` takes its pixels in a ``height x width`` frame (see :class:`Geometry`). A window larger
    than the frame (a ``window`` of ``out`` pixels on a smaller frame) is a ValueError naming both sizes."""
    if height < 1 or width < 1:
        raise ValueError(f"a frame needs a size, got {height}x{width}")
    out = int(view.out)
    resize = None
    h, w = height, width
    if view.kind in ("short_center", "squash_center", "ten_crop_part"):
        if view.kind == "squash_center" or isinstance(view.resize, (tuple, list)):
            if not isinstance(view.resize, (tuple, list)):
                raise ValueError(f"view {view.kind} needs resize = (W, H), got {view.resize!r}")
            resize = (int(view.resize[0]), int(view.resize[1]))
        elif view.resize is not None:
            resize = short_side_size(height, width, int(view.resize))
        if resize is not None and resize != (width, height):
            w, h = resize
        else:
            resize = None
        if w < out or h < out:
            raise ValueError(f"view {view.kind}: the frame resized to {w}x{h} is smaller than the {out}x{out} "
                             "window")
        if view.kind == "ten_crop_part":
            x0, y0 = fixed_offsets(h, w, out, out)[view.position]
        else:             # MARS's CenterCrop: int(round((W - out) / 2))
            x0, y0 = int(round((w - out) / 2.0)), int(round((h - out) / 2.0))
        box = (x0, y0, out, out)
    elif view.kind == "corner":
        side = int(min(height, width) * view.scale_w)
        side = max(1, min(side, height, width))
        x0, y0 = corner_offset(height, width, side, side, view.position)
        box = (x0, y0, side, side)
    elif view.kind == "multiscale":
        base = min(height, width)
        cw, ch = (int(base * s) for s in (view.scale_w, view.scale_h))
        cw = out if abs(cw - out) < 3 else cw          # TSN: a size within 3 px of the output is the output
        ch = out if abs(ch - out) < 3 else ch
        cw, ch = max(1, min(cw, width)), max(1, min(ch, height))
        if isinstance(view.position, tuple):          # a random offset (CoViAR, DMC-Net: fix_crop off)
            fy, fx = view.position
            x0, y0 = int(fx * (width - cw + 1)) if fx < 1 else width - cw, \
                int(fy * (height - ch + 1)) if fy < 1 else height - ch
        else:
            x0, y0 = fixed_offsets(height, width, ch, cw)[view.position]
        box = (x0, y0, cw, ch)
    elif view.kind == "window":          # a frame smaller than the window is edge-padded, centred
        fy, fx = view.position if isinstance(view.position, tuple) else (0.5, 0.5)
        py, px = max(out - height, 0), max(out - width, 0)
        box = (int(round(fx * max(width - out, 0))), int(round(fy * max(height - out, 0))), out, out)
        return Geometry(height, width, None, box, out, bool(view.flip), (py, px))
    else:
        raise ValueError(f"unknown view kind {view.kind!r}")
    return Geometry(height, width, resize, box, out, bool(view.flip))


def reduction(g: Geometry, limit: int = 8) -> int:
    """The largest JPEG decoding reduction ``r`` in 1, 2, 4, 8 (at most ``limit``) at which the window still
    has at least ``out`` pixels across in both directions: decoding at ``1/r`` then loses nothing the output
    could show."""
    if any(g.pad):
        return 1
    x0, y0, bw, bh = g.box
    fw, fh = (g.width / g.resize[0], g.height / g.resize[1]) if g.resize else (1.0, 1.0)
    per_px = min(bw * fw, bh * fh) / g.out        # source pixels per output pixel
    r = 1
    while r * 2 <= limit and per_px >= r * 2:
        r *= 2
    return r


def _affine(g: Geometry, r: int, src_h: int, src_w: int) -> np.ndarray:
    """2x3 matrix mapping output pixel (j, i) to coordinates of the frame decoded at ``1/r``."""
    x0, y0, bw, bh = g.box
    fw, fh = (g.width / g.resize[0], g.height / g.resize[1]) if g.resize else (1.0, 1.0)
    # output j -> resized frame u = x0 + (j + .5) bw / out - .5 -> full frame (u + .5) fw - .5 -> 1/r frame
    ax, ay = bw / g.out * fw / r, bh / g.out * fh / r
    bx, by = (x0 + 0.5 * bw / g.out) * fw / r - 0.5, (y0 + 0.5 * bh / g.out) * fh / r - 0.5
    if g.flip:                    # output column j shows column out - 1 - j
        bx, ax = bx + ax * (g.out - 1), -ax
    return np.array([[ax, 0.0, bx], [0.0, ay, by]], np.float64)


def source_step(g: Geometry, r: int = 1) -> float:
    """Pixels of the frame decoded at ``1/r`` per output pixel, along the window's shorter direction."""
    x0, y0, bw, bh = g.box
    fw, fh = (g.width / g.resize[0], g.height / g.resize[1]) if g.resize else (1.0, 1.0)
    return min(bw * fw, bh * fh) / g.out / r


def apply(frame: np.ndarray, g: Geometry, r: int = 1, dst: np.ndarray | None = None) -> np.ndarray:
    """The view ``g`` of one frame: (H, W[, C]) uint8 -> (out, out[, C]) uint8 (into ``dst`` when given).

    ``r`` > 1: ``frame`` was decoded at ``1/r`` (``ceil(H / r) x ceil(W / r)``). A window of exactly ``out``
    pixels is copied. Otherwise, where each output pixel spans fewer than two pixels of ``frame`` (after
    :func:`reduction`, nearly always), the output pixels are interpolated bilinearly straight from
    ``frame`` (one affine warp: no intermediate resized frame); where it spans two or more (a frame not
    reduced, motion-vector maps), the literal steps run with pixel-area averaging, so no detail aliases.
    Both place every output pixel at the same source coordinates."""
    if not any(g.pad) and (r > 1 or g.resize is not None or g.box[2:] != (g.out, g.out)) \
            and source_step(g, r) < 2.0:
        m = _affine(g, r, *frame.shape[:2])
        out = cv2.warpAffine(frame, m, (g.out, g.out), dst=dst, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
        if out.ndim < frame.ndim:
            out = out[..., None]
        if dst is not None and out is not dst:
            dst[...] = out
            return dst
        return out
    if r > 1:
        raise ValueError(f"a frame decoded at 1/{r} spans {source_step(g, r):.2f} pixels per output pixel: "
                         "reduce it less (views.reduction)")
    img = frame
    if any(g.pad):
        py, px = g.pad
        pad = [(py // 2, py - py // 2), (px // 2, px - px // 2)] + [(0, 0)] * (frame.ndim - 2)
        img = np.pad(frame, pad, mode="edge")
    if g.resize is not None:
        img = cv2.resize(img, g.resize, interpolation=cv2.INTER_AREA
                         if g.resize[0] < frame.shape[1] else cv2.INTER_LINEAR)
    x0, y0, bw, bh = g.box
    win = img[y0:y0 + bh, x0:x0 + bw]
    if (bw, bh) != (g.out, g.out):
        win = cv2.resize(win, (g.out, g.out), interpolation=cv2.INTER_AREA if bw > g.out else cv2.INTER_LINEAR)
    if win.ndim < frame.ndim:                     # cv2 drops a channel axis of size 1
        win = win[..., None]
    if g.flip:
        win = win[:, ::-1]
    if dst is None:
        return np.ascontiguousarray(win)
    dst[...] = win
    return dst


# -- the views of the recipes ----------------------------------------------------------------------------


def sample_corner(rng: np.random.Generator, out: int, scales: Sequence[float] = MARS_SCALES,
                  flip: bool = False) -> View:
    """MARS's training view: one scale and one of the five positions, uniformly (the same for the whole
    clip), mirrored when ``flip``."""
    s = float(scales[int(rng.integers(len(scales)))])
    return View("corner", out, s, s, POSITIONS[int(rng.integers(len(POSITIONS)))], flip=flip)


def sample_multiscale(rng: np.random.Generator, out: int, scales: Sequence[float],
                      max_distort: int = 1, flip: bool = False, positions: str = "fixed") -> View:
    """TSN / CoViAR's training view: a (width, height) pair of the scales at most ``max_distort`` apart,
    uniformly among the allowed pairs, at one of the five fixed positions (``positions="fixed"``, TSN) or at
    a uniformly random offset (``"random"``: CoViAR's and DMC-Net's ``fix_crop=False``)."""
    pairs = [(i, j) for i in range(len(scales)) for j in range(len(scales)) if abs(i - j) <= max_distort]
    i, j = pairs[int(rng.integers(len(pairs)))]
    if positions == "random":
        pos = (float(rng.random()), float(rng.random()))
    elif positions == "fixed":
        pos = POSITIONS[int(rng.integers(len(POSITIONS)))]
    else:
        raise ValueError(f"positions must be 'fixed' or 'random', got {positions!r}")
    return View("multiscale", out, float(scales[j]), float(scales[i]), pos, flip=flip)


def sample_window(rng: np.random.Generator, out: int, flip: bool = False) -> View:
    """A window of ``out`` pixels at a uniformly random position of the frame as stored."""
    return View("window", out, position=(float(rng.random()), float(rng.random())), flip=flip)


def train_view(kind: str, rng: np.random.Generator, out: int, scales: Sequence[float], max_distort: int,
               flip: bool, positions: str = "fixed") -> View:
    """One training view of a recipe's ``train_view``; ``flip`` is drawn by the caller (half the clips)."""
    if kind == "corner":
        return sample_corner(rng, out, scales, flip)
    if kind == "multiscale":
        return sample_multiscale(rng, out, scales, max_distort, flip, positions)
    if kind == "window":
        return sample_window(rng, out, flip)
    raise ValueError(f"train view must be one of {TRAIN_VIEWS}, got {kind!r}")


def test_views(kind: str, out: int, resize: int | Sequence[int] | None = None) -> list[View]:
    """The views every test clip is seen in: one (``short_center``, ``squash_center``, ``window``: the centre
    window of the frame as stored) or ten (``ten_crop``: the five positions of :func:`fixed_offsets`
    in the order c, tl, tr, bl, br, then the same five mirrored)."""
    rs = tuple(int(x) for x in resize) if isinstance(resize, (list, tuple)) else resize
    if kind == "short_center":
        return [View("short_center", out, resize=rs if rs is not None else out)]
    if kind == "squash_center":
        if not isinstance(rs, tuple):
            raise ValueError(f"squash_center needs test_resize = [W, H], got {resize!r}")
        return [View("squash_center", out, resize=rs)]
    if kind in ("ten_crop", "squash_ten_crop"):
        if kind == "squash_ten_crop":
            rs = rs if isinstance(rs, tuple) else (rs, rs) if rs is not None else (out, out)
        plain = [View("ten_crop_part", out, position=p, resize=rs) for p in POSITIONS]
        return plain + [View(v.kind, v.out, position=v.position, resize=v.resize, flip=True) for v in plain]
    if kind == "window":
        return [View("window", out, position=(0.5, 0.5))]
    raise ValueError(f"test view must be one of {TEST_VIEWS}, got {kind!r}")


__all__ = ["View", "Geometry", "POSITIONS", "MARS_SCALES", "TRAIN_VIEWS", "TEST_VIEWS", "geometry", "apply",
           "reduction", "short_side_size", "fixed_offsets", "corner_offset", "sample_corner",
           "sample_multiscale", "sample_window", "train_view", "test_views"]
