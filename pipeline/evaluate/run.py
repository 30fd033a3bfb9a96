"""Testing trained streams on the test split: clip scores, video scores, fusions, static clips, time.

Each stream (a trained method's ``model.pt``) sees every non-overlapping centre-cropped clip of every test
video (MARS §4.2), and its video score is the average of its clips' scores. A fusion averages the video
scores of its streams over the videos they all have. The static-clip test (MARS §5.4) repeats the middle
frame of each clip and gives motion streams the zero motion of such a clip. Time per video is the network's
forward time on the video's clips (data access excluded, as in MARS Fig. 1) plus, for a stream whose input
is TV-L1 flow, the TV-L1 time of the video's frame pairs, measured on this machine with the flow stage's
settings (:func:`tvl1_seconds_per_pair`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..core.atomic import atomic_path
from ..core.config import (ClipsConfig, EvaluateConfig, ExtractFlowConfig, RecipeConfig, effective_recipe,
                           recipe_defaults, to_recipe)
from ..data.dataset import ShardClips, worker_init
from ..flow import tvl1_batch
from ..flow.params import tvl1_params_of
from ..shards import ShardReader
from ..train.inputs import network_input, scales_of
from ..train.methods import Method, get as get_method
from ..train.trainer import load_model, method_clips, resolve_device, use_bf16
from . import metrics as M


@dataclass
class StreamResult:
    """One stream on the test videos: ``scores`` (V, C) float64 video scores (clip average), ``static``
    the same on static clips (or None), ``model_seconds`` (V,) forward time per video."""

    name: str
    input: str
    video_ids: list[str]
    labels: np.ndarray
    scores: np.ndarray
    static: np.ndarray | None
    model_seconds: np.ndarray
    clips: int
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # (V,) frame pairs per video
    classes: list[str] = field(default_factory=list)                            # the label names
    average: str = "logits"             # how ``scores`` averaged the clips and views (the stream's recipe)
    #: the video scores in both averagings, ``{"logits": (V, C), "softmax": (V, C)}`` (fusions may ask for
    #: either); ``scores`` is ``by_average[average]``
    by_average: dict = field(default_factory=dict)
    views: int = 1                      # test views per clip (10 for ten_crop)


def _clip_scores(model: torch.nn.Module, data: ShardClips, method: Method, batch_size: int,
                 device: torch.device, bf16: bool, workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every item of a test-mode dataset: (K, C) float32 and the forward seconds of each item
    (a batch's time shared equally among its clips)."""
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers,
                        worker_init_fn=worker_init)
    scores, seconds = [], []
    scales = scales_of(data)
    with torch.inference_mode():
        for batch in loader:
            x = network_input(method, batch, scales).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
                s = model(x)
            s = s.float().cpu()
            dt = time.perf_counter() - t
            scores.append(s.numpy())
            seconds += [dt / len(x)] * len(x)
    return np.concatenate(scores), np.asarray(seconds)


def checkpoint_recipe(data: Mapping, clips: ClipsConfig | None = None) -> RecipeConfig:
    """The recipe a checkpoint was trained with (recorded in its settings), or, for a checkpoint that has
    none, its method's default with the non-null overrides of ``clips``."""
    rec = (data.get("settings") or {}).get("recipe")
    return to_recipe(rec) if rec else effective_recipe(recipe_defaults()[data["method"]], clips=clips)


def test_stream(name: str, model_path: str | Path, shards: Mapping[str, Sequence[Path]], clips: ClipsConfig,
                cfg: EvaluateConfig, split: str = "test", workers: int = 0,
                recipe: RecipeConfig | None = None) -> StreamResult:
    """Test one trained stream on ``split`` with its recipe's test protocol (views, clips per video,
    averaging): ``recipe`` as given, else the one its checkpoint was trained with (a non-null
    ``evaluate.average`` replacing its averaging). ``shards`` as :class:`pipeline.data.ShardClips` takes
    them."""
    device = resolve_device(cfg.device)
    bf16 = use_bf16("auto", device)
    model, data = load_model(model_path, device)
    method = get_method(data["method"])
    modality = data["input"]
    recipe = effective_recipe(recipe or checkpoint_recipe(data, clips), evaluate=cfg)

    def dataset(static: bool) -> ShardClips:
        return ShardClips.from_config(shards, "+".join(method.inputs), clips, recipe, mode="test", split=split,
                                      static=static, **method_clips(method, int(data.get("gop", 12))))

    ds = dataset(False)
    if not ds.videos:
        raise ValueError(f"stream {name}: the shards hold no video of the {split} split")
    if list(ds.classes) != list(data["classes"]):
        raise ValueError(f"stream {name}: {model_path} was trained on other classes than the shards hold")
    n = len(ds.videos)
    raw, secs = _clip_scores(model, ds, method, cfg.batch_size, device, bf16, workers)
    by_average = {a: M.video_scores(raw, ds.item_video, n, a) for a in M.AVERAGES}
    per_video = np.bincount(ds.item_video, weights=secs, minlength=n)
    static = None
    if cfg.static:
        st = dataset(True)
        raw_s, _ = _clip_scores(model, st, method, cfg.batch_size, device, bf16, workers)
        static = M.video_scores(raw_s, st.item_video, n, recipe.average)
    return StreamResult(name, modality, [v.video_id for v in ds.videos], np.array([v.label for v in ds.videos]),
                        by_average[recipe.average], static, per_video, len(ds),
                        np.array([_pairs(v, modality) for v in ds.videos]), list(ds.classes),
                        average=recipe.average, by_average=by_average, views=len(ds.test_view_list))


