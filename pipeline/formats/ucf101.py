"""UCF101: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt`` (the ``ucfTrainTestlist`` folder).

* ``classInd.txt``: ``1 ApplyEyeMakeup`` (1-based; stored 0-based in the manifest).
* ``trainlist0N.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1`` (label = 1-based index).
* ``testlist0N.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`` (label from the folder name).

Quirks handled: CRLF line endings and trailing blanks; class names matched case-insensitively
(``classInd`` says ``HandstandPushups``, files say ``HandStandPushups``), and each path is stored as it is
spelled on disk (every component looked up case-insensitively). The label stored is classInd's spelling.
``video_id`` is the file stem.
"""

from __future__ import annotations

from pathlib import Path

from ..core.manifest import Manifest, ManifestError, make_manifest
from .common import DiskResolver, Rows, read_lines, require_file, safe_relpath, stem


def read_class_index(path: Path) -> list[str]:
    """Class names in index order from ``classInd.txt`` (1-based, contiguous indices required)."""
    require_file(path, "UCF101 class index")
    by_index: dict[int, str] = {}
    for n, line in read_lines(path):
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise ManifestError(f"{path}:{n}: expected '<index> <ClassName>', got {line!r}")
        idx, name = int(parts[0]), parts[1].strip()
        if idx in by_index:
            raise ManifestError(f"{path}:{n}: class index {idx} appears twice")
        by_index[idx] = name
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ManifestError(f"{path}: class indices must be 1..{len(by_index)} without gaps")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _parse_list(path: Path, split: str, classes: list[str], resolver: DiskResolver, rows: Rows) -> None:
    """Add the entries of one train/test list; the label comes from the index if given, else the folder."""
    by_lower = {c.lower(): c for c in classes}
    for n, line in read_lines(path):
        where = f"{path}:{n}"
        text, _, last = line.rpartition(" ")
        label_num: int | None = None
        if text and last.isdigit():
            label_num = int(last)
        else:
            text = line
        rel = safe_relpath(text, where)
        folder = rel.split("/")[0] if "/" in rel else ""
        folder_class = by_lower.get(folder.lower())
        if label_num is not None:
            if not 1 <= label_num <= len(classes):
                raise ManifestError(f"{where}: label {label_num} is outside 1..{len(classes)} "
                                    "of classInd.txt")
            label = classes[label_num - 1]
            if folder_class is not None and folder_class != label:
                raise ManifestError(f"{where}: folder {folder!r} disagrees with label {label_num} "
                                    f"({label!r})")
        elif folder_class is None:
            raise ManifestError(f"{where}: folder {folder!r} of {rel!r} is not a class of classInd.txt")
        else:
            label = folder_class
        rows.add(stem(rel), resolver.find(rel) or rel, label, split, where)


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse split ``split`` (1-3); ``splits`` is the ucfTrainTestlist folder (default: ``root``)."""
    folder = splits or root
    classes = read_class_index(folder / "classInd.txt")
    resolver = DiskResolver(root)
    rows = Rows(dataset, classes)
    for name, split_name in ((f"trainlist0{split}.txt", "train"), (f"testlist0{split}.txt", "test")):
        _parse_list(require_file(folder / name, "UCF101 split list"), split_name, classes, resolver, rows)
    return make_manifest(dataset, "ucf101", root, classes, rows.rows)
