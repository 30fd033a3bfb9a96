"""Export shards to the mmaction2 / denseflow "rawframes" layout (one folder of JPEGs per video).

    <out>/<video_id>/img_00001.jpg ...               rgb shard (stream "rgb")
    <out>/<video_id>/flow_x_00001.jpg, flow_y_00001.jpg ...   flow shard (streams "x", "y")

Numbering is 1-based: frame 0 of the shard is ``00001``; flow ``i`` (frame i -> i+1) is ``flow_x_{i+1}``.
The JPEG bytes are written as stored (no re-encoding), so an export is lossless with respect to the shard.
mmaction2's list files are lines ``frame_dir total_frames label`` (:func:`rawframes_list_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .atomic import write_text_atomic
from .manifest import is_unsafe_relpath
from .shards import ShardError, ShardReader

TEMPLATES = {"rgb": {"rgb": "img_{:05d}.jpg"}, "flow": {"x": "flow_x_{:05d}.jpg", "y": "flow_y_{:05d}.jpg"}}


@dataclass(frozen=True)
class ExportedVideo:
    video_id: str
    frame_dir: Path
    total_frames: int
    label: int


def _safe_dir(out: Path, video_id: str) -> Path:
    if "\\" in video_id or is_unsafe_relpath(video_id):
        raise ShardError(f"export: video id {video_id!r} is not a safe folder name")
    return out / video_id


def export_rawframes(shard_path: str | Path, out_dir: str | Path, videos: Sequence[str] | None = None,
                     overwrite: bool = True) -> list[ExportedVideo]:
    """Write every video (or those in ``videos``) of an rgb or flow shard as rawframes under ``out_dir``.

    Returns one :class:`ExportedVideo` per written video, in shard order. Raises :class:`ShardError` for
    another modality, unknown video ids or (``overwrite=False``) an existing non-empty folder.
    """
    out = Path(out_dir)
    done = []
    with ShardReader(shard_path) as r:
        modality = r.attrs.get("modality")
        if modality not in TEMPLATES:
            raise ShardError(f"export: {shard_path} has modality {modality!r}; rawframes export handles "
                             f"{sorted(TEMPLATES)}")
        templates = TEMPLATES[modality]
        missing = [s for s in templates if s not in r.streams]
        if missing:
            raise ShardError(f"export: {shard_path} lacks stream(s) {missing} of a {modality} shard")
        ids = r.video_ids()
        labels = r.table()["label"]
        wanted = range(len(ids)) if videos is None else [ids.index(v) for v in _known(videos, ids, shard_path)]
        for v in wanted:
            folder = _safe_dir(out, ids[v])
            if not overwrite and folder.exists() and any(folder.iterdir()):
                raise ShardError(f"export: {folder} exists and is not empty (video {ids[v]})")
            folder.mkdir(parents=True, exist_ok=True)
            n = 0
            for stream, template in templates.items():
                blobs = r.raw(v, stream)
                n = len(blobs)
                for i, data in enumerate(blobs):
                    (folder / template.format(i + 1)).write_bytes(bytes(data))
            done.append(ExportedVideo(ids[v], folder, n, int(labels[v])))
    return done


def _known(videos: Iterable[str], ids: list[str], path) -> list[str]:
    videos = list(videos)
    unknown = [v for v in videos if v not in ids]
    if unknown:
        raise ShardError(f"export: video(s) {unknown[:5]} are not in {path}")
    return videos


def rawframes_list_lines(exported: Iterable[ExportedVideo], relative_to: str | Path | None = None) -> list[str]:
    """mmaction2 list lines ``frame_dir total_frames label`` (frame_dir relative to ``relative_to``)."""
    lines = []
    for e in exported:
        d = e.frame_dir.relative_to(relative_to) if relative_to is not None else e.frame_dir
        lines.append(f"{d.as_posix()} {e.total_frames} {e.label}")
    return lines


def write_rawframes_list(path: str | Path, exported: Iterable[ExportedVideo],
                         relative_to: str | Path | None = None) -> None:
    write_text_atomic(path, "\n".join(rawframes_list_lines(exported, relative_to)) + "\n")


__all__ = ["export_rawframes", "rawframes_list_lines", "write_rawframes_list", "ExportedVideo", "TEMPLATES"]
