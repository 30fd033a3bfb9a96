"""Images of motion-vector fields and residuals (uint8 RGB arrays; PNG writing via OpenCV).

Motion fields use the usual flow colour wheel (hue = direction, saturation = magnitude / ``max_mag``) with
block arrows drawn on top; residuals are shown as ``128 + gain * r``, grey = 0.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def motion_to_rgb(motion: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """(2, H, W) float pixels -> (H, W, 3) uint8 colour-wheel image (white = no motion).

    The hue shows the direction of ``-motion`` (the direction the content moves, for this package's sign
    convention), the saturation the magnitude relative to ``max_mag`` (default: the field's maximum)."""
    dx, dy = -motion[0].astype(np.float32), -motion[1].astype(np.float32)
    mag, ang = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    m = float(max_mag if max_mag is not None else max(float(mag.max()), 1e-6))
    hsv = np.zeros(motion.shape[1:] + (3,), np.uint8)
    hsv[..., 0] = (ang / 2).astype(np.uint8)
    hsv[..., 1] = np.clip(mag / m * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def draw_arrows(image: np.ndarray, motion: np.ndarray, step: int = 16, gain: float = 1.0) -> np.ndarray:
    """Arrows from each block centre in the direction the content moves (``-motion``), on a copy of
    ``image`` (H, W, 3) uint8."""
    out = np.ascontiguousarray(image).copy()
    h, w = motion.shape[1:]
    for y in range(step // 2, h, step):
        for x in range(step // 2, w, step):
            dx, dy = -float(motion[0, y, x]) * gain, -float(motion[1, y, x]) * gain
            if dx or dy:
                cv2.arrowedLine(out, (x, y), (int(round(x + dx)), int(round(y + dy))), (0, 0, 0), 1,
                                cv2.LINE_AA, tipLength=0.3)
    return out


def residual_to_rgb(res_u8: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """Stored residual (H, W, 3) uint8 (128 = 0) -> (H, W, 3) uint8 with the deviation amplified."""
    r = res_u8.astype(np.float32) - 128
    return np.clip(128 + gain * r, 0, 255).astype(np.uint8)


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(image).copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path


__all__ = ["motion_to_rgb", "draw_arrows", "residual_to_rgb", "label", "write_png"]
