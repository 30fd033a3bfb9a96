"""Stage ``train``: one method (``--method``, :mod:`pipeline.train.methods`) on the shards of a dataset, into
``results/train/<dataset>/<method>/``: ``model.pt`` (written last), the resumable ``last.pt``, ``log.jsonl``
(one line per epoch), ``config.json`` (the effective settings) and ``split.json`` (training and validation
videos, both from the train split). The students of the flow teacher (mers, mars, d3d) read its
``model.pt`` (``--teacher``, default the dataset's trained ``flow``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core import paths
from ..core.atomic import write_text_atomic
from ..core.errors import ConfigError, StageError
from ..core.config import Settings, effective_recipe
from ..shards import ShardReader
from ..train import METHODS, SOURCE_STAGE
from ..train import get as get_method
from .contract import DatasetJob, Option, Stage


def source_shards(settings: Settings, modalities) -> dict[str, list[Path]]:
    """``{shard source: [paths]}`` of the stages holding ``modalities``, the same shard indices for every
    source; a missing stage output names the command that writes it."""
    from ..data.dataset import SOURCE               # which shard modality holds each input (torch: lazily)
    out: dict[str, dict[int, Path]] = {}
    for mod in modalities:
        stage = SOURCE_STAGE[mod]
        src = SOURCE[mod][0]
        if src in out:
            continue
        found = paths.shard_files(settings.stage_dir(stage))
        if not found:
            raise StageError(f"no {stage} shards in {settings.stage_dir(stage)}: run "
                             f"`prep-cli {stage.replace('_', '-')} --dataset {settings.dataset.name}` first")
        out[src] = found
    common = sorted(set.intersection(*[set(v) for v in out.values()]))
    missing = {s: sorted(set(v) - set(common)) for s, v in out.items() if set(v) - set(common)}
    if missing or not common:
        raise StageError(f"the shards of {sorted(out)} do not cover the same shard indices "
                         f"(only in one: {missing}); rerun the stage that misses them")
    return {s: [v[k] for k in common] for s, v in out.items()}


def shard_provenance(shards: dict[str, list[Path]]) -> dict:
    """What the run was trained on: the shard files and the manifest they were all written from."""
    shas = set()
    for files in shards.values():
        for p in files:
            with ShardReader(p) as r:
                shas.add(str(r.attrs.get("manifest_sha256", "")))
    if len(shas) > 1:
        raise StageError(f"the shards were written from different manifests ({sorted(shas)}); rerun the "
                         "stages from one manifest")
    return {"manifest_sha256": shas.pop() if shas else "", "shards": {s: [str(p) for p in v] for s, v in shards.items()}}


def check_same_geometry(shards: dict[str, list[Path]]) -> None:
    """DMC-Net's target is the TV-L1 flow of the frames its vectors belong to: the flow (decode stage) and
    the re-encoded frames (mv shards) must have one size, or pixel p of one is not pixel p of the other."""
    sizes = {}
    for src in ("flow", "mv"):
        with ShardReader(shards[src][0]) as r:
            t = r.table()
            sizes[src] = (int(t["width"][0]), int(t["height"][0])) if len(t["width"]) else None
    if None not in sizes.values() and sizes["flow"] != sizes["mv"]:
        raise StageError(f"train: the flow is {sizes['flow'][0]}x{sizes['flow'][1]} and the re-encoded frames "
                         f"{sizes['mv'][0]}x{sizes['mv'][1]}; DMC-Net's target needs one size: set decode.size to "
                         "reencode.size (e.g. [340, 256]) and rerun decode and extract_flow")


def run_linear(job: DatasetJob) -> dict:
    """``--method linear``: the linear probe of a feature set (``--features``, default the first of
    ``extract_features.sets``) into ``results/train/<dataset>/linear_<set>/``: model.pt and metrics.json."""
    from ..data.features import ShardFeatures       # torch: lazily
    from ..features.sets import resolve_sets
    from ..train.checkpoint import save
    from ..train.linear import probe_payload, train_probe
    s, cfg = job.settings, job.config
    name = job.options.get("features") or resolve_sets(s.extract_features)[0].name
    found = list(paths.shard_files(paths.feature_dir(s.results, s.dataset.name, name)).values())
    if not found:
        raise StageError(f"train linear: no features of the set {name!r} in "
                         f"{paths.feature_dir(s.results, s.dataset.name, name)}; run `prep-cli extract-features "
                         f"--dataset {s.dataset.name} --set {name}` first")
    train_set = ShardFeatures(found, split="train", unit=cfg.linear_unit)
    test_set = ShardFeatures(found, split="test", unit=cfg.linear_unit)
    if not train_set.videos:
        raise StageError(f"train linear: the {name} features hold no labelled video of the train split")
    settings = {"linear_epochs": cfg.linear_epochs, "linear_lr": cfg.linear_lr, "seed": cfg.seed,
                "linear_weight_decay": cfg.linear_weight_decay, "linear_unit": cfg.linear_unit,
                "feature_set": name, "shards": [str(p) for p in found],
                "features": {k: v for k, v in train_set.attrs.items() if k.startswith("extract_features.")}}
    probe, metrics = train_probe(train_set, test_set, epochs=cfg.linear_epochs, lr=cfg.linear_lr,
                                 weight_decay=cfg.linear_weight_decay, seed=cfg.seed)
    metrics = {"feature_set": name, "method": str(train_set.attrs.get("extract_features.trained_method", "")),
               "dataset": s.dataset.name, **metrics}
    out = Path(job.out) if job.out else paths.linear_dir(s.results, s.dataset.name, name)
    write_text_atomic(out / paths.TRAIN_FILES["metrics"], json.dumps(_plain(metrics), indent=1) + "\n")
    save(out / paths.TRAIN_FILES["model"], probe_payload(probe, _plain(metrics), name, train_set.classes,
                                                          _plain(settings)))
    return {"model": str(out / paths.TRAIN_FILES["model"]), **metrics,
            "message": f"linear probe on {name}: top-1 {metrics['top1'] * 100:.1f} % on {metrics['test_videos']} "
                       f"test videos (train {metrics['train_top1'] * 100:.1f} %, chance "
                       f"{(metrics['chance'] or 0) * 100:.1f} %) -> {out / paths.TRAIN_FILES['model']}"}


def _plain(value):
    """JSON-able values (numpy scalars and arrays made Python)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def run(job: DatasetJob) -> dict:
    from ..train.trainer import TrainRun, train     # torch: imported when a run starts, not by every prep-cli call
    if not job.options.get("method"):
        raise ConfigError(f"train: give --method, one of {', '.join(METHODS)}, linear")
    if job.options["method"] == "linear":
        return run_linear(job)
    method = get_method(job.options["method"])
    s = job.settings
    out = Path(job.out) if job.out else paths.train_dir(s.results, s.dataset.name, method.name)
    shards = source_shards(s, method.loads)
    teacher = None
    if method.teacher:
        teacher = Path(job.options.get("teacher") or
                       paths.train_dir(s.results, s.dataset.name, method.teacher) / paths.TRAIN_FILES["model"])
        if not teacher.exists():
            raise StageError(f"train {method.name}: the {method.teacher} teacher {teacher} does not exist; run "
                             f"`prep-cli train --method {method.teacher} --dataset {s.dataset.name}` first")
    if "mv" in method.loads and "flow" in method.loads:
        check_same_geometry(shards)
    init = None
    if method.init:
        init = paths.train_dir(s.results, s.dataset.name, method.init) / paths.TRAIN_FILES["model"]
        if not init.exists():
            raise StageError(f"train {method.name}: it starts from the trained {method.init} {init}, which does not "
                             f"exist; run `prep-cli train --method {method.init} --dataset {s.dataset.name}` first")
    summary = train(TrainRun(method=method.name, train=job.config, clips=s.clips, shards=shards, out_dir=out,
                             teacher=teacher, progress=job.options.get("progress", True), gop=s.reencode.gop,
                             init=init, recipe=effective_recipe(s.recipes[method.name], train=job.config,
                                                                clips=s.clips),
                             provenance={"dataset": s.dataset.name, **shard_provenance(shards)}),
                    resume=job.options.get("resume", False))
    acc = summary.get("val_acc")
    summary["message"] = (f"{method.name}: {summary['epochs']} epochs on {summary['train_videos']} videos"
                          + (f", resumed after epoch {summary['resumed_after']}" if summary.get("resumed_after") else "")
                          + (f", validation clip accuracy {acc:.3f}" if acc is not None else "")
                          + f" -> {summary['model']}")
    return summary


