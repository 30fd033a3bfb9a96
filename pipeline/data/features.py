"""A PyTorch dataset of extracted features (feature shards of ``prep-cli extract-features``), for training
probes and temporal models on a network's features without running the network.

``ShardFeatures(paths, split="train", unit="video")[i]`` returns::

    {"feature": float32 (D,)    the video's clip features averaged (unit "video") or one clip's (unit "clip")
     "label":   int64 ()        the video's class
     "video":   int64 ()        index into ``dataset.videos``}

``dataset.arrays()`` gives every item at once: features (N, D) float32, labels (N,) int64 and videos (N,)
int64, for full-batch training. The files are read once, at construction (features are small: D values a clip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.errors import ShardError
from ..shards import ShardReader

UNITS = ("video", "clip")


@dataclass(frozen=True)
class FeatureVideo:
    """One video of a feature shard: its id, label, split, shard index and clip count."""

    video_id: str
    label: int
    split: str
    shard: int
    clips: int


class ShardFeatures(Dataset):
    """Features of the videos of feature shards ``paths`` (one feature set), keeping ``split`` (None: all)
    and labelled videos only; one item per video (``unit="video"``: its clips' mean) or per clip."""

    def __init__(self, paths: Sequence[str | Path], split: str | None = None, unit: str = "video"):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ShardError("ShardFeatures: no feature shard given")
        self.unit = unit
        self.videos: list[FeatureVideo] = []
        self.classes: list[str] = []
        self.attrs: dict = {}
        feats, labels, videos = [], [], []
        for k, p in enumerate(self.paths):
            with ShardReader(p) as r:
                a = r.attrs
                if a.get("modality") != "feature":
                    raise ShardError(f"{p} is not a feature shard (modality {a.get('modality')!r}); "
                                     "run `prep-cli extract-features`")
                if not self.classes:
                    self.classes, self.attrs = r.classes, a
                elif a.get("extract_features.name") != self.attrs.get("extract_features.name"):
                    raise ShardError(f"{p} holds the feature set {a.get('extract_features.name')!r}, "
                                     f"{self.paths[0]} {self.attrs.get('extract_features.name')!r}")
                t = r.table()
                data = r.file["frames/feature"][()].astype(np.float32)      # every clip of the shard
                off = r.offsets
                for v, vid in enumerate(t["video_id"]):
                    label, sp = int(t["label"][v]), str(t["split"][v])
                    if label < 0 or (split is not None and sp != split) or off[v + 1] == off[v]:
                        continue
                    clips = data[off[v]:off[v + 1]]
                    index = len(self.videos)
                    self.videos.append(FeatureVideo(str(vid), label, sp, k, len(clips)))
                    rows = clips.mean(0, keepdims=True) if unit == "video" else clips
                    feats.append(rows)
                    labels.append(np.full(len(rows), label, np.int64))
                    videos.append(np.full(len(rows), index, np.int64))
        dim = int(self.attrs.get("extract_features.feature_dim", 0)) or (feats[0].shape[1] if feats else 0)
        self.features = np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)
        self.labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        self.item_video = np.concatenate(videos) if videos else np.zeros(0, np.int64)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"feature": torch.from_numpy(self.features[index]),
                "label": torch.tensor(self.labels[index], dtype=torch.int64),
                "video": torch.tensor(self.item_video[index], dtype=torch.int64)}

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, D) float32 features, (N,) int64 labels, (N,) int64 video indices of every item."""
        return self.features, self.labels, self.item_video


__all__ = ["ShardFeatures", "FeatureVideo", "UNITS"]
