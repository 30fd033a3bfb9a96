"""A generic CSV list: header ``path,label[,split]``.

``path`` is relative to the root (``/`` or ``\\`` separators; absolute paths and ``..`` refused); an empty
``label`` makes the entry unlabeled; ``split`` defaults to ``train`` (``validate``/``validation`` mean
``val``). Classes are the sorted unique labels, unless a class list is given (the ``demo`` format).
``video_id`` is the file stem, unique across the dataset.

The CSV file: ``splits`` when it is a file; else ``split.csv`` in the ``splits`` folder (default: the root),
or the only ``*.csv`` file there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..core.manifest import SPLITS, Manifest, ManifestError, make_manifest
from .common import Rows, read_csv, require_file, safe_relpath, stem

SPLIT_ALIASES = {"validate": "val", "validation": "val", "": "train"}


def find_csv(root: Path, splits: Path | None) -> Path:
    """The list file (see the module docstring)."""
    if splits is not None and splits.is_file():
        return splits
    folder = splits or root
    if (folder / "split.csv").is_file():
        return folder / "split.csv"
    csvs = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if len(csvs) == 1:
        return csvs[0]
    raise ManifestError(f"csv: no list file: pass --splits FILE, or put split.csv in {folder} "
                        f"(found {[c.name for c in csvs]})")


def parse_csv(path: Path, root: Path, dataset: str, fmt: str = "csv",
              classes: Sequence[str] | None = None) -> Manifest:
    """Read ``path,label[,split]`` rows; ``classes`` fixes the class list and its order when given."""
    require_file(path, f"{fmt} list")
    raw = []
    for n, row in read_csv(path):
        where = f"{path}:{n}"
        if "path" not in row or "label" not in row:
            raise ManifestError(f"{path}:1: the header must be 'path,label[,split]', got {list(row)}")
        rel = safe_relpath(row["path"], where)
        split = row.get("split", "").lower()
        split = SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            raise ManifestError(f"{where}: split {row['split']!r} is not one of {SPLITS}")
        raw.append((stem(rel), rel, row["label"] or None, split, where))
    if classes is None:
        classes = sorted({label for _, _, label, _, _ in raw if label is not None})
    rows = Rows(dataset, classes)
    for vid, rel, label, split, where in raw:
        rows.add(vid, rel, label, split, where)
    return make_manifest(dataset, fmt, root, list(classes), rows.rows)


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse the CSV list of ``root``; ``split`` is ignored."""
    return parse_csv(find_csv(root, splits), root, dataset)
