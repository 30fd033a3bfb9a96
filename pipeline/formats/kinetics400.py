"""Kinetics-400: ``train.csv``, ``validate.csv`` (split ``val``) and ``test.csv`` in the ``splits`` folder.

Header ``label,youtube_id,time_start,time_end,split[,is_cc]``; labels may be quoted and hold commas
(``"passing American football (in game)"``). The test CSV may lack labels (or the label column): such
entries are unlabeled (index -1). Classes are the sorted unique labels of the train CSV; ``train.csv`` is
required, the others are read when present (``kinetics_train.csv`` / ``kinetics_val.csv`` /
``kinetics_test.csv`` and ``val.csv`` are accepted too).

A clip is ``<youtube_id>_<start:06d>_<end:06d>`` (the ``video_id``) with a video extension (``.mp4``
preferred), found anywhere under the root: flat, or under ``<split dir>/<label>/`` (one ``os.walk`` index).
A clip found nowhere keeps the flat path ``<video_id>.mp4``, so that the missing-file check (see
:func:`pipeline.formats.build_manifest` and its ``allow_missing``) reports it; deleted YouTube videos
make this common.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.manifest import Manifest, ManifestError, make_manifest
from .common import Rows, index_videos, log, pick_video, read_csv, require_file, youtube_id

CSV_NAMES = {
    "train": ("train.csv", "kinetics_train.csv", "kinetics-400_train.csv", "kinetics400_train.csv"),
    "val": ("validate.csv", "val.csv", "kinetics_val.csv", "kinetics-400_val.csv", "kinetics400_val.csv"),
    "test": ("test.csv", "kinetics_test.csv", "kinetics-400_test.csv", "kinetics400_test.csv"),
}
REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")


@dataclass(frozen=True)
class Clip:
    """One CSV row: the clip id, its label (``None`` when unlabeled) and where it was read."""

    video_id: str
    youtube_id: str
    label: str | None
    split: str
    where: str


def find_csvs(folder: Path) -> dict[str, Path]:
    """Split name -> CSV file found in ``folder``; the train CSV is required."""
    found = {}
    for split, names in CSV_NAMES.items():
        for name in names:
            if (folder / name).is_file():
                found[split] = folder / name
                break
    if "train" not in found:
        raise ManifestError(f"Kinetics: no train CSV ({' / '.join(CSV_NAMES['train'])}) in {folder}")
    return found


def _seconds(text: str, where: str, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ManifestError(f"{where}: {column} {text!r} is not a number") from None
    if not value.is_integer() or value < 0:
        raise ManifestError(f"{where}: {column} {text!r} is not a whole number of seconds")
    return int(value)


def clip_id(ytid: str, start: int, end: int) -> str:
    """``<youtube_id>_<start:06d>_<end:06d>``: the clip's file stem and video id."""
    return f"{ytid}_{start:06d}_{end:06d}"


def read_clips(path: Path, split: str, require_label: bool) -> list[Clip]:
    """The clips of one Kinetics CSV, in file order."""
    require_file(path, "Kinetics CSV")
    clips = []
    for n, row in read_csv(path):
        where = f"{path}:{n}"
        missing = [c for c in REQUIRED_COLUMNS if c not in row] + \
                  (["label"] if require_label and "label" not in row else [])
        if missing:
            raise ManifestError(f"{path}:1: the header lacks column(s) {missing}")
        ytid = youtube_id(row["youtube_id"], where)
        start = _seconds(row["time_start"], where, "time_start")
        end = _seconds(row["time_end"], where, "time_end")
        label = row.get("label") or None
        if require_label and label is None:
            raise ManifestError(f"{where}: clip {ytid!r} has no label")
        clips.append(Clip(clip_id(ytid, start, end), ytid, label, split, where))
    return clips


def add_clips(rows: Rows, clips: list[Clip], index: dict[str, list[str]]) -> None:
    """Add clips with their path on disk (or the flat ``<id>.mp4`` when not found)."""
    for c in clips:
        found = index.get(c.video_id)
        rows.add(c.video_id, pick_video(found) if found else f"{c.video_id}.mp4", c.label, c.split, c.where)


def parse(root: Path, splits: Path | None, split: int, dataset: str) -> Manifest:
    """Parse the Kinetics CSVs in ``splits`` (default: ``root``); ``split`` is ignored (one split only)."""
    csvs = find_csvs(splits or root)
    per_split = {s: read_clips(p, s, require_label=(s != "test")) for s, p in csvs.items()}
    log.info("Kinetics: read %s",
             ", ".join(f"{s} {len(c)} from {csvs[s].name}" for s, c in per_split.items()))
    classes = sorted({c.label for c in per_split["train"] if c.label is not None})
    index = index_videos(root)
    rows = Rows(dataset, classes)
    for clips in per_split.values():
        add_clips(rows, clips, index)
    return make_manifest(dataset, "kinetics400", root, classes, rows.rows)
