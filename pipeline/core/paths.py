"""Every result path the product writes, defined once.

A stage ``S`` of dataset ``D`` writes under ``<results>/S/D/`` (its *stage folder*) and logs under
``<logs>/S/D/``. Per-shard outputs share the stem ``shard-KKKKK`` (5 digits, 0-based)::

    shard-00003.h5              the shard (docs/shard-format.md)
    shard-00003.failures.json   the failure report beside it: [{video_id, stage, error}, ...]
    shard-00003.iframes.h5      extract_mv: the I-frames, one JPEG per GOP
    shard-00003/                reencode: the MPEG-4 files, <video file name>.avi
    shard-00003.index.h5        reencode: where each file's packets and GOPs are (an mv shard, mpeg4-index)
    shard-00003.done.json       reencode: the done-marker (files, frame counts, parameters), written last

The Snakemake rules (``stages/common.smk``) build their paths from the ``*_PATTERN`` strings here, with
``{shard}`` a Snakemake wildcard; ``prep-cli`` formats the same strings with a shard number.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SHARD_STEM = "shard-{shard}"
#: output kind -> file name pattern of one shard's output (``{shard}``: 5-digit index)
OUTPUT_PATTERNS = {
    "shard": SHARD_STEM + ".h5",
    "failures": SHARD_STEM + ".failures.json",
    "iframes": SHARD_STEM + ".iframes.h5",
    "folder": SHARD_STEM,
    "index": SHARD_STEM + ".index.h5",
    "done": SHARD_STEM + ".done.json",
}
SHARD_GLOB = SHARD_STEM.format(shard="*") + ".h5"     # every shard of a stage folder (side files excluded below)
LOG_PATTERN = SHARD_STEM + ".log"
MANIFEST_PATTERN = "{dataset}.tsv"
#: the demo dataset's files inside its root (written by make_demo, read by the manifest stage)
DEMO_FILES = {"classes": "classes.txt", "split": "split.csv", "true_flow": "true_flow.h5"}
#: pictures of the first video of shard 0 of a stage (``prep-cli visualize-mv``, the Snakemake rule)
PICTURES_FOLDER = "png"
PICTURES_LOG = "visualize_mv.log"
#: the picture files: flow colours and strip (visualize-flow), mv rows and overview (visualize-mv)
FLOW_PICTURE, FLOW_STRIP = "color_{:05d}.png", "strip.png"
MV_PICTURE, MV_OVERVIEW = "{video}-frame{index:04d}.png", "{video}-overview.png"
#: one training run, ``<results>/train/<dataset>/<method>/``: the final model (written last), the resumable
#: checkpoint of the last finished epoch, the per-epoch log (JSON lines), the effective settings and the
#: train / validation video ids
TRAIN_FILES = {"model": "model.pt", "checkpoint": "last.pt", "log": "log.jsonl", "config": "config.json",
               "split": "split.json", "metrics": "metrics.json"}
#: the linear probe of feature set S is the training run ``linear_<S>`` (model.pt and metrics.json)
LINEAR_RUN = "linear_{set}"
#: the evaluation of a dataset, ``<results>/evaluate/<dataset>/``: metrics per stream and fusion, and the
#: video-level scores of every stream (for later fusion)
EVALUATE_FILES = {"metrics": "metrics.json", "scores": "scores.h5"}
#: the report of a dataset, ``<results>/report/<dataset>/``
REPORT_FILE = "report.md"
#: the report's own figures, beside report.md
REPORT_FIGURES = {"accuracy_time": "accuracy_vs_time.png", "training": "training_curves.png",
                  "static": "static_drop.png", "probe": "probe_epe.png"}


def train_dir(results: str | Path, dataset: str, method: str) -> Path:
    """``<results>/train/<dataset>/<method>``: one method's run folder."""
    return stage_dir(results, "train", dataset) / method


def feature_dir(results: str | Path, dataset: str, feature_set: str) -> Path:
    """``<results>/extract_features/<dataset>/<set>``: the feature shards of one feature set."""
    return stage_dir(results, "extract_features", dataset) / feature_set


