# Shared helpers: the resolved config every prep-cli call gets, the result paths (from pipeline.core.paths,
# the one module that defines them), the shard list, and the one shape of a stage's shell command.
import hashlib
import json
import os

import yaml

from pipeline.core import paths
from pipeline.core.config import resolve
from pipeline.core.manifest import num_shards, read_manifest
from pipeline.steps import get as get_stage
from pipeline.steps.contract import rule_params
from pipeline.train import SOURCE_STAGE

DATASET = config["dataset"]
SETTINGS = resolve(config, DATASET)  # validates overrides too: a bad value stops the workflow here
if SETTINGS.dataset.manifest:
    raise ValueError(f"dataset {DATASET!r}: the workflow writes its manifest to "
                     f"{paths.manifest_path(SETTINGS.manifests, DATASET)}; `manifest:` is for prep-cli runs")
RESULTS = SETTINGS.results
LOGS = SETTINGS.logs


CONFIG_TEXT = yaml.safe_dump(dict(config), sort_keys=True)   # the config file plus --config overrides


def _write_config(name):
    """.snakemake/motionprep/config-<name>.yaml holding the whole config Snakemake sees, for the prep-cli
    calls (rewritten when this run's config differs from the file's)."""
    path = os.path.join(".snakemake", "motionprep", f"config-{name}.yaml")
    if not os.path.exists(path) or open(path).read() != CONFIG_TEXT:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(CONFIG_TEXT)
        os.replace(tmp, path)
    return path


def stage_config(stage):
    """`params.config` of a stage's rules: the whole config, in a file named after what the stage's outputs
    depend on (pipeline.steps.contract.rule_params: the parts it uses, the dataset entry), so Snakemake's
    "params changed" reruns a rule when those change and not when another stage's settings do."""
    def config_file(wildcards):
        name = wildcards.get("dataset", DATASET)
        if (stage, name) not in _STAGE_CONFIGS:          # once per stage and dataset, not once per job
            fp = json.dumps(rule_params(dataset_settings(name), get_stage(stage)), sort_keys=True, default=str)
            _STAGE_CONFIGS[stage, name] = _write_config(
                f"{stage}-{hashlib.sha256(f'{name}:{fp}'.encode()).hexdigest()[:16]}")
        return _STAGE_CONFIGS[stage, name]
    return config_file


_STAGE_CONFIGS = {}  # (stage, dataset) -> its config file, for this run
TARGET_FUNCTIONS = []  # each stage file appends a function (dataset name -> list of files) for `rule all`


def dataset_settings(name):
    return resolve(config, name)


def manifest_path(name):
    return str(dataset_settings(name).manifest_path)


def stage_dir(stage, dataset="{dataset}"):
    """<results>/<stage>/<dataset> (a wildcard by default)."""
    return str(paths.stage_dir(RESULTS, stage, dataset))


def _sub(stage, sub):
    """The folder level of a stage whose outputs lie one deeper (Stage.wildcard): `sub`, else the wildcard."""
    w = get_stage(stage).wildcard
    return "" if not w else f"/{sub if sub is not None else '{' + w + '}'}"


def stage_output(stage, kind, dataset="{dataset}", shard="{shard}", sub=None):
    """One shard's output of kind `kind` (a key of paths.OUTPUT_PATTERNS); wildcards by default (and, for a
    stage with a `wildcard`, its folder level: `sub`, else that wildcard)."""
    return f"{stage_dir(stage, dataset)}{_sub(stage, sub)}/{paths.OUTPUT_PATTERNS[kind].format(shard=shard)}"


def stage_outputs(stage):
    """The rule's outputs: every output kind the stage declares, as named outputs."""
    return {kind: (directory(stage_output(stage, kind)) if kind == "folder" else stage_output(stage, kind))
            for kind in get_stage(stage).writes}


def stage_log(stage):
    return f"{paths.log_dir(LOGS, stage, '{dataset}')}{_sub(stage, None)}/{paths.LOG_PATTERN}"


def prep_cli(stage, extra=""):
    """The one shell command of a per-shard rule: `prep-cli <stage>` on shard {wildcards.shard}, reading the
    upstream stage's folder when it has one, its log in {log}."""
    s = get_stage(stage)
    upstream = f" --input {stage_dir(s.upstream, '{wildcards.dataset}')}" if s.upstream else ""
    if s.wildcard:
        upstream += f" --{s.wildcard} {{wildcards.{s.wildcard}}}"
    return (f"prep-cli {s.command} --config {{params.config}} --dataset {{wildcards.dataset}}"
            f" --manifest {{params.manifest}} --shard {{wildcards.shard}}{upstream}"
            f" --out {stage_dir(stage, '{wildcards.dataset}')} --no-progress{extra} > {{log}} 2>&1")


def shard_ids(name):
    """Shard ids ("00000", ...) of a dataset, read from its manifest once the manifest checkpoint ran."""
    path = checkpoints.manifest.get(dataset=name).output.manifest
    n = num_shards(len(read_manifest(path)), dataset_settings(name).videos_per_shard)
    return [paths.shard_id(k) for k in range(n)]


def stage_targets(stage, name):
    """Every output of every shard of `stage` for dataset `name` (for `rule all`)."""
    kinds = get_stage(stage).writes
    return [stage_output(stage, kind, name, k) for k in shard_ids(name) for kind in kinds]


def all_targets(wildcards):
    return [path for fn in TARGET_FUNCTIONS for path in fn(DATASET)]


wildcard_constraints:
    shard=r"\d{5}",
    dataset=r"[A-Za-z0-9_.-]+",
