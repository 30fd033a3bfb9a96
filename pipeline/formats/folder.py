"""A plain folder tree: ``<root>/<class>/<video file>``; every entry is in split ``train``.

Classes are the sub-folders holding at least one video (extensions in
:data:`pipeline.formats.common.VIDEO_EXTS`, any case), sorted; hidden files and folders are skipped, and
only files directly inside a class folder count. ``video_id`` is the file stem, which must be unique across
the dataset (two ``001.mp4`` in different classes are refused: rename them or use the ``csv`` format).
"""

from __future__ import annotations

from pathlib import Path

from ..core.manifest import Manifest, ManifestError, make_manifest
from .common import VIDEO_EXTS, Rows, stem


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Scan ``root``; ``splits`` and ``split`` are ignored."""
    if not root.is_dir():
        raise ManifestError(f"{dataset}: root {root} is not a folder")
    found: dict[str, list[str]] = {}
    for cls_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(f.name for f in cls_dir.iterdir()
                        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in VIDEO_EXTS)
        if videos:
            found[cls_dir.name] = videos
    if not found:
        raise ManifestError(f"{dataset}: no '<class>/<video>' files under {root} "
                            f"(extensions: {' '.join(VIDEO_EXTS)})")
    classes = sorted(found)
    rows = Rows(dataset, classes)
    for cls in classes:
        for name in found[cls]:
            rows.add(stem(name), f"{cls}/{name}", cls, "train", f"{root}/{cls}/{name}")
    return make_manifest(dataset, "folder", root, classes, rows.rows)
