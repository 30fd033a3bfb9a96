"""JPEG encoding and decoding of frames (OpenCV's libjpeg-turbo). Arrays are RGB or grayscale uint8."""

from __future__ import annotations

import cv2
import numpy as np
import simplejpeg


def encode(image: np.ndarray, quality: int = 95, bgr: bool = False) -> bytes:
    """Encode an (H, W, 3) RGB (BGR if ``bgr``) or (H, W) grayscale uint8 image as baseline JPEG bytes
    (4:2:0 chroma for colour, deterministic)."""
    if image.dtype != np.uint8:
        raise TypeError(f"JPEG input must be uint8, got {image.dtype}")
    if image.ndim == 3 and not bgr:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def decode(data: bytes | np.ndarray, gray: bool = False) -> np.ndarray:
    """Decode JPEG bytes to (H, W, 3) RGB uint8, or (H, W) uint8 when ``gray``. Raises ValueError if corrupt."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("JPEG data does not decode")
    return img if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_yuv420(y: np.ndarray, u: np.ndarray, v: np.ndarray, quality: int = 95) -> bytes:
    """Encode full-range (JFIF) YCbCr 4:2:0 planes as JPEG without any colour conversion.

    ``y``: (H, W) uint8; ``u``, ``v``: (ceil(H/2), ceil(W/2)) uint8. The result decodes like a JPEG of the
    corresponding RGB image with 4:2:0 chroma, at a fraction of the cost of converting to RGB and back.
    """
    return simplejpeg.encode_jpeg_yuv_planes(np.ascontiguousarray(y), np.ascontiguousarray(u),
                                             np.ascontiguousarray(v), quality=int(quality))