STAGE = Stage(
    name="train",
    summary="Train one method (flow teacher, RGB, MERS, MARS, D3D, residual-frame or appearance path, CoViAR's "
            "I-frame, motion-vector and residual streams, DMC-Net, Hidden Two-Stream's spatial and stacked temporal "
            "streams) on the dataset's shards, or the linear probe "
            "of a feature set (--method linear --features SET).",
    reads=None, writes=(), uses=("train", "clips", "recipes", "reencode.gop"), run=run, per_shard=False,
    options=(
        Option("--method", "method", config=False, type=None, default=None,
               help=f"What to train: {', '.join(METHODS)}; or linear: the linear probe of a feature set (--features)."),
        Option("--features", "features", config=False, type=str, default=None,
               help="--method linear: the feature set probed (results/extract_features/<dataset>/<set>/; default: "
                    "the first of extract_features.sets)."),
        Option("--resume", "resume", config=False, is_flag=True,
               help="Continue from the run folder's last.pt when it was written with the same settings (the same next step as an uninterrupted run); otherwise start over. The workflow always passes it, so a killed or preempted job resumes."),
        Option("--teacher", "teacher", config=False, type=str, default=None,
               help="The flow teacher's model.pt for mers/mars/d3d (default: <results>/train/<dataset>/flow/model.pt)."),
        Option("--progress/--no-progress", "progress", config=False, default=True, help="Show progress bars."),
        Option("--epochs", "epochs"), Option("--batch-size", "batch_size"), Option("--lr", "lr"),
        Option("--seed", "seed"), Option("--workers", "workers"), Option("--device", "device"),
        Option("--precision", "precision"), Option("--pretrained", "pretrained"),
        Option("--finetune", "finetune"), Option("--pretrained-format", "pretrained_format"),
        Option("--cross-modality/--no-cross-modality", "cross_modality"),
    ),
)
