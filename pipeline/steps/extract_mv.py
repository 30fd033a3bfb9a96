"""Stage ``extract_mv``: re-encoded MPEG-4 videos -> I-frames, motion vectors and residuals in one shard.

``prep-cli extract-mv [--shard K] [--storage bitstream|arrays] [--backend pyav|mvextractor]`` decodes each
video of shard K once (from ``results/reencode/<dataset>/shard-K/``, see :mod:`pipeline.steps.reencode`) and
writes ``DIR/shard-K.h5`` (modality ``mv``), ``DIR/shard-K.iframes.h5`` (modality ``rgb``, one JPEG stream
``iframe``) and ``shard-K.failures.json``.

``storage: bitstream`` (the default; encoding ``mpeg4-bitstream``): ``shard-K.h5`` keeps each frame's MPEG-4
packet (stream ``packet``, the file's own bytes) with ``frame_type``, ``gop_index``, ``gop_pos`` and each
video's codec header (``/videos/extradata``, hex); the arrays below are decoded from the frame's GOP when they
are read (:class:`pipeline.data.mv_source.MvShard`, bit-identical to ``storage: arrays``). The pass over the
video checks everything such reads rely on (:func:`pipeline.compressed.gop.scan_file`).

``storage: arrays`` (encoding ``coviar-uint8``): ``shard-K.h5`` has one entry per frame in every stream (the
table in :mod:`pipeline.compressed.extract`):
``frame_type``, ``gop_index``, ``gop_pos``, ``mv`` (2, ceil(H/8), ceil(W/8)): one vector per 8x8 cell,
attribute ``grid`` = 8, expanded to (2, H, W) by :func:`pipeline.compressed.encoding.dense_mv`), ``mv_acc``
(2, H, W) and ``residual``/``residual_acc`` (H, W, 3), the last four with 128 (= zero) at I positions. ``shard-K.iframes.h5`` holds the I-frames,
one entry per GOP: entry ``g`` of a video is the I-frame of its frames with ``gop_index == g``. Both files
list the same videos in the same order. Videos that failed to re-encode are carried into this shard's failure report.

``prep-cli visualize-mv SHARD --video ID --out DIR`` writes PNGs of a stored video's vectors and residuals.
"""

from __future__ import annotations

import logging
from pathlib import Path

import json

from ..compressed.extract import MV_CELL, ArrayPool, extract_file, keep_freed_memory
from ..compressed.gop import gop_numbers, scan_file
from ..compressed.fused import available as fused_available
from ..core.config import ExtractMvConfig
from ..core.errors import InputError, StageError
from ..core.manifest import Entry
from ..core.paths import video_filename
from .contract import Option, ShardJob, Stage, VideoResult, guarded, write_shard
from ..media import jpeg
from ..shards import ShardWriter, Stream

log = logging.getLogger(__name__)

NAME = "extract_mv"
ENCODING = "coviar-uint8"                 # storage: arrays
BITSTREAM_ENCODING = "mpeg4-bitstream"    # storage: bitstream
SIGN = "src-dst: p + (dx, dy) is where pixel p is predicted from in the reference frame"
IFRAME_STREAM = Stream("iframe", kind="jpeg", color="rgb", attrs={"entries": "one I-frame per GOP"})
VIDEO_FIELDS = {"num_gops": "int32", "mv_scale": "int32"}
BITSTREAM_FIELDS = {**VIDEO_FIELDS, "extradata": "str"}


