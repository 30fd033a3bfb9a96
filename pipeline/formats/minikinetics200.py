"""Mini-Kinetics-200: ``train_ytid_list.txt`` / ``val_ytid_list.txt`` select rows of the Kinetics-400 CSVs.

The ``splits`` folder (default: ``root``) holds the two id lists (one YouTube id per line). The Kinetics
CSVs (``train.csv``, ``validate.csv``; see :mod:`pipeline.formats.kinetics400`) are looked for, in order:

1. in the ``splits`` folder itself;
2. in its ``kinetics400/`` subfolder (a symlink to the Kinetics annotations folder works);
3. in the folder named by the first line of ``<splits>/kinetics_csv_dir.txt`` (relative to ``splits``).

Train ids select rows of the train CSV, val ids rows of the validation CSV. Classes are the labels present
among the selected rows, sorted (200 for the official lists). Ids of the lists absent from the CSVs are
skipped with a warning naming how many and the first ones. Clips are found on disk as for Kinetics-400.
"""

from __future__ import annotations

from pathlib import Path

from ..core.manifest import Manifest, ManifestError, make_manifest
from .common import Rows, index_videos, log, read_lines, require_file, youtube_id
from .kinetics400 import CSV_NAMES, Clip, add_clips, find_csvs, read_clips

LISTS = {"train": "train_ytid_list.txt", "val": "val_ytid_list.txt"}
POINTER_FILE = "kinetics_csv_dir.txt"


def kinetics_csv_folder(splits: Path) -> Path:
    """Where the Kinetics CSVs are (see the module docstring for the search order)."""
    candidates = [splits, splits / "kinetics400"]
    pointer = splits / POINTER_FILE
    if pointer.is_file():
        lines = [line for _, line in read_lines(pointer)]
        if not lines:
            raise ManifestError(f"{pointer}: empty (expected the path of the Kinetics CSV folder)")
        candidates.append(splits / Path(lines[0]).expanduser())
    for folder in candidates:
        if any((folder / name).is_file() for name in CSV_NAMES["train"]):
            return folder
    raise ManifestError(f"Mini-Kinetics: no Kinetics train CSV found in {[str(c) for c in candidates]}; "
                        f"put train.csv/validate.csv in {splits} or name their folder in {pointer}")


def read_ids(path: Path) -> list[str]:
    """YouTube ids of one list file, in order (each checked)."""
    require_file(path, "Mini-Kinetics id list")
    return [youtube_id(line.split()[0], f"{path}:{n}") for n, line in read_lines(path)]


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse the Mini-Kinetics-200 train/val selection; ``split`` is ignored (one official split)."""
    folder = splits or root
    csvs = find_csvs(kinetics_csv_folder(folder))
    selected: list[Clip] = []
    for split_name, list_name in LISTS.items():
        ids = read_ids(folder / list_name)
        if split_name not in csvs:
            raise ManifestError(f"Mini-Kinetics: no Kinetics {split_name} CSV next to {csvs['train']}")
        wanted = set(ids)
        clips = [c for c in read_clips(csvs[split_name], split_name, require_label=True)
                 if c.youtube_id in wanted]
        present = {c.youtube_id for c in clips}
        absent = [i for i in ids if i not in present]
        if absent:
            log.warning("Mini-Kinetics: %d of %d ids of %s are not in %s, skipped; first: %s", len(absent),
                        len(ids), list_name, csvs[split_name], absent[:5])
        selected.extend(clips)
    classes = sorted({c.label for c in selected if c.label is not None})
    rows = Rows(dataset, classes)
    add_clips(rows, selected, index_videos(root))
    return make_manifest(dataset, "minikinetics200", root, classes, rows.rows)
