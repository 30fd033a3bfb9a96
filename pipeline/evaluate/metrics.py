"""Video-level scores and accuracies, as pure functions of numpy arrays.

A stream's test output is one row of class scores per clip (``clip_scores`` (K, C) float) with the video of
each clip (``clip_video`` (K,) int, 0..V-1). Video scores average the clips' raw scores (``logits``, as the
MARS code does) or their softmax probabilities; a fusion of streams averages the streams' video scores in
the same form (MARS §4.2: "we average the scores of each stream").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

AVERAGES = ("logits", "softmax")


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) scores (float64)."""
    z = np.asarray(scores, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def video_scores(clip_scores: np.ndarray, clip_video: Sequence[int], num_videos: int,
                 average: str = "logits") -> np.ndarray:
    """Average the clips of each video: (K, C) scores and (K,) video indices -> (V, C) float64.

    ``average``: ``logits`` (raw scores) or ``softmax`` (probabilities). A video with no clip is an error."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    s = softmax(clip_scores) if average == "softmax" else np.asarray(clip_scores, np.float64)
    v = np.asarray(clip_video, np.int64)
    counts = np.bincount(v, minlength=num_videos)
    if len(counts) > num_videos or (counts == 0).any():
        raise ValueError(f"every one of the {num_videos} videos needs at least one clip "
                         f"(videos without: {np.flatnonzero(counts == 0)[:5].tolist()})")
    out = np.zeros((num_videos, s.shape[1]), np.float64)
    np.add.at(out, v, s)
    return out / counts[:, None]


def fuse(scores: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The (weighted) mean of several streams' (V, C) video scores (same videos, same order); ``weights``
    None: equal (Hidden Two-Stream fuses spatial : temporal as 1 : 1.5)."""
    shapes = {np.shape(s) for s in scores}
    if len(shapes) != 1:
        raise ValueError(f"streams to fuse must score the same videos and classes, got shapes {shapes}")
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, np.float64)
    if len(w) != len(scores) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"fusion weights {list(w)} for {len(scores)} streams")
    stacked = np.stack([np.asarray(s, np.float64) for s in scores])
    return np.tensordot(w / w.sum(), stacked, axes=1)


NORMALIZATIONS = ("none", "relu_l1")


def normalize_scores(scores: np.ndarray, kind: str = "none") -> np.ndarray:
    """Per-video normalisation of (V, C) scores before a fusion: ``none``; ``relu_l1``: negative scores set
    to 0, then each row divided by its sum (Hidden Two-Stream's fusion; a row of no positive score stays 0)."""
    if kind not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {kind!r}")
    s = np.asarray(scores, np.float64)
    if kind == "none":
        return s
    s = np.maximum(s, 0.0)
    total = s.sum(axis=1, keepdims=True)
    return np.divide(s, total, out=np.zeros_like(s), where=total > 0)


def topk_accuracy(scores: np.ndarray, labels: Sequence[int], k: int = 1) -> float:
    """Fraction of videos whose label is among the ``k`` highest scores (ties broken by class index)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean()) if len(labels) else 0.0


def mean_class_accuracy(scores: np.ndarray, labels: Sequence[int], num_classes: int) -> float:
    """Top-1 accuracy per class, averaged over the classes that have test videos."""
    pred = np.asarray(scores).argmax(axis=1)
    labels = np.asarray(labels)
    per = [float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return float(np.mean(per)) if per else 0.0


def summary(scores: np.ndarray, labels: Sequence[int], num_classes: int) -> dict:
    """``top1``, ``top5``, ``mean_class_accuracy`` of (V, C) video scores."""
    return {"top1": topk_accuracy(scores, labels, 1), "top5": topk_accuracy(scores, labels, 5),
            "mean_class_accuracy": mean_class_accuracy(scores, labels, num_classes)}
