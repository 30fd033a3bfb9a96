# Shared helpers: the resolved config file every prep-cli call gets, paths, and the shard list.
import hashlib
import os

import yaml

from pipeline.config import resolve
from pipeline.manifest import num_shards, read_manifest

DATASET = config["dataset"]
SETTINGS = resolve(config, DATASET)  # validates overrides too: a bad value stops the workflow here
RESULTS = SETTINGS.results
LOGS = SETTINGS.logs


def _write_config():
    """The config Snakemake sees (config file plus --config overrides), for the prep-cli calls."""
    text = yaml.safe_dump(dict(config), sort_keys=True)
    path = os.path.join(".snakemake", "motionprep", f"config-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


CONFIG_FILE = _write_config()
TARGET_FUNCTIONS = []  # each stage file appends a function (wildcards -> list of files) for `rule all`


def dataset_settings(name):
    return resolve(config, name)


def manifest_path(name):
    return str(dataset_settings(name).manifest_path)


def shard_ids(name):
    """Shard ids ("00000", ...) of a dataset, read from its manifest once the manifest checkpoint ran."""
    path = checkpoints.manifest.get(dataset=name).output.manifest
    n = num_shards(len(read_manifest(path)), dataset_settings(name).videos_per_shard)
    return [f"{k:05d}" for k in range(n)]


def stage_shards(stage, name, suffixes=(".h5", ".failures.json")):
    return [f"{RESULTS}/{stage}/{name}/shard-{k}{s}" for k in shard_ids(name) for s in suffixes]


def all_targets(wildcards):
    return [path for fn in TARGET_FUNCTIONS for path in fn(DATASET)]


wildcard_constraints:
    shard=r"\d{5}",
    dataset=r"[A-Za-z0-9_.-]+",
