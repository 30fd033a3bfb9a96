"""Stage ``residual_frames``: RGB shards -> residual-frame shards (modality ``resframe``).

``prep-cli residual-frames --manifest FILE --out DIR [--shard K]`` reads
``results/decode/<dataset>/shard-K.h5`` (the 25 fps RGB frames), brings every frame to 170x128
(``residual_frames.size``: decoded directly at that size with libjpeg's DCT scaling when the JPEGs are
exactly 2, 4 or 8 times larger, as 340x256 frames are; otherwise decoded and resized with INTER_AREA) and
stores ``|F_i - F_i+1|`` (or the signed encoding with
``residual_frames.signed``) as one chunked, gzip-compressed uint8 stream ``resframe`` of shape (H, W, 3) per
entry: a video of N frames has N - 1 entries (its own
offsets; this shard is not aligned with the RGB shard's frame offsets, entry i pairs RGB frames i and i+1).
Chunks hold 16 entries, one clip of the residual-frame network. Videos with fewer than 2 frames and the RGB
shard's own failures are recorded in ``shard-K.failures.json``.

The computation is :func:`pipeline.compressed.resframes.resframes_from_jpeg`, which loaders call on the
fly with the same JPEGs (identical arrays).
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import stage_context, stage_options
from .compressed.resframes import AREA, DCT_SCALED, resframes_from_jpeg, resframes_from_rgb
from .config import ResFramesConfig, Settings
from .manifest import Manifest, shard_entries
from .shards import ShardError, ShardReader, ShardWriter, Stream, shard_name
from .stage import StageError, VideoResult, guarded, write_shard

STAGE = "residual_frames"


def stream(cfg: ResFramesConfig) -> Stream:
    w, h = cfg.size
    enc = "(F_i - F_i+1 + 256) >> 1, decode 2q - 256" if cfg.signed else "|F_i - F_i+1|"
    return Stream("resframe", kind="array", shape=(h, w, 3), dtype="uint8",
                  compression=cfg.compression or None,
                  attrs={"layout": "(H, W, 3) RGB", "encode": enc, "signed": bool(cfg.signed),
                         "resize": f"{DCT_SCALED} when the RGB JPEGs are exactly 2, 4 or 8 times the size, "
                                   f"else {AREA}; pipeline.compressed.resframes.resframes_from_jpeg",
                         "pairs": "entry i of a video = frames i and i+1 of its RGB shard"})


class _Item:
    def __init__(self, reader: ShardReader, index: int, video_id: str):
        self.reader, self.index, self.video_id = reader, index, video_id


def resframe_video(item: _Item, cfg: ResFramesConfig, table: dict) -> VideoResult:
    v = item.index
    if item.reader.file["frames/rgb"].attrs.get("encoding") == "jpeg":
        frames = item.reader.raw(v, "rgb")            # JPEG bytes: decoded at the target size when possible
        fn = resframes_from_jpeg
    else:
        frames, fn = item.reader.decode(v, "rgb"), resframes_from_rgb
    if len(frames) < 2:
        raise ValueError(f"{len(frames)} frame(s): residual frames need at least 2")
    res = fn(frames, tuple(cfg.size), cfg.signed)
    w, h = cfg.size
    return VideoResult(item.video_id, int(table["label"][v]), str(table["split"][v]), float(table["fps"][v]),
                       h, w, {"resframe": res})


def stage_params(settings: Settings) -> dict:
    return {"residual_frames": settings.section_dict("residual_frames"),
            "videos_per_shard": settings.videos_per_shard}


def run_residual_frames(settings: Settings, manifest: Manifest, shard: int, out_dir: Path, *, strict: bool,
                        rgb_dir: Path, progress: bool = True) -> dict:
    """Residual frames of one RGB shard into ``out_dir/shard-K.h5``; returns the summary of write_shard."""
    cfg = settings.residual_frames
    src = Path(rgb_dir) / shard_name(shard)
    if not src.exists():
        raise StageError(f"{STAGE}: shard {shard}: RGB shard {src} is missing; run `prep-cli decode` first")
    shard_entries(manifest, shard, settings.videos_per_shard)  # validates the shard index
    total = -(-len(manifest) // settings.videos_per_shard)
    reader = ShardReader(src)
    try:
        if reader.attrs.get("modality") != "rgb" or "rgb" not in reader.streams:
            raise ShardError(f"{src} is not an RGB shard with an 'rgb' stream")
        table = reader.table()
        ids = reader.video_ids()
        fn = guarded(STAGE, resframe_video)
        results = (fn(_Item(reader, i, vid), cfg, table) for i, vid in enumerate(ids))
        writer = ShardWriter(out_dir / shard_name(shard), dataset=manifest.dataset, modality="resframe",
                             encoding="signed-uint8" if cfg.signed else "absdiff-uint8", shard=shard,
                             num_shards=total, classes=manifest.classes, manifest_sha256=manifest.sha256,
                             params=stage_params(settings), streams=[stream(cfg)], chunk_frames=16)
        return write_shard(writer, results, stage=STAGE, strict=strict, total=len(ids),
                           upstream_failures=reader.failures, progress=progress)
    finally:
        reader.close()


@click.command("residual-frames")
@stage_options
@click.option("--rgb", "rgb_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the RGB shards (default: <results>/decode/<dataset>).")
def residual_frames_cmd(config_path, dataset, manifest_path, shard, out_dir, strict, progress, rgb_dir):
    """Residual-frame stacks |F_i - F_i+1| at 170x128 from the RGB shards (modality resframe)."""
    ctx = stage_context(STAGE, config_path, dataset, manifest_path, shard, out_dir, strict, progress)
    src = Path(rgb_dir) if rgb_dir else ctx.settings.stage_dir("decode")
    for k in ctx.shards:
        s = run_residual_frames(ctx.settings, ctx.manifest, k, ctx.out_dir, strict=ctx.strict, rgb_dir=src,
                                progress=ctx.progress)
        click.echo(f"residual-frames: {s['shard']}: {s['videos']} videos, {s['frames']} frames, "
                   f"{s['failures']} failed")


commands = [residual_frames_cmd]

__all__ = ["run_residual_frames", "resframe_video", "stream", "STAGE"]
