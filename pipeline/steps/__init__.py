"""The stages, one module each, in workflow order. Each module defines ``STAGE``, a
:class:`pipeline.steps.contract.Stage` (the contract: what it reads, writes, uses and records), and the
functions that do its work; ``prep-cli`` builds one command from each (:mod:`pipeline.cli.stage_commands`)
and ``stages/<name>.smk`` holds its Snakemake rule.

=================  ========================  =================================================
stage              reads                     writes (per shard, in results/<stage>/<dataset>/)
=================  ========================  =================================================
make_demo          (the config)              the demo dataset: videos, split.csv, true_flow.h5
manifest           official split files      manifests/<dataset>.tsv
decode             manifest                  shard-K.h5 (rgb), shard-K.failures.json
extract_flow       decode                    shard-K.h5 (flow), shard-K.failures.json
reencode           manifest                  shard-K/*.avi, shard-K.done.json, failures
extract_mv         reencode                  shard-K.h5 (mv), shard-K.iframes.h5, failures
resframe           decode                    shard-K.h5 (resframe), shard-K.failures.json
train              the shards of a method    train/<dataset>/<method>/: model.pt, last.pt, log.jsonl
evaluate           trained models, shards    metrics.json, scores.h5
extract_features   trained models, shards    <set>/shard-K.h5 (feature), <set>/shard-K.failures.json
report             metrics, logs, shards     report.md and its PNGs
=================  ========================  =================================================
"""

from __future__ import annotations

import importlib

from .contract import Stage

#: stage names in workflow order (the module of each is ``pipeline.steps.<name>``)
NAMES = ("make_demo", "manifest", "decode", "extract_flow", "reencode", "extract_mv", "resframe", "train", "evaluate",
         "extract_features", "report")


def get(name: str) -> Stage:
    """The declaration of stage ``name``."""
    if name not in NAMES:
        raise KeyError(f"unknown stage {name!r}; stages: {list(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").STAGE


def all_stages() -> list[Stage]:
    return [get(n) for n in NAMES]


__all__ = ["NAMES", "get", "all_stages", "run_shard"]


def run_shard(name: str, settings, shard: int, **job) -> dict:
    """Run stage ``name`` on one shard from Python: ``run_shard("decode", settings, 0, manifest=m)``.
    ``job``: the keyword arguments of :func:`pipeline.steps.contract.shard_job` (manifest, input_dir, out_dir,
    config, strict, root, progress, options)."""
    from .contract import shard_job
    stage = get(name)
    return stage.run(shard_job(stage, settings, shard, **job))
