"""Motion compensation and residuals in pixel space (not the codec's DCT-domain residual).

Definition: ``compensate(ref, motion)[p]`` is ``ref`` interpolated bilinearly at ``p + motion(p)``, every
sample position clamped to the frame (edge replication, like MPEG-4's unrestricted motion vectors), with
integer weights and rounding half up. For half-pel motion this is the MPEG-4 rule with rounding control 0:
``a``, ``(a + b + 1) >> 1`` or ``(a + b + c + d + 2) >> 2``. Motion must be a multiple of ``1/scale`` pixel
(scale 2 for MPEG-4 half-pel vectors, 4 for quarter-pel).

Implementation: :class:`SubpelReference` precomputes every sub-pel phase of the reference once, as one
``(scale*H, scale*W, C)`` image, so a prediction is a single nearest-neighbour gather (``cv2.remap`` with
integer maps, which copies pixels and never rounds). :func:`compensate_reference` is the plain numpy
definition the tests compare it with. Frames may carry 3 (RGB) or 4 (RGBX, faster) channels.
"""

from __future__ import annotations

import cv2
import numpy as np

from .motion import expand_grid, gather32, pixel_grid, pixels_to_units, unit_grid

_EPS = 1e-3  # makes OpenCV's round-to-nearest a round-half-up of exact halves (never a tie)
_HALF_KERNELS = {(0, 1): np.full((1, 2), 0.5, np.float32), (1, 0): np.full((2, 1), 0.5, np.float32),
                 (1, 1): np.full((2, 2), 0.25, np.float32)}


