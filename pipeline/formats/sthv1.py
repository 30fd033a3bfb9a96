"""Something-Something v1: frame folders ``<root>/<id>/00001.jpg`` (manifest kind ``frames``).

Annotation files in the ``splits`` folder (default: ``root``):

* ``something-something-v1-labels.csv``: one label a line, its index is the line order (0-based). Not a
  real CSV: labels hold commas and apostrophes and are taken verbatim (surrounding blanks removed).
* ``something-something-v1-train.csv`` / ``-validation.csv`` (split ``val``): ``100218;Label text``.
* ``something-something-v1-test.csv`` (optional): ``100218`` alone, unlabeled.

Labels are matched by exact text. ``video_id`` and ``path`` are the folder id.
"""

from __future__ import annotations

from pathlib import Path

from ..core.manifest import Manifest, ManifestError, make_manifest
from .common import Rows, read_lines, require_file, safe_name

PREFIX = "something-something-v1"
FILES = {"train": f"{PREFIX}-train.csv", "val": f"{PREFIX}-validation.csv", "test": f"{PREFIX}-test.csv"}


def read_labels(path: Path) -> list[str]:
    """Labels in index order; a repeated label is refused."""
    require_file(path, "Something-Something label file")
    labels: list[str] = []
    seen: dict[str, int] = {}
    for n, line in read_lines(path):
        if line in seen:
            raise ManifestError(f"{path}:{n}: label {line!r} repeats line {seen[line]}")
        seen[line] = n
        labels.append(line)
    return labels


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse the train/validation (and test, when present) lists; ``split`` is ignored."""
    folder = splits or root
    classes = read_labels(folder / f"{PREFIX}-labels.csv")
    rows = Rows(dataset, classes)
    for split_name, name in FILES.items():
        path = folder / name
        if split_name == "test" and not path.is_file():
            continue
        require_file(path, "Something-Something list")
        for n, line in read_lines(path):
            where = f"{path}:{n}"
            vid, sep, label = line.partition(";")
            if split_name != "test" and (not sep or not label.strip()):
                raise ManifestError(f"{where}: expected '<id>;<label>', got {line!r}")
            vid = safe_name(vid, where, "frame folder id")
            rows.add(vid, vid, label.strip() or None, split_name, where)
    return make_manifest(dataset, "sthv1", root, classes, rows.rows, kind="frames")
