"""Stage ``extract_mv``: re-encoded MPEG-4 videos -> I-frames, motion vectors and residuals in one shard.

``prep-cli extract-mv --manifest FILE --out DIR [--shard K] [--backend pyav|mvextractor]`` decodes each video
of shard K once (from ``results/reencode/<dataset>/shard-K/``, see :mod:`pipeline.reencode`) and writes
``DIR/shard-K.h5`` (modality ``mv``, encoding ``coviar-uint8``), ``DIR/shard-K.iframes.h5`` (modality ``rgb``,
one JPEG stream ``iframe``) and ``shard-K.failures.json``.

``shard-K.h5`` has one entry per frame in every stream (the table in :mod:`pipeline.compressed.extract`):
``frame_type``, ``gop_index``, ``gop_pos``, ``mv`` (2, ceil(H/8), ceil(W/8)): one vector per 8x8 cell,
attribute ``grid`` = 8, expanded to (2, H, W) by :func:`pipeline.compressed.encoding.dense_mv`), ``mv_acc``
(2, H, W) and ``residual``/``residual_acc`` (H, W, 3), the last four with 128 (= zero) at I positions. ``shard-K.iframes.h5`` holds the I-frames,
one entry per GOP: entry ``g`` of a video is the I-frame of its frames with ``gop_index == g``. Both files
list the same videos in the same order. Videos that failed to re-encode are carried into this shard's failure report.

``prep-cli mv-visualize SHARD --video ID --out DIR`` writes PNGs of a stored video's vectors and residuals.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import numpy as np

from . import jpeg
from .cli_common import stage_context, stage_options
from .compressed.extract import MV_CELL, ArrayPool
from .compressed.fused import available as fused_available
from .config import MvConfig, Settings
from .manifest import Entry, Manifest, shard_entries
from .reencode import done_name, shard_dir, video_filename
from .shards import ShardWriter, Stream, failures_name, shard_name
from .stage import VideoFailure, VideoResult, guarded, write_shard

log = logging.getLogger(__name__)

STAGE = "extract_mv"
ENCODING = "coviar-uint8"
SIGN = "src-dst: p + (dx, dy) is where pixel p is predicted from in the reference frame"


def streams(width: int, height: int, cfg: MvConfig) -> list[Stream]:
    """The shard's streams for frames of ``width`` x ``height``."""
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


