"""Flow pictures: the Middlebury colour coding and a strip (frame | flow x | flow y | colour).

The colour wheel is the one of the Middlebury flow benchmark (Baker et al.): 55 hues in six segments
(red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13, magenta-red 6); the hue is
the flow direction, the saturation its magnitude relative to ``max_flow``; zero flow is white.
"""

from __future__ import annotations

import numpy as np

_SEGMENTS = (("ry", 15), ("yg", 6), ("gc", 4), ("cb", 11), ("bm", 13), ("mr", 6))


def color_wheel() -> np.ndarray:
    """(55, 3) float RGB in [0, 255] along the Middlebury hue circle."""
    cols = []
    for name, n in _SEGMENTS:
        ramp = np.floor(255.0 * np.arange(n) / n)
        full, zero = np.full(n, 255.0), np.zeros(n)
        seg = {"ry": (full, ramp, zero), "yg": (255 - ramp, full, zero), "gc": (zero, full, ramp),
               "cb": (zero, 255 - ramp, full), "bm": (ramp, zero, full), "mr": (full, zero, 255 - ramp)}[name]
        cols.append(np.stack(seg, axis=1))
    return np.concatenate(cols)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None) -> np.ndarray:
    """(H, W, 2) float flow -> (H, W, 3) uint8 RGB in the Middlebury colour coding.

    ``max_flow``: magnitude shown fully saturated (default: the largest magnitude in ``flow``).
    Non-finite values are drawn black.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"expected flow of shape (H, W, 2), got {flow.shape}")
    u, v = flow[..., 0], flow[..., 1]
    bad = ~(np.isfinite(u) & np.isfinite(v))
    u, v = np.where(bad, 0, u), np.where(bad, 0, v)
    mag = np.hypot(u, v)
    scale = max_flow if max_flow is not None else float(mag.max(initial=0.0))
    scale = scale if scale > 0 else 1.0
    u, v = u / scale, v / scale
    rad = np.hypot(u, v)
    wheel = color_wheel()
    ncols = len(wheel)
    ang = np.arctan2(-v, -u) / np.pi
    fk = (ang + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = (1 - f) * wheel[k0] / 255.0 + f * wheel[k1] / 255.0
    r = rad[..., None]
    inside = r <= 1
    col = np.where(inside, 1 - r * (1 - col), col * 0.75)
    out = np.floor(255.0 * np.clip(col, 0, 1)).astype(np.uint8)
    out[bad] = 0
    return out


def component_gray(q: np.ndarray) -> np.ndarray:
    """A quantized flow component (H, W) uint8 as it is stored (128 = no motion): returned unchanged as RGB."""
    q = np.asarray(q, dtype=np.uint8)
    return np.repeat(q[..., None], 3, axis=2)


def strip(frame: np.ndarray, q_x: np.ndarray, q_y: np.ndarray, flow: np.ndarray,
          max_flow: float | None = None, gap: int = 4) -> np.ndarray:
    """One row: RGB frame (H, W, 3) | x (H, W) uint8 | y (H, W) uint8 | colour of ``flow`` -> (H, 4W+3gap, 3)."""
    h, w = q_x.shape
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.shape[:2] != (h, w):
        raise ValueError(f"frame {frame.shape[:2]} and flow {(h, w)} differ in size")
    sep = np.full((h, gap, 3), 255, np.uint8)
    parts = [frame.astype(np.uint8), sep, component_gray(q_x), sep, component_gray(q_y), sep,
             flow_to_color(flow, max_flow)]
    return np.concatenate(parts, axis=1)


__all__ = ["color_wheel", "flow_to_color", "component_gray", "strip"]
