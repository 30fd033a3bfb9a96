"""The synthetic dataset of ``prep-cli make-demo``: ``<root>/classes.txt`` and ``<root>/split.csv``.

``classes.txt`` holds one class a line in index order; ``split.csv`` has the header ``path,label,split``
(paths relative to the root). Read with the ``csv`` format's parser, the class list fixing the indices.
``splits``, when given, is the folder holding both files instead of the root.
"""

from __future__ import annotations

from pathlib import Path

from ..core.manifest import Manifest, ManifestError
from ..core.paths import DEMO_FILES
from .common import read_lines, require_file
from .csvlist import parse_csv


def read_classes(path: Path) -> list[str]:
    """Class names in index order."""
    require_file(path, "demo class list")
    classes = [line for _, line in read_lines(path)]
    if not classes:
        raise ManifestError(f"{path}: no classes")
    return classes


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse the demo dataset under ``root``; ``split`` is ignored."""
    folder = splits or root
    return parse_csv(folder / DEMO_FILES["split"], root, dataset, "demo", read_classes(folder / DEMO_FILES["classes"]))
