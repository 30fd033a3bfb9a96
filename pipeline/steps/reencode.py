"""Stage ``reencode``: the videos of one shard -> MPEG-4 Part 2 files (:mod:`pipeline.compressed.mpeg4`).

``prep-cli reencode [--shard K]`` writes ``results/reencode/<dataset>/shard-K/<video>.avi`` (names from
:func:`pipeline.core.paths.video_filename`), then ``shard-K.index.h5``, ``shard-K.failures.json`` and, last,
the done-marker ``shard-K.done.json`` (the files with their frame and GOP counts, and every parameter), so a
done-marker implies a complete folder.

``shard-K.index.h5`` is an ``mv`` shard of encoding ``mpeg4-index``: for every frame of every file its picture
type, GOP number and position, and where its packet lies in the file (``packet_pos``, ``packet_size``,
``packet_crc32``), with each file's name (relative to the index's folder), size and codec header. With it,
:class:`pipeline.data.mv_source.MvShard` (and ``ShardClips``) read any frame's motion vectors and residuals
straight from the MPEG-4 files, decoding only from the I-frame of its GOP, for users who keep the re-encoded
videos and no extract_mv shards. ``prep-cli reencode SRC DST`` converts one file with the config's ``reencode``
section (340x256, GOP 12, no B-frames, q 1, 25 fps by default) and no dataset's overrides.

The frames are the decode stage's (:func:`pipeline.compressed.mpeg4.source_frames`: the same reader, rate
conversion and resize, ``decode.folder_fps`` for frame folders, ``decode.interpolation``), so frame ``i`` of a
re-encoded file, and of the motion vectors and residuals extracted from it, is frame ``i`` of the video's RGB
frames at the same ``fps``.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib

from ..compressed.gop import gop_numbers, index_file
from ..compressed.mpeg4 import ReencodeError, reencode_file
from ..core.atomic import write_text_atomic
from ..core.config import ReencodeConfig, Settings
from ..core.paths import video_filename
from ..core.workers import in_worker
from ..shards import ShardWriter, Stream
from .contract import Option, ShardJob, Stage, guarded, run_videos, write_report
from .extract_mv import array_streams

INDEX_ENCODING = "mpeg4-index"
INDEX_FIELDS = {"file": "str", "file_size": "int64", "extradata": "str", "num_gops": "int32", "mv_scale": "int32"}

NAME = "reencode"
_D = ReencodeConfig()        # the defaults, for the help text


class _Item:
    def __init__(self, video_id: str, src: Path, dst: Path):
        self.video_id, self.src, self.dst = video_id, src, dst


def _one(item: _Item, cfg: ReencodeConfig, folder_fps: float, interpolation: str) -> dict:
    info = reencode_file(item.src, item.dst, cfg, folder_fps, interpolation)
    index = index_file(item.dst)
    if index.num_frames != info["frames"] or int((index.frame_type == 0).sum()) != info["gops"]:
        raise ReencodeError(f"{item.src.name}: the file's {index.num_frames} packets with "
                            f"{int((index.frame_type == 0).sum())} keyframes do not match its {info['frames']} "
                            f"frames in {info['gops']} GOPs")
    return {"video_id": item.video_id, "file": item.dst.name, **info, "index": index}


def index_streams(width: int, height: int, settings: Settings) -> list[Stream]:
    """The streams of ``shard-K.index.h5``: the picture structure and where each packet lies; the
    ``packet_pos`` stream's ``arrays`` attribute (JSON) describes the arrays decoded from the packets."""
    arrays = array_streams(width, height, settings.extract_mv)
    decoded = {s.name: {"shape": list(s.shape), "dtype": s.dtype, "attrs": dict(s.attrs or {})} for s in arrays[3:]}
    return [*arrays[:3],
            Stream("packet_pos", kind="array", dtype="int64", attrs={
                "content": "byte offset of the frame's packet in the file /videos/file (relative to this "
                           "file's folder); decode order = display order (no B-frames)",
                "arrays": json.dumps(decoded, sort_keys=True)}),
            Stream("packet_size", kind="array", dtype="int32", attrs={"content": "bytes of the packet"}),
            Stream("packet_crc32", kind="array", dtype="uint32",
                   attrs={"content": "zlib.crc32 of the packet: a file that changed is refused"})]


