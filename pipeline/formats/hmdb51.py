"""HMDB51: ``<class>_test_split{1,2,3}.txt`` files (the ``testTrainMulti_7030_splits`` folder).

Each line is ``<video>.avi <code>`` with code 1 = train, 2 = test, 0 = unused (kept in the manifest with
split ``unused``). Videos are ``<root>/<class>/<video>.avi``; classes are the class names of the split
files, sorted alphabetically. ``video_id`` is the file stem, odd characters (``# ( ) & !``) kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.manifest import Manifest, ManifestError, make_manifest
from .common import Rows, read_lines, safe_name, stem

CODES = {"0": "unused", "1": "train", "2": "test"}


def split_files(folder: Path, split: int) -> dict[str, Path]:
    """Class name -> its ``<class>_test_split<split>.txt`` file."""
    pattern = re.compile(rf"^(.+)_test_split{split}\.txt$")
    found = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = pattern.match(p.name)
            if m and p.is_file():
                found[m.group(1)] = p
    if not found:
        raise ManifestError(f"HMDB51: no '<class>_test_split{split}.txt' files in {folder}")
    return found


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse split ``split`` (1-3); ``splits`` is the folder of split files (default: ``root``)."""
    files = split_files(splits or root, split)
    classes = sorted(files)
    rows = Rows(dataset, classes)
    for cls in classes:
        path = files[cls]
        for n, line in read_lines(path):
            where = f"{path}:{n}"
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in CODES:
                raise ManifestError(f"{where}: expected '<video>.avi <0|1|2>', got {line!r}")
            name = safe_name(parts[0], where, "video name")
            rows.add(stem(name), f"{cls}/{name}", cls, CODES[parts[1]], where)
    return make_manifest(dataset, "hmdb51", root, classes, rows.rows)
