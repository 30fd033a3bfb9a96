"""mmaction2 "rawframes" folders (what denseflow / mmaction2's ``build_rawframes.py`` produce).

One folder per video (``frame_dir``, relative to the root, may contain ``/``) holding 1-based JPEG files:
``img_00001.jpg`` ... for RGB and ``flow_x_00001.jpg`` / ``flow_y_00001.jpg`` ... for flow (flow k is frame
k -> k+1). List files, one line per video ``frame_dir total_frames label``, name the videos of a split;
mmaction2 names them ``<dataset>_<split>_..._rawframes.txt``. We write ``<dataset>_<split>_rawframes.txt``
(``total_frames`` = RGB frames), ``<dataset>_<split>_rawframes_flow.txt`` (flow frames) and
``classes.txt`` (class names in label order). ``label`` -1 means unlabeled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from . import LayoutError, VideoFrames, VideoRef, iter_lines, safe_name

NAME = "rawframes"
RGB, FLOW_X, FLOW_Y = "img_{:05d}.jpg", "flow_x_{:05d}.jpg", "flow_y_{:05d}.jpg"
_LIST = re.compile(r"rawframes(_flow)?\.txt$")


def detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    if any(_LIST.search(p.name) for p in path.glob("*.txt")):
        return True
    return (path / RGB.format(1)).exists() or any(path.glob("*/" + RGB.format(1))) \
        or any(path.glob("*/*/" + RGB.format(1)))


def _split_of(list_name: str) -> str | None:
    for token in re.split(r"[_.]", list_name):
        if token in ("train", "val", "test", "trainval"):
            return token
    return None


def scan(path: Path, root: Path) -> list[VideoRef]:
    classes_file = path / "classes.txt"
    classes = list(iter_lines(classes_file)) if classes_file.exists() else None
    refs: dict[str, VideoRef] = {}
    for lst in sorted(p for p in path.glob("*.txt") if _LIST.search(p.name) and "_flow" not in p.name):
        split = _split_of(lst.name)
        for n, line in enumerate(iter_lines(lst), 1):
            parts = line.split()
            if len(parts) < 3:
                raise LayoutError(f"{lst}:{n}: expected 'frame_dir total_frames label', got {line!r}")
            fdir, label = parts[0], int(parts[2])
            name = None if label < 0 else (classes[label] if classes else str(label))
            refs.setdefault(fdir, VideoRef(NAME, path / fdir, fdir, fdir, name, split))
    if not refs:
        for first in sorted(path.rglob(RGB.format(1))):
            fdir = first.parent.relative_to(path).as_posix()
            refs[fdir] = VideoRef(NAME, first.parent, fdir, fdir if fdir != "." else path.name)
    return list(refs.values())


def _numbered(folder: Path, pattern: str) -> list[bytes]:
    out, k = [], 1
    while (folder / pattern.format(k)).exists():
        out.append((folder / pattern.format(k)).read_bytes())
        k += 1
    return out


def read(ref: VideoRef, jpeg_quality: int) -> VideoFrames:
    rgb = _numbered(ref.path, RGB)
    fx, fy = _numbered(ref.path, FLOW_X), _numbered(ref.path, FLOW_Y)
    if not rgb:
        raise LayoutError(f"{ref.path}: no {RGB.format(1)}")
    return VideoFrames(rgb, fx or None, fy or None)


def frame_dir(video_id: str) -> str:
    """A relative folder for a video id: each ``/``-separated part made file-name safe."""
    return "/".join(safe_name(p) for p in video_id.split("/") if p not in ("", ".", ".."))


@dataclass(frozen=True)
class ExportedVideo:
    video_id: str
    frame_dir: Path
    total_frames: int
    label: int


_TEMPLATES = {"rgb": {"rgb": RGB}, "flow": {"x": FLOW_X, "y": FLOW_Y}}


def export_rawframes(shard_path: str | Path, out_dir: str | Path, videos: Sequence[str] | None = None,
                     overwrite: bool = True) -> list[ExportedVideo]:
    """Write every video (or those in ``videos``) of an rgb or flow shard as rawframes under ``out_dir``:
    folder :func:`frame_dir` of the id, frames numbered from 1 (flow ``i``, frame i -> i+1, is
    ``flow_x_{i+1}``), JPEG bytes written as stored (lossless with respect to the shard).

    Returns one :class:`ExportedVideo` per written video, in shard order. Raises :class:`LayoutError` for
    another modality, unknown video ids or (``overwrite=False``) an existing non-empty folder.
    """
    from ..shards import ShardReader
    out = Path(out_dir)
    done = []
    with ShardReader(shard_path) as r:
        modality = r.attrs.get("modality")
        if modality not in _TEMPLATES:
            raise LayoutError(f"export: {shard_path} has modality {modality!r}; rawframes hold rgb or flow")
        templates = _TEMPLATES[modality]
        missing = [s for s in templates if s not in r.streams]
        if missing:
            raise LayoutError(f"export: {shard_path} lacks stream(s) {missing} of a {modality} shard")
        ids = r.video_ids()
        labels = r.table()["label"]
        unknown = [v for v in (videos or ()) if v not in ids]
        if unknown:
            raise LayoutError(f"export: video(s) {unknown[:5]} are not in {shard_path}")
        for v in (range(len(ids)) if videos is None else [ids.index(x) for x in videos]):
            folder = out / frame_dir(ids[v])
            if not overwrite and folder.exists() and any(folder.iterdir()):
                raise LayoutError(f"export: {folder} exists and is not empty (video {ids[v]})")
            folder.mkdir(parents=True, exist_ok=True)
            n = 0
            for stream, template in templates.items():
                blobs = r.raw(v, stream)
                n = len(blobs)
                for i, data in enumerate(blobs):
                    (folder / template.format(i + 1)).write_bytes(bytes(data))
            done.append(ExportedVideo(ids[v], folder, n, int(labels[v])))
    return done


def rawframes_list_lines(exported: Iterable[ExportedVideo], relative_to: str | Path | None = None) -> list[str]:
    """mmaction2 list lines ``frame_dir total_frames label`` (frame_dir relative to ``relative_to``)."""
    lines = []
    for e in exported:
        d = e.frame_dir.relative_to(relative_to) if relative_to is not None else e.frame_dir
        lines.append(f"{d.as_posix()} {e.total_frames} {e.label}")
    return lines


def write_shards(shard_paths, out_dir: str | Path) -> list[Path]:
    """Export rgb and/or flow shards to ``out_dir`` (frames plus list files); returns the list files."""
    from ..shards import ShardReader
    out_dir = Path(out_dir)
    lines: dict[Path, list[str]] = {}
    classes: list[str] | None = None
    for sp in shard_paths:
        with ShardReader(sp) as r:
            modality, dataset = r.attrs["modality"], r.attrs["dataset"]
            classes = classes or r.classes
            table = r.table()
        if modality not in ("rgb", "flow"):
            raise LayoutError(f"{sp}: rawframes hold rgb or flow, not {modality}")
        rows = [(e.frame_dir.relative_to(out_dir).as_posix(), e.total_frames, e.label)
                for e in export_rawframes(sp, out_dir)]
        suffix = "" if modality == "rgb" else "_flow"
        for (fdir, total, label), split in zip(rows, table["split"]):
            lst = out_dir / f"{safe_name(dataset)}_{safe_name(split)}_rawframes{suffix}.txt"
            lines.setdefault(lst, []).append(f"{fdir} {total} {label}")
    for lst, rows in lines.items():
        lst.write_text("\n".join(rows) + "\n")
    if classes is not None:
        (out_dir / "classes.txt").write_text("".join(c + "\n" for c in classes))
    return sorted(lines)
