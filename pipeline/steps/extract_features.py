"""Stage ``extract_features``: a trained network's features of every clip of every video of one shard, per
feature set (``extract_features.sets``), into ``results/extract_features/<dataset>/<set>/shard-K.h5``
(modality ``feature``, docs/shard-format.md) and its failure report.

One job is one shard of one set: it reads shard K of every modality the set's network takes (RGB, flow,
motion vectors and residuals, residual frames), runs the network (``results/train/<dataset>/<method>/
model.pt`` or the set's checkpoint) on clips of ``length`` frames every ``stride`` frames in batches across
videos (:mod:`pipeline.features.extract`) and stores per video its clip features (clips, D), each clip's
first and last frame and its start and end in seconds, and optionally its logits. Every output records the
upstream shards' parameters and the set's (network, checkpoint SHA-256, layer, pooling, clip length and
stride, view, dtype); a rerun finds a complete shard of the same parameters and keeps it (resumable)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..core import paths
from ..core.errors import CheckpointError, ConfigError, ShardError, StageError
from ..features.sets import FeatureSet, resolve_sets, view_name, with_stride
from ..shards import ShardReader, ShardWriter, Stream
from ..train import SOURCE_STAGE
from .contract import Option, ShardJob, Stage, VideoFailure, VideoResult, write_shard

NAME = "extract_features"


def job_sets(job: ShardJob) -> list[FeatureSet]:
    """The feature sets of a job: ``--set`` / ``--method`` / ``--checkpoint``, else every configured set."""
    o = job.options
    return resolve_sets(job.config, o.get("set"), o.get("method"), o.get("checkpoint"))


def checkpoint_of(job: ShardJob, fs: FeatureSet) -> Path:
    """The model a set runs: its checkpoint, else its method's trained ``model.pt`` (a missing one names
    the command that writes it)."""
    s = job.settings
    if fs.checkpoint:
        p = Path(fs.checkpoint)
        if not p.is_file():
            raise StageError(f"{NAME} {fs.name}: the checkpoint {p} does not exist")
        return p
    p = paths.train_dir(s.results, s.dataset.name, fs.method) / paths.TRAIN_FILES["model"]
    if not p.is_file():
        raise StageError(f"{NAME} {fs.name}: no trained {fs.method} model {p}; run "
                         f"`prep-cli train --method {fs.method} --dataset {s.dataset.name}` first")
    return p


def load_network(ck: Path, fs: FeatureSet, device) -> tuple[Any, dict]:
    """The network of ``ck`` in eval mode on ``device`` and its checkpoint entries: a trained motionprep
    ``model.pt``, or any file ``prep-cli models import`` reads (published weights, an imported checkpoint),
    converted on the fly; such a file names no method, so the set's ``method`` says what input the network
    takes (and its recipe the clips and view), and its classes are numbered."""
    from ..train.checkpoint import load as ckpt_load
    from ..train.methods import METHODS
    from ..train.pretrained import network
    from ..train.trainer import model_of
    try:
        data = ckpt_load(ck)
    except CheckpointError:
        data = None
    if data is not None and data.get("method") in METHODS:
        return model_of(data, device), data               # the checkpoint read once
    if not fs.method or fs.method not in METHODS:
        raise ConfigError(f"{NAME} {fs.name}: {ck} is not a trained motionprep model; give the set a method "
                          f"whose input and recipe its network takes (e.g. method: rgb), one of {', '.join(METHODS)}")
    model, spec, info = network(str(ck))
    method = METHODS[fs.method]
    data = {"method": fs.method, "model_spec": dict(spec), "input": method.input, "settings": {},
            "classes": [f"class_{i}" for i in range(int(spec["num_classes"]))], "source": info.get("format")}
    return model.to(device), data


def source_paths(job: ShardJob, inputs: Iterable[str]) -> dict[str, Path]:
    """``{shard source: shard K}`` of the stages holding the network's ``inputs``, each checked to belong to
    this shard of the manifest."""
    from ..data.dataset import SOURCE
    out: dict[str, Path] = {}
    for mod in inputs:
        stage, src = SOURCE_STAGE[mod], SOURCE[mod][0]
        if src in out:
            continue
        p = job.settings.stage_dir(stage) / paths.shard_name(job.shard)
        if not p.exists():
            raise StageError(f"{NAME}: shard {job.shard}: {p} is missing; run "
                             f"`prep-cli {stage.replace('_', '-')} --dataset {job.settings.dataset.name}` first")
        with ShardReader(p) as r:
            a = r.attrs
        want = {"manifest_sha256": job.manifest.sha256, "shard": job.shard, "dataset": job.manifest.dataset}
        bad = {k: (a.get(k), v) for k, v in want.items() if a.get(k) != v}
        if bad:
            raise ShardError(f"{NAME}: {p} does not belong to shard {job.shard} of manifest {job.manifest.dataset} "
                             f"({bad}); rerun `prep-cli {stage.replace('_', '-')}`")
        out[src] = p
    return out


def upstream_record(sources: dict[str, Path]) -> tuple[dict, list[dict], dict[str, float]]:
    """The merged recorded parameters of the source shards, their failures (each video once) and every
    video's frame rate."""
    params: dict = {}
    failures: dict[str, dict] = {}
    fps: dict[str, float] = {}
    for p in sources.values():
        with ShardReader(p) as r:
            for section, values in r.params.items():
                params[section] = ({**params.get(section, {}), **values} if isinstance(values, dict) else values)
            for f in r.failures:
                failures.setdefault(f["video_id"], f)
            t = r.table()
            fps.update({str(v): float(x) for v, x in zip(t["video_id"], t["fps"])})
    return params, list(failures.values()), fps