def write_index(job: ShardJob, done: list[dict], failures: list[dict]) -> None:
    """``shard-K.index.h5`` of the re-encoded files in ``done`` (manifest order)."""
    w, h = job.config.size
    entries = {e.video_id: e for e in job.entries()}
    folder = job.output("folder")
    writer = ShardWriter(job.output("index"), modality="mv", encoding=INDEX_ENCODING,
                         streams=index_streams(w, h, job.settings), params=job.params(), video_fields=INDEX_FIELDS,
                         chunk_frames=1024, **job.shard_attrs())
    with writer:
        for d in done:
            ix, e = d["index"], entries[d["video_id"]]
            gop_index, gop_pos = gop_numbers(ix.frame_type)
            writer.add_video(e.video_id, e.label_index, e.split, job.config.fps, ix.height, ix.width,
                             {"frame_type": ix.frame_type, "gop_index": gop_index, "gop_pos": gop_pos,
                              "packet_pos": ix.pos, "packet_size": ix.size, "packet_crc32": ix.crc32},
                             file=f"{folder.name}/{d['file']}", file_size=ix.file_size,
                             extradata=ix.extradata.hex(), num_gops=int(gop_index[-1]) + 1, mv_scale=2)
        for f in failures:
            writer.add_failure(f["video_id"], f.get("stage", NAME), f["error"])


def run(job: ShardJob) -> dict:
    """Re-encode the videos of one shard; write the folder, the failure report and the done-marker."""
    cfg: ReencodeConfig = job.config
    job.output("done").unlink(missing_ok=True)      # the folder changes now: an old marker would vouch for it
    folder = job.output("folder")
    folder.mkdir(parents=True, exist_ok=True)
    items = [_Item(e.video_id, Path(job.root) / e.path, folder / video_filename(e.video_id)) for e in job.entries()]
    fn = guarded(NAME, _one)
    args = (cfg, job.settings.decode.folder_fps, job.settings.decode.interpolation)
    if job.options["workers"] > 1:
        results = joblib.Parallel(n_jobs=job.options["workers"], return_as="generator")(
            joblib.delayed(in_worker(fn))(i, *args) for i in items)
    else:
        results = (fn(i, *args) for i in items)
    done: list[dict] = []
    s = run_videos(results, stage=NAME, strict=job.strict, keep=lambda d: done.append(d) or d["frames"],
                   total=len(items), progress=job.progress, name=folder.name)
    keep = {d["file"] for d in done}
    for stale in folder.glob("*.avi"):
        if stale.name not in keep:
            stale.unlink()
    write_index(job, done, s["failures"])
    write_report(job.output("failures"), s["failures"])
    for d in done:
        del d["index"]
    marker = {"stage": NAME, "dataset": job.manifest.dataset, "shard": job.shard, "num_shards": job.num_shards,
              "manifest_sha256": job.manifest.sha256, "params": job.params(), "folder": folder.name, "videos": done}
    write_text_atomic(job.output("done"), json.dumps(marker, indent=1, ensure_ascii=False) + "\n")
    return {"shard": str(folder), "videos": s["videos"], "frames": s["frames"], "failures": len(s["failures"])}


def run_file(src: str, dst: str, settings: Settings, cfg: ReencodeConfig) -> dict:
    """``prep-cli reencode SRC DST``: one file (a frame folder is read at ``decode.folder_fps``)."""
    info = reencode_file(src, dst, cfg, settings.decode.folder_fps, settings.decode.interpolation)
    w, h = cfg.size
    info["message"] = (f"{dst}: {info['frames']} frames, {info['gops']} GOPs ({cfg.codec}, {w}x{h}, "
                       f"{cfg.fps:g} fps, GOP {cfg.gop}, {cfg.bframes} B-frames, q {cfg.qscale})")
    return info


STAGE = Stage(
    name=NAME,
    summary=(f"Re-encode to MPEG-4 Part 2 (by default GOP {_D.gop}, {_D.bframes} B-frames, q {_D.qscale}, {_D.fps:g} fps, "
             f"{_D.size[0]}x{_D.size[1]}): a shard's videos, or SRC DST."),
    reads="manifest", writes=("folder", "index", "done", "failures"),
    uses=(NAME, "decode.folder_fps", "decode.interpolation", "extract_mv.mv_bound"), run=run,
    single_file=run_file,
    options=(Option("--workers", "workers", config=False, type=int, default=1,
                    help="Videos re-encoded in parallel."),),
)

__all__ = ["STAGE", "run", "run_file"]
