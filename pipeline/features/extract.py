"""Running a trained network over every clip of every video: the features of a feature set.

The clips of all videos of a shard are one :class:`~pipeline.data.ShardClips` in test mode (clip starts
every ``stride`` frames, ``length`` frames each, every test view of each clip); a DataLoader assembles
batches of ``batch_size`` clips across videos while its workers decode the next ones (pinned memory on
CUDA), and the network sees each batch once. The last batch is padded to the full size on request (fixed
shapes for cuDNN autotuning and compiled models; the padding's outputs are dropped). Each clip's feature
is the average over its views (10-crop) of the network's feature: ``forward_features`` (the pooled feature
before dropout) or the output of a named module, averaged over time and space (``pool="mean"``) or kept
whole (``"none"``, flattened).

A clip that cannot be read (a damaged frame: an :class:`InputError` or :class:`ShardError` of the reader)
fails its video: the video is reported, the batch goes on without it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from ..core.errors import ConfigError, InputError, ShardError
from ..data.dataset import ShardClips, worker_init
from ..train.inputs import network_input, scales_of
from ..train.methods import Method

#: reader errors that fail one video (the other videos go on)
READ_ERRORS = (InputError, ShardError)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def clip_frame_ranges(starts: Sequence[int], length: int, num_frames: int) -> np.ndarray:
    """(K, 2) int32 first and last frame index of each clip starting at ``starts``: ``[s, min(s + length,
    num_frames) - 1]`` (a video shorter than one clip: ``[0, num_frames - 1]``, its frames looped)."""
    s = np.asarray(starts, dtype=np.int64).reshape(-1)
    return np.stack([s, np.minimum(s + length, num_frames) - 1], axis=1).astype(np.int32)


def clip_times(ranges: np.ndarray, fps: float) -> np.ndarray:
    """(K, 2) float64 start and end time in seconds of clips with frame ``ranges`` (K, 2): from the start
    of the first frame (``first / fps``) to the end of the last (``(last + 1) / fps``)."""
    r = np.asarray(ranges, dtype=np.float64)
    return np.stack([r[:, 0] / fps, (r[:, 1] + 1) / fps], axis=1)


def pool_output(x: torch.Tensor, pool: str) -> torch.Tensor:
    """A module's output (N, C, ...) -> (N, D): ``mean`` averages every axis after the channels (D = C),
    ``space`` the spatial ones only, keeping time ((N, C, T', H', W') -> D = C x T', channel-major; a 2D
    output (N, C, H', W') -> C), ``none`` flattens (D = C x T' x H' x W')."""
    if pool == "mean":
        return x.flatten(2).mean(2) if x.ndim > 2 else x
    if pool == "space":
        if x.ndim == 5:
            return x.mean(dim=(3, 4)).flatten(1)
        return x.flatten(2).mean(2) if x.ndim > 2 else x
    if pool == "none":
        return x.flatten(1)
    raise ValueError(f"pool must be 'mean', 'space' or 'none', got {pool!r}")


class LayerTap:
    """``with LayerTap(model, "layer3") as tap: model.forward_features(x)``; ``tap.output`` is the named
    module's output of that call. An unknown name is a :class:`ConfigError` listing the top-level modules."""

    def __init__(self, model: nn.Module, name: str):
        try:
            self.module = model.get_submodule(name)
        except AttributeError:
            names = [n for n, _ in model.named_children()]
            raise ConfigError(f"extract_features.layer: the network has no module {name!r}; its modules: {names} (and their children, "
                             "e.g. layer3.0)") from None
        self.output: torch.Tensor | None = None
        self._handle = None

    def _hook(self, module, args, output) -> None:
        self.output = output[0] if isinstance(output, (tuple, list)) else output

    def __enter__(self) -> "LayerTap":
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


def model_features(model: nn.Module, x: torch.Tensor, layer: str = "pooled", pool: str = "mean",
                   logits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, ...]]:
    """Features (N, D) of a batch of network inputs, with ``logits`` the class scores (N, C) (else None),
    and one clip's feature shape before flattening: ``layer="pooled"`` gives ``model.forward_features(x)``
    ((D,)); a module name its output, pooled by ``pool`` ((C,) or (C, T', H', W'))."""
    if layer == "pooled":
        f = model.forward_features(x)
        return f, (model.classify(f) if logits else None), tuple(f.shape[1:])
    with LayerTap(model, layer) as tap:
        pooled = model.forward_features(x)
    if tap.output is None:
        raise ValueError(f"module {layer!r} is not used by the network's forward_features")
    f = pool_output(tap.output, pool)
    out = tap.output
    shape = (tuple(out.shape[1:]) if pool == "none" else tuple(out.shape[1:3]) if pool == "space" and out.ndim == 5
             else tuple(f.shape[1:]))
    return f, (model.classify(pooled) if logits else None), shape


class GuardedClips(Dataset):
    """A test-mode :class:`ShardClips` whose items carry their index (``"item"``); an item that cannot be
    read becomes ``{"item": i, "error": "Type: message"}`` instead of stopping the loader."""

    def __init__(self, clips: ShardClips):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        try:
            sample = self.clips[index]
        except READ_ERRORS as exc:
            return {"item": index, "error": f"{type(exc).__name__}: {exc}"}
        sample["item"] = torch.tensor(index, dtype=torch.int64)
        return sample


def collate_guarded(items: list[dict]) -> tuple[dict | None, list[tuple[int, str]]]:
    """A batch of the readable items (None when there is none) and ``[(item, error)]`` of the others."""
    good = [x for x in items if "error" not in x]
    bad = [(int(x["item"]), str(x["error"])) for x in items if "error" in x]
    return (default_collate(good) if good else None), bad


@dataclass
class ItemFeatures:
    """The network's outputs on every item (clip x view) of a dataset: ``features`` (K, D) float32,
    ``logits`` (K, C) float32 or None, ``failed`` {item: error}; the seconds waited for data and spent in the
    network, and the clips seen."""

    features: np.ndarray
    logits: np.ndarray | None
    failed: dict[int, str] = field(default_factory=dict)
    wait_seconds: float = 0.0
    compute_seconds: float = 0.0
    clips: int = 0
    shape: tuple[int, ...] = ()         # one clip's feature before flattening (pool none: (C, T', H', W'))


def make_loader(data: ShardClips, batch_size: int, workers: int, device: torch.device) -> DataLoader:
    """Batches of ``batch_size`` items in order, across videos, ``workers`` processes reading ahead (two
    batches each), pinned memory on CUDA."""
    extra = {"prefetch_factor": 2, "persistent_workers": False} if workers > 0 else {}
    return DataLoader(GuardedClips(data), batch_size=batch_size, shuffle=False, num_workers=workers,
                      collate_fn=collate_guarded, pin_memory=device.type == "cuda", worker_init_fn=worker_init,
                      **extra)


def run_items(model: nn.Module, method: Method, data: ShardClips, *, batch_size: int, workers: int = 0,
              device: torch.device | str = "cpu", bf16: bool = False, layer: str = "pooled",
              pool: str = "mean", logits: bool = False, pad: bool = False) -> ItemFeatures:
    """The network's features (and logits) of every item of ``data`` (:class:`ItemFeatures`), in batches
    across videos; ``pad``: the last batch is padded to ``batch_size`` (the padding's outputs dropped)."""
    device = torch.device(device)
    scales = scales_of(data)
    n = len(data)
    feats: np.ndarray | None = None
    shape: tuple[int, ...] = ()
    scores: np.ndarray | None = None
    failed: dict[int, str] = {}
    wait = compute = 0.0
    seen = 0
    loader = iter(make_loader(data, batch_size, workers, device))
    with torch.inference_mode():
        while True:
            t0 = time.perf_counter()
            try:
                batch, bad = next(loader)
            except StopIteration:
                break
            t1 = time.perf_counter()
            wait += t1 - t0
            failed.update(dict(bad))
            if batch is None:
                continue
            x = network_input(method, batch, scales).to(device, non_blocking=True)
            k = len(x)
            if pad and k < batch_size:
                x = torch.cat([x, x[-1:].expand(batch_size - k, *x.shape[1:])])
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
                f, s, shape = model_features(model, x, layer, pool, logits)
            f = f[:k].float().cpu().numpy()
            if feats is None:
                feats = np.zeros((n, f.shape[1]), np.float32)
                scores = np.zeros((n, s.shape[1]), np.float32) if s is not None else None
            idx = batch["item"].numpy()
            feats[idx] = f
            if s is not None:
                scores[idx] = s[:k].float().cpu().numpy()
            compute += time.perf_counter() - t1
            seen += k
    if feats is None:
        feats = np.zeros((n, 0), np.float32)
    return ItemFeatures(feats, scores, failed, wait, compute, seen, shape)


@dataclass
class VideoFeatures:
    """One video's features: ``features`` (K, D) float32 (views averaged), ``logits`` (K, C) or None,
    ``frames`` (K, 2) int32 first and last frame, ``times`` (K, 2) float64 seconds."""

    index: int
    features: np.ndarray
    logits: np.ndarray | None
    frames: np.ndarray
    times: np.ndarray


def per_video(data: ShardClips, out: ItemFeatures,
              fps: Mapping[str, float]) -> Iterator[VideoFeatures | tuple[int, str]]:
    """Group item outputs per video of ``data`` (in its order), views averaged: a :class:`VideoFeatures`
    (times from ``fps``, by video id), or ``(video index, error)`` for a video one of whose items failed.
    Frame indices are those of the network's input (flow entry i: frame i -> i + 1)."""
    views = len(data.test_view_list)
    by_video: dict[int, list[int]] = {}
    for i, (v, _, _) in enumerate(data.items):
        by_video.setdefault(v, []).append(i)
    for v, entry in enumerate(data.videos):
        items = by_video.get(v, [])
        errors = [out.failed[i] for i in items if i in out.failed]
        if errors:
            yield v, errors[0]
            continue
        starts = [data.items[i][1] for i in items[::views]]
        f = out.features[items].reshape(len(starts), views, -1).mean(1)
        s = out.logits[items].reshape(len(starts), views, -1).mean(1) if out.logits is not None else None
        frames = clip_frame_ranges(starts, data.length, entry.num_frames)
        yield VideoFeatures(v, f, s, frames, clip_times(frames, float(fps[entry.video_id])))


__all__ = ["READ_ERRORS", "sha256_of", "clip_frame_ranges", "clip_times", "pool_output", "LayerTap", "model_features",
           "GuardedClips", "collate_guarded", "ItemFeatures", "make_loader", "run_items", "VideoFeatures", "per_video"]
