"""Stage ``decode``: manifest entries -> RGB shards of JPEG frames at 25 fps, short side 256.

``prep-cli decode --dataset NAME [--shard K]`` writes ``results/decode/NAME/shard-K.h5`` (modality ``rgb``,
one JPEG stream ``rgb``) and ``shard-K.failures.json``. Video files are decoded with PyAV and converted by
:class:`pipeline.video.VideoReader`; frame-folder datasets (Something-Something v1) are read as they are:
their JPEG bytes are copied unchanged when no resizing is asked for.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import click
import joblib

from . import jpeg
from .cli_common import stage_context, stage_options
from .config import DecodeConfig, Settings
from .manifest import Entry, Manifest, shard_entries
from .shards import ShardWriter, Stream, shard_name
from .stage import VideoResult, guarded, write_shard
from .video import VideoError, VideoReader, frame_folder_indices, list_frame_files, output_size, resize

STAGE = "decode"
RGB_STREAM = Stream("rgb", kind="jpeg", color="rgb")
VIDEO_FIELDS = {"source_fps": "float64", "source_frames": "int32", "rotation": "int32"}


def decode_entry(entry: Entry, root: str, kind: str, cfg: DecodeConfig) -> VideoResult:
    """Decode one manifest entry to JPEG frames. Raises on any problem (the caller records it)."""
    path = Path(root) / entry.path
    if kind == "frames":
        return _decode_folder(entry, path, cfg, cfg.folder_fps)
    reader = VideoReader(path, cfg)
    frames = [data for _, data in reader.jpeg_frames(cfg.jpeg_quality)]
    w, h = reader.size
    return VideoResult(entry.video_id, entry.label_index, entry.split, reader.fps, h, w, {"rgb": frames},
                       {"source_fps": reader.source_fps, "source_frames": reader.source_frames,
                        "rotation": reader.rotation})


def _decode_folder(entry: Entry, folder: Path, cfg: DecodeConfig, folder_fps: float) -> VideoResult:
    files = list_frame_files(folder)
    first = jpeg.decode(files[0].read_bytes())
    size = output_size(first.shape[1], first.shape[0], cfg)
    copy = size == (first.shape[1], first.shape[0]) and all(f.suffix.lower() in (".jpg", ".jpeg") for f in files)
    frames: list[bytes] = []
    cache: dict[int, bytes] = {}
    for i in frame_folder_indices(len(files), folder_fps, cfg.fps):
        if i not in cache:
            data = files[i].read_bytes()
            try:
                img = jpeg.decode(data)
            except ValueError:
                raise VideoError(f"frame {files[i].name} of {folder.name} does not decode") from None
            if img.shape[:2] != first.shape[:2]:
                raise VideoError(f"frame {files[i].name} of {folder.name} is {img.shape[1]}x{img.shape[0]}, "
                                 f"the first is {first.shape[1]}x{first.shape[0]}")
            cache = {i: data if copy else jpeg.encode(resize(img, size, cfg.interpolation), cfg.jpeg_quality)}
        frames.append(cache[i])
    return VideoResult(entry.video_id, entry.label_index, entry.split, cfg.fps or folder_fps, size[1], size[0],
                       {"rgb": frames}, {"source_fps": folder_fps, "source_frames": len(files), "rotation": 0})


def stage_params(settings: Settings) -> dict:
    """Everything that determines the bytes of an RGB shard (recorded in its attributes)."""
    return {"decode": settings.section_dict("decode"),
            "dataset": {k: v for k, v in asdict(settings.dataset).items() if k != "manifest"},
            "videos_per_shard": settings.videos_per_shard}


def run_decode(settings: Settings, manifest: Manifest, shard: int, out_dir: Path, *, strict: bool,
               workers: int = 1, root: str | None = None, progress: bool = True) -> dict:
    """Decode the videos of one shard into ``out_dir/shard-K.h5``; return the summary of write_shard."""
    entries: Sequence[Entry] = shard_entries(manifest, shard, settings.videos_per_shard)
    total = -(-len(manifest) // settings.videos_per_shard)
    fn = guarded(STAGE, decode_entry)
    args = (root or manifest.root, manifest.kind, settings.decode)
    if workers > 1:
        results = joblib.Parallel(n_jobs=workers, return_as="generator")(
            joblib.delayed(fn)(e, *args) for e in entries)
    else:
        results = (fn(e, *args) for e in entries)
    writer = ShardWriter(out_dir / shard_name(shard), dataset=manifest.dataset, modality="rgb", encoding="jpeg",
                         shard=shard, num_shards=total, classes=manifest.classes,
                         manifest_sha256=manifest.sha256, params=stage_params(settings), streams=[RGB_STREAM],
                         video_fields=VIDEO_FIELDS)
    return write_shard(writer, results, stage=STAGE, strict=strict, total=len(entries), progress=progress)


@click.command("decode")
@stage_options
@click.option("--root", default=None, help="Dataset root (default: the one recorded in the manifest).")
@click.option("--workers", type=int, default=1, show_default=True, help="Videos decoded in parallel.")
def decode_cmd(config_path, dataset, manifest_path, shard, out_dir, strict, progress, root, workers) -> None:
    """Decode videos to 25 fps RGB JPEG frames in HDF5 shards (one shard, or all)."""
    ctx = stage_context(STAGE, config_path, dataset, manifest_path, shard, out_dir, strict, progress)
    for k in ctx.shards:
        s = run_decode(ctx.settings, ctx.manifest, k, ctx.out_dir, strict=ctx.strict, workers=workers,
                       root=root, progress=ctx.progress)
        click.echo(f"decode: {s['shard']}: {s['videos']} videos, {s['frames']} frames, {s['failures']} failed")


commands = [decode_cmd]

__all__ = ["decode_entry", "run_decode", "stage_params", "RGB_STREAM"]
