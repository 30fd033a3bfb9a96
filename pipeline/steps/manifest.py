"""Stage ``manifest``: a dataset's official split files -> the canonical manifest TSV
(``<manifests>/<dataset>.tsv``, :mod:`pipeline.core.manifest`), with every entry checked on disk.

The dataset is a config entry, or any supported format named with ``--dataset`` plus ``--root`` (and
``--splits``) when the config has no entry of that name (:mod:`pipeline.formats`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..core.manifest import SPLITS, Manifest
from .contract import DatasetJob, Option, Stage
from ..formats import build_manifest


def summary(m: Manifest, out: Path) -> str:
    """One line: videos per split and the number of classes."""
    counts = Counter(e.split for e in m.entries)
    per_split = ", ".join(f"{s} {counts[s]}" for s in SPLITS if counts[s])
    return (f"{m.dataset} ({m.format}): {len(m)} videos ({per_split or 'none'}), {len(m.classes)} classes "
            f"-> {out}")


def run(job: DatasetJob) -> dict:
    ds = job.settings.dataset
    out = Path(job.out) if job.out else job.settings.manifest_path
    m = build_manifest(ds.format, ds.root, ds.splits, ds.split, ds.name,
                       check_files=not job.options["no_check_files"], allow_missing=job.options["allow_missing"])
    m.write(out)
    return {"videos": len(m), "out": str(out), "message": summary(m, out)}


STAGE = Stage(
    name="manifest",
    summary="Build the manifest (video id, path, label, split) of a dataset from its official split files.",
    reads=None, writes=(), uses=(), run=run, per_shard=False,
    options=(
        Option("--allow-missing", "allow_missing", config=False, is_flag=True,
               help="Drop entries whose file is missing (with a warning) instead of refusing."),
        Option("--no-check-files", "no_check_files", config=False, is_flag=True,
               help="Do not check that every entry exists on disk."),
    ),
)
