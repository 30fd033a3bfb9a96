"""Stage ``evaluate``: every trained stream of ``evaluate.streams`` on the test split, and the fusions of
``evaluate.fusions``, into ``results/evaluate/<dataset>/``: ``metrics.json`` (per stream and per fusion:
top-1, top-5, mean class accuracy, static-clip top-1, chance level, test videos, seconds per video) and
``scores.h5`` (every stream's video scores, for later fusion)."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..core import paths
from ..core.atomic import write_text_atomic
from ..core.config import section_values
from ..core.errors import ConfigError, StageError
from ..train import get as get_method
from .contract import DatasetJob, Option, Stage
from .train import source_shards


def fusion_streams(fusion) -> list[str]:
    """The stream items of a fusion entry (a list, or the ``streams`` of a mapping)."""
    return list(fusion["streams"]) if isinstance(fusion, Mapping) else list(fusion)


def fusion_name(fusion) -> str:
    return "+".join(fusion_streams(fusion))


@dataclass(frozen=True)
class Fusion:
    """One entry of ``evaluate.fusions``: the streams, their weights (None: equal), the averaging their video
    scores are taken in (None: each stream's recipe's) and the per-video normalisation before the weights."""

    names: list[str]
    weights: list[float] | None
    average: str | None = None
    normalize: str = "none"


def parse_fusion(fusion) -> Fusion:
    """``["rgb", "hidden:1.5"]`` -> names ["rgb", "hidden"], weights [1.0, 1.5]; no weight anywhere: weights
    None; a mapping ``{streams: [...], average: ..., normalize: ...}`` adds its averaging and normalisation."""
    items = fusion_streams(fusion)
    names, weights = [], []
    for item in items:
        name, _, w = str(item).partition(":")
        try:
            weights.append(float(w) if w else 1.0)
        except ValueError:
            raise ConfigError(f"evaluate.fusions: {item!r}: a weight after ':' must be a number") from None
        names.append(name)
    extra = fusion if isinstance(fusion, Mapping) else {}
    return Fusion(names, weights if any(":" in str(i) for i in items) else None, extra.get("average"),
                  extra.get("normalize") or "none")


def check_fusions(streams, fusions) -> None:
    for f in fusions:
        missing = [s for s in parse_fusion(f).names if s not in streams]
        if missing:
            raise ConfigError(f"evaluate.fusions: {fusion_name(f)} names {missing}, which evaluate.streams "
                              f"({list(streams)}) does not test")


def true_flow_of(settings) -> Path | None:
    """The dataset's true optical flow (the demo's ``true_flow.h5``), or None."""
    p = Path(settings.dataset.root) / paths.DEMO_FILES["true_flow"]
    return p if settings.dataset.format == "demo" and p.is_file() else None


def run(job: DatasetJob) -> dict:
    # torch: imported when an evaluation starts, not by every prep-cli call
    from ..evaluate import fusion_metrics, stream_metrics, test_stream, tvl1_seconds_per_pair, write_scores
    from ..train.trainer import resolve_device
    s, cfg = job.settings, job.config
    check_fusions(cfg.streams, cfg.fusions)
    out = Path(job.out) if job.out else s.stage_dir("evaluate")
    results = []
    for name in cfg.streams:
        model = paths.train_dir(s.results, s.dataset.name, name) / paths.TRAIN_FILES["model"]
        if not model.exists():
            raise StageError(f"evaluate: stream {name} has no trained model {model}; run "
                             f"`prep-cli train --method {name} --dataset {s.dataset.name}` first")
        shards = source_shards(s, get_method(name).inputs)
        r = test_stream(name, model, shards, s.clips, cfg, recipe=s.recipe(name))
        results.append(r)
    classes = results[0].classes
    tvl1 = None
    if cfg.tvl1_pairs and any(r.input == "flow" for r in results):
        rgb = source_shards(s, ("rgb",))["rgb"][0]
        tvl1 = tvl1_seconds_per_pair(rgb, s.extract_flow, cfg.tvl1_pairs)
    k = len(classes)
    by_name = {r.name: r for r in results}
    metrics = {
        "dataset": s.dataset.name, "split": "test", "classes": list(classes), "average": cfg.average,
        "tvl1_seconds_per_pair": tvl1,
        "tvl1": {"backend": s.extract_flow.backend, "pairs": cfg.tvl1_pairs, "device": s.extract_flow.device},
        "device": str(resolve_device(cfg.device)), "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "settings": {"evaluate": section_values(cfg), "clips": section_values(s.clips),
                     "recipes": {r.name: section_values(s.recipe(r.name)) for r in results}},
        "streams": {r.name: stream_metrics(r, k, tvl1) for r in results},
        "fusions": {fusion_name(f): fusion_metrics([by_name[n] for n in parse_fusion(f).names], k, tvl1,
                                                   parse_fusion(f).weights, parse_fusion(f).average,
                                                   parse_fusion(f).normalize) for f in cfg.fusions},
    }
    motion = {}
    if "dmc" in cfg.streams:                 # DMC-Net's cue against TV-L1 (and the demo's true flow), times
        from ..evaluate.motion import dmc_motion
        motion["dmc"] = dmc_motion(paths.train_dir(s.results, s.dataset.name, "dmc") / paths.TRAIN_FILES["model"],
                                   source_shards(s, ("mv", "flow")), s.clips, true_flow_of(s),
                                   resolve_device(cfg.device), cfg.batch_size)
    hidden = [n for n in cfg.streams if n.startswith("hidden")]
    if hidden:                               # MotionNet's flow of each stacked temporal stream, times
        from ..evaluate.motion import motionnet_motion
        for name in hidden:
            motion[name] = motionnet_motion(paths.train_dir(s.results, s.dataset.name, name) /
                                            paths.TRAIN_FILES["model"], source_shards(s, ("rgb", "flow")),
                                            s.clips, true_flow_of(s), resolve_device(cfg.device), cfg.batch_size)
    if motion:
        metrics["motion"] = motion
    if cfg.probe:                            # D3D's motion probe of the RGB-input networks, per layer
        from ..evaluate.probe import probe_networks
        missing = [n for n in cfg.probe if n not in cfg.streams]
        if missing:
            raise ConfigError(f"evaluate.probe: {missing} are not in evaluate.streams ({list(cfg.streams)})")
        metrics["probe"] = probe_networks(
            {n: paths.train_dir(s.results, s.dataset.name, n) / paths.TRAIN_FILES["model"] for n in cfg.probe},
            source_shards(s, ("rgb", "flow")), s.clips, cfg.probe_layers, kind=cfg.probe_kind,
            steps=cfg.probe_steps, device=str(resolve_device(cfg.device)), seed=0, threads=1)
    write_scores(out / paths.EVALUATE_FILES["scores"], results, classes)
    write_text_atomic(out / paths.EVALUATE_FILES["metrics"], json.dumps(metrics, indent=1) + "\n")
    line = ", ".join(f"{n} {m['top1'] * 100:.1f}" for n, m in {**metrics["streams"], **metrics["fusions"]}.items())
    return {"metrics": str(out / paths.EVALUATE_FILES["metrics"]),
            "message": f"top-1 % on {len(results[0].video_ids)} test videos: {line}"}


STAGE = Stage(
    name="evaluate",
    summary="Test the trained streams on the test split (video-level top-1/top-5/mean class accuracy, "
            "fusions, static clips, seconds per video).",
    reads=None, writes=(), uses=("evaluate", "clips", "recipes", "extract_flow"), run=run, per_shard=False,
    options=(Option("--average", "average"), Option("--device", "device"), Option("--batch-size", "batch_size"),
             Option("--tvl1-pairs", "tvl1_pairs"), Option("--probe-steps", "probe_steps")),
)