class SubpelReference:
    """A reference frame with every ``1/scale`` sub-pixel phase precomputed.

    ``frame``: (H, W, C) uint8, C = 3 or 4. ``upsampled``: (scale*H, scale*W, C) uint8 with
    ``upsampled[scale*y + fy, scale*x + fx]`` = the reference at ``(x + fx/scale, y + fy/scale)``.
    """

    def __init__(self, frame: np.ndarray, scale: int = 2):
        self.frame = frame
        self.scale = s = int(scale)
        h, w, c = frame.shape
        if s == 1:
            self.upsampled = frame
        elif s == 2 and c == 4:
            self.upsampled = self._half_pel_rgbx(np.ascontiguousarray(frame))
        else:
            self.upsampled = self._generic(frame, s)

    @staticmethod
    def _half_pel_rgbx(frame: np.ndarray) -> np.ndarray:
        # filter2D accumulates in float32 (exact here) and rounds to nearest; +_EPS breaks ties upwards.
        h, w, _ = frame.shape
        up = np.empty((h, 2, w, 2, 4), np.uint8)
        u32 = up.view(np.uint32)[..., 0]
        u32[:, 0, :, 0] = frame.view(np.uint32)[..., 0]
        for (fy, fx), kernel in _HALF_KERNELS.items():
            img = cv2.filter2D(frame, -1, kernel, anchor=(0, 0), delta=_EPS, borderType=cv2.BORDER_REPLICATE)
            u32[:, fy, :, fx] = img.view(np.uint32)[..., 0]
        return up.reshape(2 * h, 2 * w, 4)

    @staticmethod
    def _generic(frame: np.ndarray, s: int) -> np.ndarray:
        h, w, c = frame.shape
        r = cv2.copyMakeBorder(frame, 0, 1, 0, 1, cv2.BORDER_REPLICATE).astype(np.uint32)
        a, b, cc, d = r[:h, :w], r[:h, 1:], r[1:, :w], r[1:, 1:]
        up = np.empty((h, s, w, s, c), np.uint8)
        for fy in range(s):
            for fx in range(s):
                total = ((s - fx) * (s - fy) * a + fx * (s - fy) * b + (s - fx) * fy * cc + fx * fy * d
                         + (s * s) // 2)
                up[:, fy, :, fx] = total // (s * s)
        return up.reshape(h * s, w * s, c)

    def predict_units(self, units: np.ndarray) -> np.ndarray:
        """Prediction for motion ``units`` (H, W, 2) int16 in ``1/scale`` pixels: (H, W, C) uint8."""
        h, w = self.frame.shape[:2]
        pos = cv2.add(unit_grid(h, w, self.scale), np.asarray(units, np.int16))
        if self.upsampled.shape[2] == 4:          # RGBX: one 4-byte gather per pixel
            return gather32(self.upsampled, pos)
        return cv2.remap(self.upsampled, pos, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)

    def predict(self, motion: np.ndarray) -> np.ndarray:
        """Prediction for ``motion`` (2, H, W) float pixels (multiples of 1/scale): (H, W, C) uint8."""
        return self.predict_units(pixels_to_units(motion, self.scale))


INTER_TAB_SIZE = 32      # OpenCV's sub-pixel table of cv2.remap's fixed-point maps (cv2.INTER_TAB_SIZE)


def cell_maps(grid: np.ndarray, g: int, height: int, width: int, scale: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point ``cv2.remap`` maps for block motion: ``grid`` (gh, gw, 2) int16 ``[dx, dy]`` in
    ``1/scale`` pixels on cells of ``g`` pixels -> ``map1`` (H, W, 2) int16, the whole-pixel part of
    ``p + motion`` (floor), and ``map2`` (H, W) uint16, the table index ``fy * 32 + fx`` of the fraction in
    1/32 pixel. ``scale`` must divide 32. The fractions are computed per cell and expanded."""
    if INTER_TAB_SIZE % scale:
        raise ValueError(f"scale {scale} does not divide OpenCV's remap table size {INTER_TAB_SIZE}")
    shift, tab = scale.bit_length() - 1, INTER_TAB_SIZE // scale
    whole = np.right_shift(grid, shift).astype(np.int16)
    frac = (grid & np.int16(scale - 1)).astype(np.uint16) * np.uint16(tab)
    index = frac[..., 1] * np.uint16(INTER_TAB_SIZE) + frac[..., 0]
    map1 = cv2.add(pixel_grid(height, width), expand_grid(whole, g, height, width, contiguous=False))
    map2 = expand_grid(index[..., None], g, height, width, contiguous=False)[..., 0]
    return map1, map2


def compensate_cells(reference: np.ndarray, grid: np.ndarray, g: int, scale: int = 2) -> np.ndarray:
    """:func:`compensate` for block motion, without the sub-pel phase image: one bilinear ``cv2.remap``
    with fixed-point maps (:func:`cell_maps`). ``reference``: (H, W, C) uint8; ``grid``: (gh, gw, 2) int16
    units on cells of ``g`` pixels. Returns (H, W, C) uint8.

    Exact: OpenCV's 8-bit bilinear remap weighs the four neighbours with integers summing to 2**15 and
    rounds half up; at multiples of 1/scale pixel (scale 2 or 4) the weights are exact, so the result is
    ``(sum w_i a_i + s*s/2) // (s*s)`` like :func:`compensate_reference` (tested bit for bit, borders and
    far out-of-frame vectors included).
    """
    h, w = reference.shape[:2]
    map1, map2 = cell_maps(grid, g, h, w, scale)
    return cv2.remap(reference, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def compensate(reference: np.ndarray, motion: np.ndarray, scale: int = 2) -> np.ndarray:
    """Motion-compensated prediction of ``reference`` (H, W, C) uint8 at ``p + motion(p)``.

    ``motion``: (2, H, W) float pixels, multiples of ``1/scale``. Returns (H, W, C) uint8.
    """
    return SubpelReference(reference, scale).predict(motion)


def residual(frame: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """``frame - prediction`` as (H, W, C) int16 in [-255, 255];
    ``frame == prediction + residual`` exactly."""
    return cv2.subtract(frame, prediction, dtype=cv2.CV_16S)


def compensate_reference(reference: np.ndarray, motion: np.ndarray, scale: int = 2) -> np.ndarray:
    """Slow numpy definition of :func:`compensate` (for tests)."""
    h, w = reference.shape[:2]
    s = scale
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    sx = np.round((x + motion[0].astype(np.float64)) * s).astype(np.int64)
    sy = np.round((y + motion[1].astype(np.float64)) * s).astype(np.int64)
    x0, fx = np.floor_divide(sx, s), np.mod(sx, s)
    y0, fy = np.floor_divide(sy, s), np.mod(sy, s)
    ref = reference.astype(np.int64)

    def at(yy, xx):
        return ref[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    total = (((s - fx) * (s - fy))[..., None] * at(y0, x0) + (fx * (s - fy))[..., None] * at(y0, x0 + 1)
             + ((s - fx) * fy)[..., None] * at(y0 + 1, x0) + (fx * fy)[..., None] * at(y0 + 1, x0 + 1))
    return ((total + s * s // 2) // (s * s)).astype(np.uint8)


__all__ = ["SubpelReference", "cell_maps", "compensate_cells", "compensate", "residual", "compensate_reference"]