def array_streams(width: int, height: int, cfg: ExtractMvConfig) -> list[Stream]:
    """The streams of an ``arrays`` shard for frames of ``width`` x ``height`` (the arrays a ``bitstream``
    shard decodes on read)."""
    c = cfg.compression or None
    mv_attrs = {"layout": "(2, H, W) [dx, dy]", "unit": "pixel", "sign": SIGN, "bound": cfg.mv_bound,
                "encode": "uint8(trunc(clip(v, -bound, bound) * 127.5 / bound) + 128)",
                "decode": "(q - 128) * bound / 127.5", "fill": "128 at I-frames"}
    res_attrs = {"layout": "(H, W, 3) RGB", "encode": "clip(frame - compensated reference + 128, 0, 255)",
                 "decode": "q - 128", "fill": "128 at I-frames",
                 "compensation": "bilinear at p + motion, clamped to the frame, rounded half up"}
    return [
        Stream("frame_type", kind="array", shape=(), dtype="uint8", attrs={"values": "0 = I, 1 = P"}),
        Stream("gop_index", kind="array", shape=(), dtype="int32"),
        Stream("gop_pos", kind="array", shape=(), dtype="int32", attrs={"values": "0 = the GOP's I-frame"}),
        Stream("mv", kind="array", shape=(2, -(-height // MV_CELL), -(-width // MV_CELL)), compression=c,
               attrs={**mv_attrs, "reference": "previous frame (DMC-Net, non-accumulated)",
                      "layout": f"(2, ceil(H/{MV_CELL}), ceil(W/{MV_CELL})) [dx, dy], one vector per "
                                f"{MV_CELL}x{MV_CELL}-pixel cell",
                      "grid": MV_CELL, "dense_shape": [2, height, width],
                      "expand": "pipeline.compressed.encoding.dense_mv(q, grid, H, W): each cell's value "
                                "repeated over its pixels, edge cells cut"}),
        Stream("mv_acc", kind="array", shape=(2, height, width), compression=c,
               attrs={**mv_attrs, "reference": "the GOP's I-frame (CoViAR, accumulated)"}),
        Stream("residual", kind="array", shape=(height, width, 3), compression=c,
               attrs={**res_attrs, "reference": "previous frame compensated with mv"}),
        Stream("residual_acc", kind="array", shape=(height, width, 3), compression=c,
               attrs={**res_attrs, "reference": "the GOP's I-frame compensated with mv_acc"}),
    ]


def bitstream_streams(width: int, height: int, cfg: ExtractMvConfig) -> list[Stream]:
    """The streams of a ``bitstream`` shard: the picture structure, one MPEG-4 packet per frame, and (in the
    packet stream's ``arrays`` attribute, JSON) the shape, dtype and attributes of every array decoded from
    the packets on read."""
    arrays = array_streams(width, height, cfg)
    decoded = {s.name: {"shape": list(s.shape), "dtype": s.dtype, "attrs": dict(s.attrs or {})}
               for s in arrays[3:]}
    packet = Stream("packet", kind="bytes", attrs={
        "encoding": "mpeg4-packet", "codec": "mpeg4",
        "content": "the frame's packet as the container stores it; decode order = display order (no B-frames)",
        "decode": "pipeline.compressed.gop.extract_gop: from the GOP's I-frame, codec header /videos/extradata",
        "arrays": json.dumps(decoded, sort_keys=True)})
    return [*arrays[:3], packet]


def streams(width: int, height: int, cfg: ExtractMvConfig) -> list[Stream]:
    """The shard's streams for frames of ``width`` x ``height`` and the configured ``storage``."""
    return (bitstream_streams if cfg.storage == "bitstream" else array_streams)(width, height, cfg)


def _check_size(name: str, width: int, height: int, size: tuple[int, int]) -> None:
    if (width, height) != tuple(size):
        raise InputError(f"{name}: frames are {width}x{height}, the shard stores {size[0]}x{size[1]} "
                         "(reencode.size)")


def _check_count(video_id: str, name: str, n: int, recorded: int | None) -> None:
    if recorded is not None and n != int(recorded):
        raise InputError(f"video {video_id!r}: {name} has {n} frames, the reencode stage recorded "
                         f"{int(recorded)} (the file changed since; rerun `prep-cli reencode`)")


def extract_entry(entry: Entry, folder: Path, cfg: ExtractMvConfig, size: tuple[int, int], fps: float,
                  pool: ArrayPool | None = None, num_frames: int | None = None) -> VideoResult:
    """Decode one re-encoded video into the streams of the configured storage; the I-frames go to the
    ``iframes`` side output as JPEG. With a ``pool`` the frames are valid until the next call with it. A
    file whose frames are not ``size`` (reencode.size), or that does not hold the ``num_frames`` frames the
    reencode stage recorded for it (the decode stage's count at that rate), is an input error naming the
    video."""
    path = folder / video_filename(entry.video_id)
    if cfg.storage == "bitstream":
        if not path.exists():
            raise InputError(f"{path}: no such file (was it re-encoded? run `prep-cli reencode`)")
        index, packets, iframe_images = scan_file(path)
        _check_size(path.name, index.width, index.height, size)
        gop_index, gop_pos = gop_numbers(index.frame_type)
        frames = {"frame_type": index.frame_type, "gop_index": gop_index, "gop_pos": gop_pos, "packet": packets}
        fields = {"num_gops": len(iframe_images), "mv_scale": 2, "extradata": index.extradata.hex()}
        height, width = index.height, index.width
    else:
        v = extract_file(path, cfg.mv_bound, cfg.backend, pool)
        _check_size(path.name, v.width, v.height, size)
        frames, iframe_images = v.frames, v.iframes
        fields = {"num_gops": v.num_gops, "mv_scale": v.scale}
        height, width = v.height, v.width
    _check_count(entry.video_id, path.name, len(frames["frame_type"]), num_frames)
    iframes = [jpeg.encode(img, cfg.iframe_jpeg_quality) for img in iframe_images]
    return VideoResult(entry.video_id, entry.label_index, entry.split, fps, height, width, frames, fields,
                       side={"iframes": {"iframe": iframes}})


def _done_marker(job: ShardJob) -> dict:
    marker = json.loads(job.input("done").read_text())
    job.check_upstream({k: marker.get(k) for k in ("manifest_sha256", "shard", "num_shards", "dataset")},
                       job.input("done"))
    return marker


def run(job: ShardJob) -> dict:
    """Extract one shard into ``shard-K.h5`` and ``shard-K.iframes.h5``; returns write_shard's summary."""
    cfg: ExtractMvConfig = job.config
    keep_freed_memory()
    fast, why = fused_available()
    if not fast and cfg.storage == "arrays":
        log.warning("%s: the fused kernel is not used (%s); the OpenCV path gives the same arrays in about "
                    "1.8x the CPU time", NAME, why)
    marker = _done_marker(job)
    upstream = job.upstream_failures()
    skip = {f["video_id"] for f in upstream}
    todo = [e for e in job.entries() if e.video_id not in skip]
    up = marker["params"]["reencode"]
    size, fps = tuple(up["size"]), float(up["fps"])
    if size != tuple(job.settings.reencode.size):
        raise StageError(f"{NAME}: shard {job.shard}: the re-encoded files are {size[0]}x{size[1]}, the config "
                         f"says {list(job.settings.reencode.size)}; rerun `prep-cli reencode`")
    fn = guarded(NAME, extract_entry)
    pool = ArrayPool()          # each video is written before the next is extracted into the same arrays
    folder = job.input("folder")
    recorded = {v["video_id"]: v.get("frames") for v in marker.get("videos", [])}
    results = (fn(e, folder, cfg, size, fps, pool, recorded.get(e.video_id)) for e in todo)
    common = dict(params=job.params(marker["params"]), video_fields=VIDEO_FIELDS, **job.shard_attrs())
    fields = BITSTREAM_FIELDS if cfg.storage == "bitstream" else VIDEO_FIELDS
    writers = {
        "shard": ShardWriter(job.output("shard"), modality="mv", streams=streams(*size, cfg),
                             encoding=BITSTREAM_ENCODING if cfg.storage == "bitstream" else ENCODING,
                             chunk_frames=int(up["gop"]), **{**common, "video_fields": fields}),  # a chunk: a GOP
        "iframes": ShardWriter(job.output("iframes"), modality="rgb", encoding="jpeg", streams=[IFRAME_STREAM],
                               **common),
    }
    return write_shard(writers, results, stage=NAME, strict=job.strict, total=len(todo),
                       upstream_failures=upstream, progress=job.progress)


STAGE = Stage(
    name=NAME,
    summary="Motion vectors, residuals and I-frames of the re-encoded MPEG-4 videos, in shards (one decode each).",
    reads="reencode", writes=("shard", "iframes", "failures"), uses=(NAME,), run=run,
    options=(Option("--storage", "storage"), Option("--backend", "backend")),
)

__all__ = ["STAGE", "run", "extract_entry", "streams", "array_streams", "bitstream_streams", "ENCODING",
           "BITSTREAM_ENCODING", "IFRAME_STREAM"]