def set_params(fs: FeatureSet, data: dict, sha: str, view: str, precision: str) -> dict:
    """The ``extract_features`` provenance of one set: its settings resolved, the network and checkpoint."""
    return {**fs.record(), "test_view": view,
            "network": data["model_spec"]["arch"], "trained_method": data["method"], "input": data["input"],
            "checkpoint": str(fs.checkpoint or ""), "checkpoint_sha256": sha, "precision": precision}


def feature_streams(dim: int, fs: FeatureSet, classes: int, shape: tuple[int, ...]) -> list[Stream]:
    """The streams of a feature shard: ``feature`` (D,) of the set's dtype, ``frame_range`` (2,) int32,
    ``time`` (2,) float64 and, with logits, ``logits`` (C,) float32; one row a clip."""
    out = [Stream("feature", kind="array", shape=(dim,), dtype=fs.dtype,
                  attrs={"layer": fs.layer, "pool": fs.pool, "feature_shape": np.asarray(shape, np.int64)}),
           Stream("frame_range", kind="array", shape=(2,), dtype="int32",
                  attrs={"meaning": "first and last frame index of the clip (inclusive)"}),
           Stream("time", kind="array", shape=(2,), dtype="float64",
                  attrs={"meaning": "start of the first frame and end of the last, seconds"})]
    if fs.logits:
        out.append(Stream("logits", kind="array", shape=(classes,), dtype="float32"))
    return out


def is_current(path: Path, params: dict) -> bool:
    """A complete shard at ``path`` written with ``params`` (the same inputs and settings)?"""
    if not path.is_file():
        return False
    try:
        with ShardReader(path) as r:
            return json.dumps(r.params, sort_keys=True) == json.dumps(params, sort_keys=True)
    except (OSError, ShardError):
        return False