def _pairs(entry, modality: str) -> int:
    """Frame pairs TV-L1 needs for a video: its flow entries (N-1 for N frames) or, for frames, N - 1."""
    return int(entry.frames["flow"]) if modality == "flow" else max(int(entry.num_frames) - 1, 0)


def tvl1_seconds_per_pair(rgb_shard: str | Path, flow: ExtractFlowConfig, pairs: int) -> float:
    """TV-L1 seconds per frame pair on this machine: ``pairs`` consecutive pairs of the first video of an
    RGB shard with the flow stage's backend and parameters (one warm-up pair first, not counted)."""
    with ShardReader(rgb_shard) as r:
        n = int(r.table()["num_frames"][0])
        frames = r.decode(0, "rgb", 0, min(pairs + 2, n))
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    if len(gray) < 2:
        raise ValueError(f"{rgb_shard}: its first video has fewer than two frames; no pair to time")
    kw = dict(backend=flow.backend, device=flow.device if flow.backend == "torch" else None,
              batch_size=flow.batch_size, **tvl1_params_of(flow))
    tvl1_batch(gray[:1], gray[1:2], **kw)               # warm-up (first-call allocations, kernels)
    a, b = gray[1:-1], gray[2:]
    if len(a) == 0:
        a, b = gray[:1], gray[1:2]
    t = time.perf_counter()
    tvl1_batch(a, b, **kw)
    return (time.perf_counter() - t) / len(a)


def _aligned(results: Sequence[StreamResult]) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """The videos every stream has (in the first stream's order), each stream's rows of them, the labels."""
    common = set(results[0].video_ids).intersection(*[r.video_ids for r in results[1:]])
    ids = [v for v in results[0].video_ids if v in common]
    rows = [np.array([r.video_ids.index(v) for v in ids], np.int64) for r in results]
    return ids, rows, results[0].labels[rows[0]]


def stream_metrics(r: StreamResult, num_classes: int, tvl1_pair_seconds: float | None) -> dict:
    out = {**M.summary(r.scores, r.labels, num_classes), "videos": len(r.video_ids), "clips": r.clips,
           "chance": 1.0 / num_classes, "input": r.input}
    if r.static is not None:
        out["static_top1"] = M.topk_accuracy(r.static, r.labels, 1)
    model_s = float(r.model_seconds.mean())
    flow_s = float(np.mean(r.frames) * tvl1_pair_seconds) \
        if (r.input == "flow" and tvl1_pair_seconds is not None) else 0.0
    out.update({"model_seconds_per_video": model_s, "flow_seconds_per_video": flow_s,
                "seconds_per_video": model_s + flow_s})
    return out


def fusion_metrics(results: Sequence[StreamResult], num_classes: int, tvl1_pair_seconds: float | None,
                   weights: Sequence[float] | None = None, average: str | None = None,
                   normalize: str = "none") -> dict:
    """Metrics of the (weighted) average of several streams' video scores (and of their static scores):
    each stream's scores in ``average`` (None: each stream's own, its recipe's), normalised per video by
    ``normalize`` (:func:`metrics.normalize_scores`: Hidden Two-Stream's ``relu_l1``) before the weights."""
    ids, rows, labels = _aligned(results)

    def scores(r: StreamResult) -> np.ndarray:
        return r.scores if average is None else r.by_average[average]

    fused = M.fuse([M.normalize_scores(scores(r)[i], normalize) for r, i in zip(results, rows)], weights)
    out = {**M.summary(fused, labels, num_classes), "videos": len(ids), "chance": 1.0 / num_classes,
           "streams": [r.name for r in results], "average": average or [r.average for r in results],
           "normalize": normalize}
    if weights is not None:
        out["weights"] = [float(w) for w in weights]
    if all(r.static is not None for r in results):
        out["static_top1"] = M.topk_accuracy(M.fuse([M.normalize_scores(r.static[i], normalize)
                                                     for r, i in zip(results, rows)], weights), labels, 1)
    model_s = sum(float(r.model_seconds[i].mean()) for r, i in zip(results, rows))
    flows = [(r, i) for r, i in zip(results, rows) if r.input == "flow"]
    flow_s = float(np.mean(flows[0][0].frames[flows[0][1]]) * tvl1_pair_seconds) \
        if (flows and tvl1_pair_seconds is not None) else 0.0       # one TV-L1 pass serves every flow stream
    out.update({"model_seconds_per_video": model_s, "flow_seconds_per_video": flow_s,
                "seconds_per_video": model_s + flow_s})
    return out


def write_scores(path: str | Path, results: Sequence[StreamResult], classes: Sequence[str]) -> None:
    """Per-video scores of every stream, for later fusion: ``/<stream>/{video_id, label, scores[, static]}``
    (scores (V, C) float64, in the averaging the metrics used), root attribute ``classes``."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["classes"] = np.array(list(classes), dtype=h5py.string_dtype())
        for r in results:
            g = f.create_group(r.name)
            g.attrs["input"] = r.input
            g["video_id"] = np.array(r.video_ids, dtype=h5py.string_dtype())
            g["label"] = r.labels.astype(np.int64)
            g["scores"] = r.scores
            if r.static is not None:
                g["static"] = r.static
            g["model_seconds"] = r.model_seconds


def read_scores(path: str | Path) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    """``(classes, {stream: {"video_id", "label", "scores"[, "static"]}})`` of a score file."""
    with h5py.File(path, "r") as f:
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["classes"]]
        out = {}
        for name, g in f.items():
            out[name] = {k: (np.array([x.decode() if isinstance(x, bytes) else x for x in g[k][()]])
                             if k == "video_id" else g[k][()]) for k in g}
    return classes, out
