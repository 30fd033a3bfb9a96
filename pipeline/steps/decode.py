"""Stage ``decode``: manifest entries -> RGB shards of JPEG frames at 25 fps, short side 256.

``prep-cli decode --dataset NAME [--shard K]`` writes ``results/decode/NAME/shard-K.h5`` (modality ``rgb``,
one JPEG stream ``rgb``) and ``shard-K.failures.json``. Video files are decoded with PyAV and converted by
:class:`pipeline.media.video.VideoReader`; frame-folder datasets (Something-Something v1) are read as they are:
their JPEG bytes are copied unchanged when no resizing is asked for.
"""

from __future__ import annotations

from pathlib import Path

import joblib

from ..core.config import DecodeConfig
from ..core.manifest import Entry
from ..core.workers import in_worker
from .contract import Option, ShardJob, Stage, VideoResult, guarded, write_shard
from ..media import jpeg
from ..media.video import VideoReader, folder_frames, list_frame_files, output_size, resize
from ..shards import ShardWriter, Stream

RGB_STREAM = Stream("rgb", kind="jpeg", color="rgb")
_D = DecodeConfig()         # the defaults, for the help text
VIDEO_FIELDS = {"source_fps": "float64", "source_frames": "int32", "rotation": "int32"}


def decode_entry(entry: Entry, root: str, kind: str, cfg: DecodeConfig) -> VideoResult:
    """Decode one manifest entry to JPEG frames. Raises on any problem (the caller records it)."""
    path = Path(root) / entry.path
    if kind == "frames":
        return _decode_folder(entry, path, cfg)
    reader = VideoReader(path, cfg)
    frames = [data for _, data in reader.jpeg_frames(cfg.jpeg_quality)]
    w, h = reader.size
    return VideoResult(entry.video_id, entry.label_index, entry.split, reader.fps, h, w, {"rgb": frames},
                       {"source_fps": reader.source_fps, "source_frames": reader.source_frames,
                        "rotation": reader.rotation})


def _decode_folder(entry: Entry, folder: Path, cfg: DecodeConfig) -> VideoResult:
    folder_fps = cfg.folder_fps
    files = list_frame_files(folder)
    frames: list[bytes] = []
    last, encoded = -1, b""
    for i, data, img in folder_frames(folder, folder_fps, cfg.fps, files):
        if not frames:                  # the first frame shown is file 0: it sets the size
            size = output_size(img.shape[1], img.shape[0], cfg, folder.name)
            copy = size == (img.shape[1], img.shape[0]) and \
                all(f.suffix.lower() in (".jpg", ".jpeg") for f in files)
        if i != last:
            last, encoded = i, data if copy else jpeg.encode(resize(img, size, cfg.interpolation), cfg.jpeg_quality)
        frames.append(encoded)
    return VideoResult(entry.video_id, entry.label_index, entry.split, cfg.fps or folder_fps, size[1], size[0],
                       {"rgb": frames}, {"source_fps": folder_fps, "source_frames": len(files), "rotation": 0})


def run(job: ShardJob) -> dict:
    """Decode the videos of one shard into ``shard-K.h5``; return the summary of write_shard."""
    entries = job.entries()
    fn = guarded(STAGE.name, decode_entry)
    args = (job.root, job.manifest.kind, job.config)
    workers = job.options["workers"]
    if workers > 1:
        results = joblib.Parallel(n_jobs=workers, return_as="generator")(
            joblib.delayed(in_worker(fn))(e, *args) for e in entries)
    else:
        results = (fn(e, *args) for e in entries)
    writer = ShardWriter(job.output(), modality="rgb", encoding="jpeg", params=job.params(), streams=[RGB_STREAM],
                         video_fields=VIDEO_FIELDS, **job.shard_attrs())
    return write_shard({"shard": writer}, results, stage=STAGE.name, strict=job.strict, total=len(entries),
                       progress=job.progress)


STAGE = Stage(
    name="decode",
    summary=(f"Decode videos to RGB JPEG frames in HDF5 shards (by default {_D.fps:g} fps, short side {_D.short_side}; "
             "one shard, or all)."),
    reads="manifest", writes=("shard", "failures"), uses=("decode",), run=run,
    options=(Option("--workers", "workers", config=False, type=int, default=1,
                    help="Videos decoded in parallel."),),
)

__all__ = ["decode_entry", "run", "RGB_STREAM", "STAGE"]
