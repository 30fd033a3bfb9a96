"""The linear probe (``prep-cli train --method linear --features SET``): logistic regression on a feature set's
frozen features, the standard check of what a network's features hold.

Training features (the train split of the feature shards) are standardised with their own mean and standard
deviation, then one linear layer is fitted by full-batch Adam on the cross-entropy plus an L2 weight on its
weights, for a fixed number of epochs from a seeded initialisation: the same features give the same probe.
``unit="video"``: one sample a video (its clips' mean feature); ``"clip"``: every clip a sample, the test
scores averaged over a video's clips. The probe is tested on the test split, video-level top-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..data.features import ShardFeatures

METHOD = "linear"


@dataclass
class LinearProbe:
    """A fitted probe: ``weight`` (C, D) and ``bias`` (C,) on standardised features ``(x - mean) / std``
    (``mean``, ``std``: (D,) float32 of the training features)."""

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, C) float64 logits."""
        z = (np.asarray(x, np.float64) - self.mean) / self.std
        return z @ self.weight.T.astype(np.float64) + self.bias

    def state(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.asarray(getattr(self, k), np.float32))
                for k in ("weight", "bias", "mean", "std")}


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D,) mean and standard deviation of (N, D) features (a constant feature's deviation is 1)."""
    mean = x.mean(0) if len(x) else np.zeros(x.shape[1], np.float32)
    std = x.std(0) if len(x) else np.ones(x.shape[1], np.float32)
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def fit_linear(x: np.ndarray, y: np.ndarray, num_classes: int, *, epochs: int, lr: float,
               weight_decay: float, seed: int = 0) -> tuple[LinearProbe, list[float]]:
    """Fit a probe on (N, D) float32 features and (N,) int64 labels in [0, num_classes): full-batch Adam on
    the mean cross-entropy + ``weight_decay`` x the squared weights; returns it and the loss per epoch."""
    if len(x) == 0:
        raise ValueError("the linear probe has no training feature")
    mean, std = standardizer(x)
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.01)
        layer.bias.zero_()
    z = torch.from_numpy((x - mean) / std)
    t = torch.from_numpy(np.asarray(y, np.int64))
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(layer(z), t) + weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    w = layer.weight.detach().numpy().copy()
    return LinearProbe(w, layer.bias.detach().numpy().copy(), mean, std), losses


def video_top1(scores: np.ndarray, item_video: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Video-level top-1 of item scores (N, C): the mean of each video's items' scores; (accuracy, videos)."""
    if len(scores) == 0:
        return float("nan"), 0
    n = int(item_video.max()) + 1
    sums = np.zeros((n, scores.shape[1]))
    np.add.at(sums, item_video, scores)
    video_label = np.zeros(n, np.int64)
    video_label[item_video] = labels
    present = np.bincount(item_video, minlength=n) > 0
    correct = sums.argmax(1) == video_label
    return float(correct[present].mean()), int(present.sum())


def train_probe(train: ShardFeatures, test: ShardFeatures, *, epochs: int, lr: float, weight_decay: float,
                seed: int = 0) -> tuple[LinearProbe, dict]:
    """Fit on ``train``, test on ``test`` (the same feature set and classes); the probe and its metrics
    (``top1`` on the test videos, ``train_top1``, video counts, ``chance``, the final loss)."""
    if list(train.classes) != list(test.classes):
        raise ValueError("the train and test features have different classes")
    k = len(train.classes)
    x, y, v = train.arrays()
    probe, losses = fit_linear(x, y, k, epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed)
    tx, ty, tv = test.arrays()
    top1, videos = video_top1(probe.scores(tx), tv, ty)
    train_top1, train_videos = video_top1(probe.scores(x), v, y)
    return probe, {"top1": top1, "test_videos": videos, "train_top1": train_top1, "train_videos": train_videos,
                   "chance": 1.0 / k if k else None, "loss": losses[-1] if losses else None, "dim": train.dim,
                   "unit": train.unit, "epochs": epochs}


def probe_payload(probe: LinearProbe, metrics: Mapping, feature_set: str, classes, settings: Mapping) -> dict:
    """The probe's checkpoint (:func:`pipeline.train.checkpoint.save`): plain tensors and values."""
    return {"method": METHOD, "model_spec": {"arch": "linear", "in_features": int(probe.weight.shape[1]),
                                             "num_classes": int(probe.weight.shape[0])},
            "model": probe.state(), "classes": list(classes), "input": "feature", "feature_set": feature_set,
            "metrics": dict(metrics), "settings": dict(settings)}


__all__ = ["METHOD", "LinearProbe", "standardizer", "fit_linear", "video_top1", "train_probe", "probe_payload"]
