"""Flow quantization to uint8 (the MARS / denseflow convention), its inverse and the horizontal-flip rule.

Each flow component ``v`` (pixels) is clipped to ``[-bound, bound]`` and mapped to
``q = floor(255 * (v + bound) / (2 * bound) + 0.5)`` (round half up), so zero flow is 128, ``-bound`` is 0 and
``+bound`` is 255. The inverse is ``v = (q - 127.5) * 2 * bound / 255``: the centre of the bin, which puts
quantized zero flow at +0.078 px for bound 20 (the convention every reader of such files uses: subtract
127.5). Arithmetic is done in float64 so that exact halves round up reliably.
"""

from __future__ import annotations

import numpy as np

from ..core.config import ExtractFlowConfig

BOUND = ExtractFlowConfig().bound      # the config's default (20 px, MARS)
ROUNDING = "half_up"
DEQUANTIZE_FORMULA = "v = (q - 127.5) * 2 * bound / 255"
QUANTIZE_FORMULA = "q = floor(255 * (clip(v, -bound, bound) + bound) / (2 * bound) + 0.5)"


def quantize(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """Quantize flow values to uint8.

    flow: any shape, float (pixels), e.g. (H, W, 2) or (H, W). Returns uint8 of the same shape.
    """
    if bound <= 0:
        raise ValueError(f"flow bound must be positive, got {bound}")
    v = np.clip(np.asarray(flow, dtype=np.float64), -bound, bound)
    q = np.floor(255.0 * (v + bound) / (2.0 * bound) + 0.5)
    return np.clip(q, 0, 255).astype(np.uint8)


def dequantize(q: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """Inverse of :func:`quantize` (bin centres): uint8 of any shape -> float32 pixels of the same shape."""
    return ((np.asarray(q, dtype=np.float32) - np.float32(127.5)) * np.float32(2.0 * bound / 255.0)
            ).astype(np.float32)


def flip_x(q_x: np.ndarray) -> np.ndarray:
    """Horizontal flip rule for the quantized x-component: ``255 - q`` (negates the flow about 127.5).

    Only the values change; mirroring the image itself (``q[:, ::-1]``) is the caller's job, and the
    y-component is mirrored without changing its values.
    """
    q_x = np.asarray(q_x)
    if q_x.dtype != np.uint8:
        raise TypeError(f"flip_x expects quantized uint8 flow, got {q_x.dtype}")
    return (255 - q_x).astype(np.uint8)


def flip_flow_horizontally(q_x: np.ndarray, q_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a quantized flow pair left-right: (H, W) uint8 x and y -> mirrored x with values 255 - q,
    mirrored y with values kept."""
    return flip_x(q_x[..., ::-1]), np.ascontiguousarray(q_y[..., ::-1])


def quantization_attrs(bound: float, jpeg_quality: int) -> dict:
    """The attributes recorded on each flow stream of a shard."""
    return {"quantization": "linear_clip", "bound": float(bound), "rounding": ROUNDING,
            "quantize": QUANTIZE_FORMULA, "dequantize": DEQUANTIZE_FORMULA, "zero_flow": 128,
            "jpeg_quality": int(jpeg_quality), "unit": "pixels"}


__all__ = ["quantize", "dequantize", "flip_x", "flip_flow_horizontally", "quantization_attrs", "ROUNDING",
           "DEQUANTIZE_FORMULA", "QUANTIZE_FORMULA"]
