"""Dataset format parsers: each module turns a dataset's official split files into a :class:`Manifest`.

Every format module exposes ``parse(root, splits, split, dataset) -> Manifest``; :func:`build_manifest`
picks one by name, checks its arguments and (optionally) that every entry exists on disk.

=================  ============================================================  ======================
format             split files (in ``splits``, default: the root)               module
=================  ============================================================  ======================
ucf101             classInd.txt, trainlist0N.txt, testlist0N.txt                 :mod:`.ucf101`
hmdb51             <class>_test_splitN.txt (0 unused, 1 train, 2 test)           :mod:`.hmdb51`
kinetics400        train.csv, validate.csv, test.csv                             :mod:`.kinetics400`
minikinetics200    train_ytid_list.txt, val_ytid_list.txt + the Kinetics CSVs    :mod:`.minikinetics200`
sthv1              something-something-v1-{labels,train,validation}.csv          :mod:`.sthv1`
folder             none: <root>/<class>/<video>                                  :mod:`.folder`
csv                a CSV ``path,label[,split]`` (``--splits FILE``)              :mod:`.csvlist`
demo               <root>/classes.txt and <root>/split.csv (prep-cli make-demo)  :mod:`.demo`
=================  ============================================================  ======================
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Callable

from ..core.manifest import Manifest, ManifestError
from ..core.manifest import check_files as _check_files
from .common import log

#: format name -> module (relative to this package) defining ``parse``
FORMAT_MODULES = {
    "ucf101": "ucf101",
    "hmdb51": "hmdb51",
    "kinetics400": "kinetics400",
    "minikinetics200": "minikinetics200",
    "sthv1": "sthv1",
    "folder": "folder",
    "csv": "csvlist",
    "demo": "demo",
}
FORMATS = tuple(FORMAT_MODULES)


def get_parser(fmt: str) -> Callable[[Path, Path | None, int, str], Manifest]:
    """The ``parse`` function of format ``fmt``."""
    if fmt not in FORMAT_MODULES:
        raise ManifestError(f"unknown dataset format {fmt!r}; allowed: {list(FORMATS)}")
    return importlib.import_module(f".{FORMAT_MODULES[fmt]}", __name__).parse


def drop_missing(m: Manifest, root: str | Path | None = None) -> tuple[Manifest, list[str]]:
    """``m`` without the entries missing on disk, and the paths of those dropped."""
    base = Path(root or m.root)
    kept, missing = [], []
    for e in m.entries:
        (kept if (base / e.path).exists() else missing).append(e)
    return dataclasses.replace(m, entries=tuple(kept)), [e.path for e in missing]


def build_manifest(fmt: str, root: str | Path, splits: str | Path | None = None, split: int = 1,
                   dataset: str | None = None, check_files: bool = True,
                   allow_missing: bool = False) -> Manifest:
    """Parse dataset ``root`` in format ``fmt`` (split files in ``splits``, default: the root).

    ``split`` (1-3) picks the official split where a dataset has several. With ``check_files``, entries
    missing on disk are refused with their count and first names, or, with ``allow_missing``, dropped
    with a logged warning giving how many (deleted YouTube clips make this common for Kinetics). Every
    :class:`ManifestError` message starts with ``manifest:`` (the stage) and names the file, line or video.
    """
    try:
        return _build(fmt, Path(root), splits, split, dataset, check_files, allow_missing)
    except ManifestError as exc:        # every refusal names the stage, then the file, line and video
        raise ManifestError(f"manifest: {exc}") from None


def _build(fmt: str, root: Path, splits: str | Path | None, split: int, dataset: str | None, check_files: bool,
           allow_missing: bool) -> Manifest:
    parse = get_parser(fmt)
    if not root.is_dir():
        raise ManifestError(f"{dataset or fmt}: dataset root {root} is not a folder")
    splits_path = Path(splits) if splits is not None else None
    if splits_path is not None and not splits_path.exists():
        raise ManifestError(f"{dataset or fmt}: splits path {splits_path} does not exist")
    if split not in (1, 2, 3):
        raise ManifestError(f"{dataset or fmt}: split must be 1, 2 or 3, got {split!r}")
    m = parse(root, splits_path, split, dataset or fmt)
    if check_files:
        if allow_missing:
            m, dropped = drop_missing(m)
            if dropped:
                log.warning("manifest: %s: dropped %d of %d entries missing under %s, first: %s", m.dataset,
                            len(dropped), len(m.entries) + len(dropped), root, dropped[:5])
            if not m.entries:
                raise ManifestError(f"{m.dataset}: every entry is missing under {root}")
        else:
            _check_files(m)
    return m


__all__ = ["FORMATS", "build_manifest", "drop_missing", "get_parser"]
