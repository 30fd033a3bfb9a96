"""TV-L1 optical flow: one API over two backends, plus quantization and visualization helpers.

``opencv``: ``cv2.optflow.DualTVL1OpticalFlow`` (one pair at a time, one thread per worker process).
``torch``: :mod:`pipeline.flow.torch_tvl1`, the same algorithm batched over pairs, on CUDA or the CPU.

Frames are grayscale ``(H, W)``: uint8 (0-255) or float in [0, 1] (scaled by 255 like OpenCV does).
Flow is float32 ``(H, W, 2)`` in pixels, channel 0 = x (right positive), 1 = y (down positive), from the
first frame to the second: ``prev(p) ~ next(p + flow(p))``.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from ..core.config import ExtractFlowConfig
from ..core.errors import MotionprepError
from .params import DEFAULTS, PARAM_NAMES, Params
from .quantize import dequantize, flip_flow_horizontally, flip_x, quantization_attrs, quantize

BACKENDS = ("opencv", "torch")
log = logging.getLogger("motionprep")


def tvl1_params(**params) -> dict:
    """OpenCV's defaults updated with ``params``; unknown names raise TypeError."""
    unknown = set(params) - set(PARAM_NAMES)
    if "lambda" in unknown:
        raise TypeError("TV-L1 parameter is spelled 'lambda_' (lambda is a Python keyword)")
    if unknown:
        raise TypeError(f"unknown TV-L1 parameter(s) {sorted(unknown)}; allowed: {list(PARAM_NAMES)}")
    out = dict(DEFAULTS)
    out.update(params)
    if out["median_filtering"] not in (0, 1, 3, 5):
        raise ValueError(f"median_filtering must be 0, 1, 3 or 5 (OpenCV's float median), got "
                         f"{out['median_filtering']}")
    return out


class DeviceError(MotionprepError, RuntimeError):
    """The torch device asked for does not exist here (no CUDA, no such index, a bad name)."""


def resolve_device(device: str | None):
    """'cpu', 'cuda' (= current CUDA device) or 'cuda:N' -> torch.device; raises :class:`DeviceError` for a
    device that is not there."""
    import torch
    name = device or "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was requested but torch sees no CUDA GPU "
                               f"(torch {torch.__version__}); use --device cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
        return dev
    if name != "cpu":
        raise DeviceError(f"device must be cpu, cuda or cuda:N, got {name!r}")
    return torch.device("cpu")


def _to_float255(frames: np.ndarray) -> np.ndarray:
    """(n, H, W) uint8 or float in [0, 1] -> float32 on the 0-255 scale (OpenCV's convention)."""
    if frames.dtype == np.uint8:
        return frames.astype(np.float32)
    if np.issubdtype(frames.dtype, np.floating):
        return frames.astype(np.float32) * np.float32(255.0)
    raise TypeError(f"TV-L1 expects uint8 or float frames, got {frames.dtype}")


def tvl1_batch(prevs: Sequence[np.ndarray] | np.ndarray, nexts: Sequence[np.ndarray] | np.ndarray, *,
               backend: str = "opencv", device: str | None = None, batch_size: int = ExtractFlowConfig().batch_size,
               compile: bool | None = None, **params) -> np.ndarray:
    """Flows of many pairs: n frames (H, W) each (all the same size and dtype) -> (n, H, W, 2) float32.

    ``batch_size`` pairs are solved at once by the torch backend; the opencv backend loops in this process.
    ``compile`` (torch backend): fuse the inner iteration with torch.compile; default on for CUDA, off on
    the CPU (where compiling costs tens of seconds once per process).
    """
    p = tvl1_params(**params)
    a = np.asarray(prevs)
    b = np.asarray(nexts)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"expected two (n, H, W) stacks of equal shape, got {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise ValueError(f"frame dtypes differ: {a.dtype} vs {b.dtype}")
    if a.shape[0] == 0:
        return np.zeros((0, *a.shape[1:], 2), np.float32)
    if backend == "opencv":
        from . import opencv_backend
        return opencv_backend.tvl1_batch(a, b, **p)
    if backend == "torch":
        import torch

        from .torch_tvl1 import tvl1_torch
        dev = resolve_device(device)
        use_compile = dev.type == "cuda" if compile is None else bool(compile)
        a32, b32 = _to_float255(a), _to_float255(b)
        out = np.empty((*a.shape, 2), np.float32)
        prm = Params(**p)
        with torch.inference_mode():
            for s in range(0, a.shape[0], max(1, int(batch_size))):
                t0 = torch.from_numpy(a32[s:s + batch_size]).to(dev, non_blocking=True)
                t1 = torch.from_numpy(b32[s:s + batch_size]).to(dev, non_blocking=True)
                out[s:s + batch_size] = tvl1_torch(t0, t1, prm, compile=use_compile).cpu().numpy()
        return out
    raise ValueError(f"unknown flow backend {backend!r}; allowed: {BACKENDS}")


def tvl1(prev: np.ndarray, next: np.ndarray, *, backend: str = "opencv", device: str | None = None,
         compile: bool | None = None, **params) -> np.ndarray:
    """Flow from ``prev`` to ``next``: two (H, W) uint8 or float [0, 1] frames -> (H, W, 2) float32 pixels."""
    prev, next = np.asarray(prev), np.asarray(next)
    if prev.ndim != 2 or next.ndim != 2:
        raise ValueError(f"tvl1 expects grayscale (H, W) frames, got {prev.shape} and {next.shape}")
    return tvl1_batch(prev[None], next[None], backend=backend, device=device, batch_size=1, compile=compile,
                      **params)[0]


def dis_flow(prev: np.ndarray, next: np.ndarray, preset: int = 2) -> np.ndarray:
    """OpenCV's DIS flow (medium preset by default), for scale in the accuracy tables: (H, W) uint8 -> (H, W, 2)."""
    import cv2
    return cv2.DISOpticalFlow_create(preset).calc(prev, next, None)


def endpoint_error(flow: np.ndarray, truth: np.ndarray) -> float:
    """Mean end-point error of (..., 2) flows."""
    return float(np.linalg.norm(np.asarray(flow, np.float64) - truth, axis=-1).mean())


__all__ = ["tvl1", "tvl1_batch", "tvl1_params", "resolve_device", "DeviceError", "quantize", "dequantize", "flip_x",
           "flip_flow_horizontally", "quantization_attrs", "dis_flow", "endpoint_error", "BACKENDS", "DEFAULTS"]