_HEAP_KEPT = False


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory in the process instead of returning it to the kernel at once
    (``mallopt``: trim only above 256 MiB free, ``mmap`` only for blocks above 64 MiB). Every frame allocates
    and frees a few dozen 90-350 KB temporaries; by default each one is a fresh ``mmap`` (or a trimmed heap)
    and page-faults again: 0.2-0.3 ms a frame of system time, measured. Process-wide and permanent, so only
    the stage runner calls it (once); returns False where it does not apply (not glibc)."""
    global _HEAP_KEPT
    if _HEAP_KEPT:
        return True
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        _HEAP_KEPT = bool(libc.mallopt(-1, 256 << 20) and libc.mallopt(-3, 64 << 20))  # M_TRIM_, M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        _HEAP_KEPT = False
    return _HEAP_KEPT


def extract_file(path: str | Path, cfg: MvConfig, backend: str | None = None, pool=None):
    """Decode one file once: a :class:`pipeline.compressed.extract.CompressedVideo`. ``pool``: an
    :class:`pipeline.compressed.extract.ArrayPool` whose arrays the result may reuse (valid until its next use)."""
    from .compressed.backends import MV_CODECS, iter_frames, probe_codec
    from .compressed.extract import extract

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (was it re-encoded? run `prep-cli reencode`)")
    codec, frames = probe_codec(path)
    if codec in MV_CODECS and codec != "mpeg4":
        # H.264 vectors may point to older frames than the previous one (multiple references), MPEG-2 has
        # B-frames and field prediction: the residual definitions here hold for MPEG-4 Part 2 P-frames only.
        raise ValueError(f"{path.name}: codec {codec!r} is not MPEG-4 Part 2; its vectors do not follow the "
                         "one-previous-frame model; re-encode it with `prep-cli reencode` first")
    return extract(iter_frames(path, backend or cfg.backend), bound=cfg.mv_bound, scale=2, codec=codec,
                   expected_frames=frames, pool=pool)


def iframes_name(shard: int) -> str:
    return f"shard-{shard:05d}.iframes.h5"


IFRAME_STREAM = Stream("iframe", kind="jpeg", color="rgb", attrs={"entries": "one I-frame per GOP"})


def extract_entry(entry: Entry, folder: Path, cfg: MvConfig, backend: str | None = None,
                  pool=None) -> VideoResult:
    """Decode one video; the I-frames travel JPEG-encoded in the result's ``fields["iframes"]``. With a
    ``pool`` the frames are valid until the next call with it (see :func:`extract_file`)."""
    path = folder / video_filename(entry.video_id)
    v = extract_file(path, cfg, backend, pool)
    iframes = [jpeg.encode(img, cfg.iframe_jpeg_quality) for img in v.iframes]
    return VideoResult(entry.video_id, entry.label_index, entry.split, 25.0, v.height, v.width, v.frames,
                       {"num_gops": v.num_gops, "mv_scale": v.scale, "iframes": iframes})


def stage_params(settings: Settings, backend: str) -> dict:
    return {"reencode": settings.section_dict("reencode"),
            "extract_mv": {**settings.section_dict("extract_mv"), "backend": backend},
            "videos_per_shard": settings.videos_per_shard}


def run_extract_mv(settings: Settings, manifest: Manifest, shard: int, out_dir: Path, *, strict: bool,
                   reencoded: Path, backend: str | None = None, progress: bool = True) -> dict:
    """Extract one shard into ``out_dir/shard-K.h5``; return the summary of ``write_shard``."""
    cfg = settings.extract_mv
    backend = backend or cfg.backend
    keep_freed_memory()
    fast, why = fused_available()
    if not fast:
        log.warning("%s: the fused kernel is not used (%s); the OpenCV path gives the same arrays in about "
                    "1.8x the CPU time", STAGE, why)
    entries = shard_entries(manifest, shard, settings.videos_per_shard)
    total = -(-len(manifest) // settings.videos_per_shard)
    folder = shard_dir(reencoded, shard)
    upstream = []
    report = Path(reencoded) / failures_name(shard)
    if report.exists():
        upstream = json.loads(report.read_text())
    skip = {f["video_id"] for f in upstream}
    todo = [e for e in entries if e.video_id not in skip]
    fps = settings.reencode.fps
    fn = guarded(STAGE, extract_entry)
    pool = ArrayPool()          # each video is written before the next is extracted into the same arrays
    w, h = settings.reencode.size
    common = dict(dataset=manifest.dataset, shard=shard, num_shards=total, classes=manifest.classes,
                  manifest_sha256=manifest.sha256, params=stage_params(settings, backend))
    fields = {"num_gops": "int32", "mv_scale": "int32"}
    iw = ShardWriter(out_dir / iframes_name(shard), modality="rgb", encoding="jpeg", streams=[IFRAME_STREAM],
                     video_fields=fields, **common)

    def results():
        failed = [dict(f) for f in upstream]
        for e in todo:
            r = fn(e, folder, cfg, backend, pool)
            if isinstance(r, VideoResult):
                r.fps = fps
                if (r.width, r.height) != (w, h):
                    r = VideoFailure(e.video_id, STAGE, f"{video_filename(e.video_id)}: frames are "
                                     f"{r.width}x{r.height}, the shard stores {w}x{h} (reencode.size)")
            if isinstance(r, VideoResult):
                iframes = r.fields.pop("iframes")
                iw.add_video(r.video_id, r.label, r.split, r.fps, r.height, r.width, {"iframe": iframes},
                             **r.fields)
            else:
                failed.append({"video_id": r.video_id, "stage": r.stage, "error": r.error})
            yield r
        for f in failed:
            iw.add_failure(f["video_id"], f["stage"], f["error"])
        if iw.num_videos:
            iw.close()      # before the main shard is renamed: a complete main shard implies its I-frames
        else:
            iw.abort()

    writer = ShardWriter(out_dir / shard_name(shard), modality="mv", encoding=ENCODING,
                         streams=streams(w, h, cfg), video_fields=fields, chunk_frames=12, **common)
    try:
        return write_shard(writer, results(), stage=STAGE, strict=strict, total=len(todo),
                           upstream_failures=upstream, progress=progress)
    except BaseException:
        iw.abort()
        raise


@click.command("extract-mv")
@stage_options
@click.option("--backend", type=click.Choice(["pyav", "mvextractor"]), default=None,
              help="Motion-vector reader (default from config: pyav).")
@click.option("--reencoded", type=click.Path(file_okay=False), default=None,
              help="Output folder of `prep-cli reencode` (default: <results>/reencode/<dataset>).")
def extract_mv_cmd(config_path, dataset, manifest_path, shard, out_dir, strict, progress, backend, reencoded):
    """Motion vectors, residuals and I-frames of re-encoded MPEG-4 videos into shards (one decode each)."""
    ctx = stage_context(STAGE, config_path, dataset, manifest_path, shard, out_dir, strict, progress)
    src = Path(reencoded) if reencoded else ctx.settings.stage_dir("reencode")
    for k in ctx.shards:
        if not (src / done_name(k)).exists():
            from .stage import StageError
            raise StageError(f"{STAGE}: shard {k}: {src / done_name(k)} is missing; "
                             "run `prep-cli reencode` first")
        s = run_extract_mv(ctx.settings, ctx.manifest, k, ctx.out_dir, strict=ctx.strict, reencoded=src,
                           backend=backend, progress=ctx.progress)
        click.echo(f"extract-mv: {s['shard']}: {s['videos']} videos, {s['frames']} frames, "
                   f"{s['failures']} failed")


@click.command("mv-visualize")
@click.argument("shard", type=click.Path(exists=True, dir_okay=False))
@click.option("--video", "video", default=None, help="Video id (default: the first of the shard).")
@click.option("--frames", "count", type=int, default=12, show_default=True,
              help="Frames to draw, from the first.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
def mv_visualize_cmd(shard, video, count, out_dir):
    """PNGs of a stored video's motion vectors and residuals (both modes) for reports."""
    from .compressed.viz import visualize_shard_video
    paths = visualize_shard_video(shard, video, Path(out_dir), count)
    click.echo(f"mv-visualize: wrote {len(paths)} PNGs to {out_dir}")


commands = [extract_mv_cmd, mv_visualize_cmd]

__all__ = ["extract_file", "extract_entry", "run_extract_mv", "streams", "iframes_name", "STAGE"]
