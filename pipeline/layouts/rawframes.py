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
from pathlib import Path

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


def read(ref: VideoRef, jpeg_quality: int = 95) -> VideoFrames:
    rgb = _numbered(ref.path, RGB)
    fx, fy = _numbered(ref.path, FLOW_X), _numbered(ref.path, FLOW_Y)
    if not rgb:
        raise LayoutError(f"{ref.path}: no {RGB.format(1)}")
    return VideoFrames(rgb, fx or None, fy or None)


def frame_dir(video_id: str) -> str:
    """A relative folder for a video id: each ``/``-separated part made file-name safe."""
    return "/".join(safe_name(p) for p in video_id.split("/") if p not in ("", ".", ".."))


def _export_frames(shard_path, out_dir: Path, modality: str, table: dict) -> list[tuple[str, int, int]]:
    """Write one shard's frames; ``[(frame_dir, total_frames, label)]``. Uses the shared exporter
    :func:`pipeline.export.export_rawframes` when it is installed, the same naming otherwise."""
    try:
        from ..export import export_rawframes
    except ImportError:
        export_rawframes = None
    if export_rawframes is not None and all(frame_dir(v) == v for v in table["video_id"]):
        done = export_rawframes(shard_path, out_dir)
        return [(e.frame_dir.relative_to(out_dir).as_posix(), e.total_frames, e.label) for e in done]
    from ..shards import ShardReader
    rows = []
    streams = {"rgb": RGB} if modality == "rgb" else {"x": FLOW_X, "y": FLOW_Y}
    with ShardReader(shard_path) as r:
        for v, vid in enumerate(table["video_id"]):
            folder = out_dir / frame_dir(vid)
            folder.mkdir(parents=True, exist_ok=True)
            for stream, pattern in streams.items():
                for k, data in enumerate(r.raw(v, stream), 1):
                    (folder / pattern.format(k)).write_bytes(data.tobytes())
            rows.append((frame_dir(vid), int(table["num_frames"][v]), int(table["label"][v])))
    return rows


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
        rows = _export_frames(sp, out_dir, modality, table)
        suffix = "" if modality == "rgb" else "_flow"
        for (fdir, total, label), split in zip(rows, table["split"]):
            lst = out_dir / f"{safe_name(dataset)}_{safe_name(split)}_rawframes{suffix}.txt"
            lines.setdefault(lst, []).append(f"{fdir} {total} {label}")
    for lst, rows in lines.items():
        lst.write_text("\n".join(rows) + "\n")
    if classes is not None:
        (out_dir / "classes.txt").write_text("".join(c + "\n" for c in classes))
    return sorted(lines)
