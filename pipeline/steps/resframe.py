"""Stage ``resframe``: RGB shards -> residual-frame shards (modality ``resframe``).

``prep-cli resframe [--shard K]`` reads
``results/decode/<dataset>/shard-K.h5`` (the 25 fps RGB frames), brings every frame to 170x128
(``resframe.size``: decoded directly at that size with libjpeg's DCT scaling when the JPEGs are
exactly 2, 4 or 8 times larger, as 340x256 frames are; otherwise decoded and resized with INTER_AREA) and
stores ``|F_i - F_i+1|`` (or the signed encoding with
``resframe.signed``) as one chunked, gzip-compressed uint8 stream ``resframe`` of shape (H, W, 3) per
entry: a video of N frames has N - 1 entries (its own
offsets; this shard is not aligned with the RGB shard's frame offsets, entry i pairs RGB frames i and i+1).
Chunks hold 16 entries, one clip of the residual-frame network. Videos with fewer than 2 frames and the RGB
shard's own failures are recorded in ``shard-K.failures.json``.

The computation is :func:`pipeline.resframe.resframes_from_jpeg`, which loaders call on the
fly with the same JPEGs (identical arrays).
"""

from __future__ import annotations

from ..core.config import ResframeConfig
from ..core.errors import InputError
from .contract import ShardJob, Stage, VideoResult, guarded, write_shard
from ..resframe import AREA, DCT_SCALED, resframes_from_jpeg, resframes_from_rgb
from ..shards import ShardReader, ShardWriter, Stream

NAME = "resframe"


def stream(cfg: ResframeConfig) -> Stream:
    w, h = cfg.size
    enc = "(F_i - F_i+1 + 256) >> 1, decode 2q - 256" if cfg.signed else "|F_i - F_i+1|"
    return Stream("resframe", kind="array", shape=(h, w, 3), dtype="uint8",
                  compression=cfg.compression or None,
                  attrs={"layout": "(H, W, 3) RGB", "encode": enc, "signed": bool(cfg.signed),
                         "resize": f"{DCT_SCALED} when the RGB JPEGs are exactly 2, 4 or 8 times the size, "
                                   f"else {AREA}; pipeline.resframe.resframes_from_jpeg",
                         "pairs": "entry i of a video = frames i and i+1 of its RGB shard"})


class _Item:
    def __init__(self, reader: ShardReader, index: int, video_id: str):
        self.reader, self.index, self.video_id = reader, index, video_id


def resframe_video(item: _Item, cfg: ResframeConfig, table: dict) -> VideoResult:
    v = item.index
    if item.reader.file["frames/rgb"].attrs.get("encoding") == "jpeg":
        frames = item.reader.raw(v, "rgb")            # JPEG bytes: decoded at the target size when possible
        fn = resframes_from_jpeg
    else:
        frames, fn = item.reader.decode(v, "rgb"), resframes_from_rgb
    if len(frames) < 2:
        raise InputError(f"{item.video_id} has {len(frames)} frame(s); residual frames need at least 2 (one pair)")
    res = fn(frames, tuple(cfg.size), cfg.signed)
    w, h = cfg.size
    return VideoResult(item.video_id, int(table["label"][v]), str(table["split"][v]), float(table["fps"][v]),
                       h, w, {"resframe": res})


def run(job: ShardJob) -> dict:
    """Residual frames of one RGB shard into ``shard-K.h5``; returns the summary of write_shard."""
    cfg: ResframeConfig = job.config
    reader = job.open_input("rgb", "rgb")
    try:
        table = reader.table()
        ids = reader.video_ids()
        fn = guarded(NAME, resframe_video)
        results = (fn(_Item(reader, i, vid), cfg, table) for i, vid in enumerate(ids))
        writer = ShardWriter(job.output(), modality="resframe",
                             encoding="signed-uint8" if cfg.signed else "absdiff-uint8",
                             params=job.params(reader.params), streams=[stream(cfg)],
                             chunk_frames=job.settings.recipe("resframe").length,   # a chunk: one clip
                             **job.shard_attrs())
        return write_shard({"shard": writer}, results, stage=NAME, strict=job.strict, total=len(ids),
                           upstream_failures=job.upstream_failures(), progress=job.progress)
    finally:
        reader.close()


STAGE = Stage(
    name=NAME,
    summary=(f"Residual-frame stacks |F_i - F_i+1| from the RGB shards (modality resframe; by default "
             f"{ResframeConfig().size[0]}x{ResframeConfig().size[1]})."),
    reads="decode", writes=("shard", "failures"), uses=(NAME,), run=run, manifest_optional=True,
)

__all__ = ["STAGE", "run", "resframe_video", "stream"]