def linear_dir(results: str | Path, dataset: str, feature_set: str) -> Path:
    """``<results>/train/<dataset>/linear_<set>``: the linear probe of one feature set."""
    return train_dir(results, dataset, LINEAR_RUN.format(set=feature_set))


def shard_id(shard: int) -> str:
    """0 -> ``"00000"``: the index as every file name spells it."""
    if shard < 0:
        raise ValueError(f"shard index must be >= 0, got {shard}")
    return f"{shard:05d}"


def output_name(kind: str, shard: int) -> str:
    """File (or folder) name of one shard's output of ``kind`` (a key of :data:`OUTPUT_PATTERNS`)."""
    return OUTPUT_PATTERNS[kind].format(shard=shard_id(shard))


def shard_name(shard: int) -> str:
    """``shard-00003.h5``."""
    return output_name("shard", shard)


def failures_name(shard: int) -> str:
    """``shard-00003.failures.json``."""
    return output_name("failures", shard)


def shard_index(path: str | Path) -> int | None:
    """``.../shard-00003.h5`` (any output of a shard) -> 3; None for a name that is not a shard output."""
    head, _, tail = SHARD_STEM.partition("{shard}")
    m = re.match(re.escape(head) + r"(\d+)(\.|$)" + re.escape(tail), Path(path).name)
    return int(m.group(1)) if m else None


def shard_files(folder: str | Path) -> dict[int, Path]:
    """The shards (``shard-K.h5``, not their side files) in a stage folder: index -> path, in index order."""
    found = {}
    for p in sorted(Path(folder).glob(SHARD_GLOB)):
        k = shard_index(p)
        if k is not None and p.name == shard_name(k):
            found[k] = p
    return found


def failures_path_for(shard_path: str | Path) -> Path:
    """The failure report beside a shard: ``.../shard-00003.h5`` -> ``.../shard-00003.failures.json``."""
    p = Path(shard_path)
    k = shard_index(p)
    if k is None:
        raise ValueError(f"{p.name} is not the name of a shard output")
    return p.with_name(output_name("failures", k))


def stage_dir(results: str | Path, stage: str, dataset: str) -> Path:
    """``<results>/<stage>/<dataset>``: where ``stage`` writes this dataset's outputs."""
    return Path(results) / stage / dataset


def log_dir(logs: str | Path, stage: str, dataset: str) -> Path:
    """``<logs>/<stage>/<dataset>``: one log per shard job (``shard-K.log``) or per dataset job."""
    return Path(logs) / stage / dataset


def dataset_log(logs: str | Path, stage: str, dataset: str) -> Path:
    """``<logs>/<stage>/<dataset>.log``: the log of a stage run once per dataset (make_demo, manifest)."""
    return Path(logs) / stage / f"{dataset}.log"


def manifest_path(manifests: str | Path, dataset: str) -> Path:
    """``<manifests>/<dataset>.tsv``: the canonical manifest of a dataset."""
    return Path(manifests) / MANIFEST_PATTERN.format(dataset=dataset)


def video_stem(video_id: str) -> str:
    """A file-name-safe stem for a video id: unsafe characters replaced, plus a short hash of the id when
    anything was replaced (so distinct ids never collide)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", video_id)
    if safe != video_id or safe.startswith("."):
        safe = f"{safe}-{hashlib.sha1(video_id.encode()).hexdigest()[:8]}"
    return safe


def video_filename(video_id: str) -> str:
    """File name of a video's re-encoded copy: :func:`video_stem` and ``.avi``."""
    return f"{video_stem(video_id)}.avi"


__all__ = ["LINEAR_RUN", "feature_dir", "linear_dir", "TRAIN_FILES", "EVALUATE_FILES", "REPORT_FILE", "REPORT_FIGURES", "train_dir", "OUTPUT_PATTERNS", "SHARD_GLOB", "LOG_PATTERN", "MANIFEST_PATTERN", "DEMO_FILES", "PICTURES_FOLDER", "shard_id",
           "output_name", "shard_name", "failures_name", "failures_path_for", "shard_index", "shard_files", "stage_dir",
           "log_dir", "dataset_log", "manifest_path", "video_stem", "video_filename", "PICTURES_LOG", "FLOW_PICTURE",
           "FLOW_STRIP", "MV_PICTURE", "MV_OVERVIEW"]