def run_set(job: ShardJob, fs: FeatureSet) -> dict:
    """One shard of one feature set (see the module docstring)."""
    from ..evaluate.run import checkpoint_recipe        # torch: imported when a job runs
    from ..features.extract import per_video, run_items, sha256_of
    from ..data.dataset import ShardClips, SOURCE
    from ..train.methods import get as get_method
    from ..train.trainer import method_clips, resolve_device, use_bf16
    s, cfg = job.settings, job.config
    out = job.out_dir / fs.name / paths.shard_name(job.shard)
    ck = checkpoint_of(job, fs)
    device = resolve_device(cfg.device)
    bf16 = use_bf16(cfg.precision, device)
    model, data = load_network(ck, fs, device)
    method = get_method(data["method"])
    recipe = checkpoint_recipe(data, s.clips)
    if method.length is not None and fs.length not in (None, method.length):
        raise ConfigError(f"{NAME} {fs.name}: {method.name} sees clips of {method.length} frame(s); length "
                          f"{fs.length} does not apply")
    fs = with_stride(fs, method.length or recipe.length)
    view = view_name(fs.view, recipe.test_view)
    sources = source_paths(job, method.inputs)
    upstream, up_failures, fps = upstream_record(sources)
    params = {**upstream, NAME: set_params(fs, data, sha256_of(ck), view, "bf16" if bf16 else "fp32")}
    if is_current(out, params):
        with ShardReader(out) as r:
            n, failed = len(r), len(r.failures)
        return {"shard": str(out), "videos": n, "frames": 0, "failures": failed,
                "message": f"{fs.name}: up to date, kept"}
    clips = ShardClips.from_config({src: [p] for src, p in sources.items()}, "+".join(method.inputs), s.clips,
                                   dataclasses.replace(recipe, test_view=view), mode="test", split=None,
                                   test_stride=fs.stride, **{**method_clips(method, int(data.get("gop", 12))),
                                                             "length": fs.length})
    items = run_items(model, method, clips, batch_size=cfg.batch_size, workers=cfg.workers, device=device,
                      bf16=bf16, layer=fs.layer, pool=fs.pool, logits=fs.logits, pad=device.type == "cuda")
    shape = items.shape or (items.features.shape[1],)
    src0 = SOURCE[method.inputs[0]][0]
    writer = ShardWriter(out, modality="feature", encoding="raw", params=params,
                         streams=feature_streams(items.features.shape[1], fs, len(data["classes"]), shape),
                         video_fields={"source_frames": "int32"}, **job.shard_attrs())

    def results() -> Iterator[VideoResult | VideoFailure]:
        seen = {f["video_id"] for f in up_failures}
        for res in per_video(clips, items, fps):
            if isinstance(res, tuple):
                v, error = res
                yield VideoFailure(clips.videos[v].video_id, NAME, f"{error} (video {clips.videos[v].video_id})")
                seen.add(clips.videos[v].video_id)
                continue
            e = clips.videos[res.index]
            seen.add(e.video_id)
            frames = {"feature": res.features.astype(fs.dtype), "frame_range": res.frames, "time": res.times}
            if fs.logits:
                frames["logits"] = res.logits
            h, w = e.sizes[src0]
            yield VideoResult(e.video_id, e.label, e.split, fps[e.video_id], h, w, frames,
                              fields={"source_frames": e.num_frames})
        for entry in job.entries():           # in the manifest, in no source shard (nor its failures)
            if entry.video_id not in seen:
                yield VideoFailure(entry.video_id, NAME, f"InputError: video {entry.video_id} is not in every "
                                                         f"shard of {sorted(sources)} (shard {job.shard})")

    summary = write_shard({"shard": writer}, results(), stage=NAME, strict=job.strict, total=len(clips.videos),
                          upstream_failures=up_failures, progress=job.progress)
    waited = items.wait_seconds / max(items.wait_seconds + items.compute_seconds, 1e-9)
    summary["message"] = (f"{fs.name}: {items.clips} clips of {fs.length} frames every {fs.stride}, "
                          f"D={items.features.shape[1]}, {waited:.0%} of the time waiting for data")
    summary["frames"] = items.clips
    return summary


def run_many(jobs: Iterable[ShardJob]) -> Iterator[dict]:
    for job in jobs:
        for fs in job_sets(job):
            yield run_set(job, fs)


def run(job: ShardJob) -> dict:
    """Every set of the job on its shard; the summary of the last, the others' counts added."""
    out = list(run_many([job]))
    if len(out) == 1:
        return out[0]
    return {"shard": ", ".join(o["shard"] for o in out), "videos": sum(o["videos"] for o in out),
            "frames": sum(o["frames"] for o in out), "failures": sum(o["failures"] for o in out),
            "message": "; ".join(o.get("message", "") for o in out), "sets": out}


STAGE = Stage(
    name=NAME,
    summary="Network features of every clip of every video (a trained method or a checkpoint, any layer, "
            "clip length/stride, view) into results/extract_features/<dataset>/<set>/shard-K.h5.",
    reads="manifest", writes=("shard", "failures"), uses=(NAME, "clips"), run=run, run_many=run_many, wildcard="set",
    options=(
        Option("--set", "set", config=False, type=str, default=None,
               help="The feature set of extract_features.sets to extract (default: every set), or the name of "
                    "the set --method / --checkpoint makes (default: the method's name)."),
        Option("--method", "method", config=False, type=str, default=None,
               help="Extract the features of this trained method (results/train/<dataset>/<method>/model.pt) "
                    "instead of the configured sets."),
        Option("--checkpoint", "checkpoint", config=False, type=str, default=None,
               help="Extract the features of this checkpoint instead: a trained model.pt, or published weights in any layout prep-cli models import reads (with --method: the input and recipe it takes)."),
        Option("--layer", "layer"), Option("--pool", "pool"), Option("--length", "length"),
        Option("--stride", "stride"), Option("--view", "view"), Option("--dtype", "dtype"),
        Option("--logits", "logits"), Option("--batch-size", "batch_size"), Option("--workers", "workers"),
        Option("--device", "device"), Option("--precision", "precision"),
    ),
)
