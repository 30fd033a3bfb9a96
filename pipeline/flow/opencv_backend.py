"""TV-L1 with OpenCV's ``cv2.optflow.DualTVL1OpticalFlow`` (opencv-contrib), one instance per process.

Parameter names follow :class:`pipeline.flow.params.Params`; OpenCV's Python binding spells the inner
iteration count ``innnerIterations`` (three n's).
"""

from __future__ import annotations

import threading
from typing import Sequence

import cv2
import numpy as np

from .params import Params

_local = threading.local()


def create(**params):
    """A new ``DualTVL1OpticalFlow`` with these parameters (names of :class:`pipeline.flow.params.Params`;
    the ones not given take its defaults)."""
    p = Params(**params)
    return cv2.optflow.DualTVL1OpticalFlow_create(
        tau=float(p.tau), lambda_=float(p.lambda_), theta=float(p.theta), nscales=int(p.nscales),
        warps=int(p.warps), epsilon=float(p.epsilon), innnerIterations=int(p.inner_iterations),
        outerIterations=int(p.outer_iterations), scaleStep=float(p.scale_step), gamma=float(p.gamma),
        medianFiltering=int(p.median_filtering),
        useInitialFlow=False)


def _instance(params: dict):
    key = tuple(sorted(params.items()))
    cache = getattr(_local, "cache", None)
    if cache is None or cache[0] != key:
        cache = (key, create(**params))
        _local.cache = cache
    return cache[1]


def as_gray_input(frame: np.ndarray) -> np.ndarray:
    """(H, W) uint8 stays uint8; float frames become float32 (OpenCV scales float input by 255)."""
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise ValueError(f"TV-L1 expects a grayscale (H, W) frame, got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return np.ascontiguousarray(frame)
    if np.issubdtype(frame.dtype, np.floating):
        return np.ascontiguousarray(frame, dtype=np.float32)
    raise TypeError(f"TV-L1 expects uint8 or float frames, got {frame.dtype}")


def tvl1(prev: np.ndarray, nxt: np.ndarray, **params) -> np.ndarray:
    """Flow from ``prev`` to ``nxt``: (H, W) uint8 or float in [0, 1] -> (H, W, 2) float32 pixels (x, y)."""
    a, b = as_gray_input(prev), as_gray_input(nxt)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"frame pair mismatch: {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
    flow = _instance(params).calc(a, b, None)
    return np.asarray(flow, dtype=np.float32)


def tvl1_batch(prevs: Sequence[np.ndarray], nexts: Sequence[np.ndarray], **params) -> np.ndarray:
    """Pairwise flows: sequences of n (H, W) frames -> (n, H, W, 2) float32. Runs sequentially in this
    process (parallelism comes from worker processes, one OpenCV thread each)."""
    if len(prevs) != len(nexts):
        raise ValueError(f"{len(prevs)} previous frames but {len(nexts)} next frames")
    if len(prevs) == 0:
        return np.zeros((0, 0, 0, 2), np.float32)
    return np.stack([tvl1(a, b, **params) for a, b in zip(prevs, nexts)])
