"""Stage ``reencode``: the videos of one shard -> MPEG-4 Part 2 files (:mod:`pipeline.compressed.mpeg4`).

``prep-cli reencode [--shard K]`` writes ``results/reencode/<dataset>/shard-K/<video>.avi`` (names from
:func:`pipeline.core.paths.video_filename`), then ``shard-K.failures.json`` and, last, the done-marker
``shard-K.done.json`` (the files with their frame and GOP counts, and every parameter), so a done-marker
implies a complete folder. ``prep-cli reencode SRC DST`` converts one file with the config's ``reencode``
section (340x256, GOP 12, no B-frames, q 1, 25 fps by default) and no dataset's overrides.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib

from ..compressed.mpeg4 import reencode_file
from ..core.atomic import write_text_atomic
from ..core.config import ReencodeConfig, Settings
from ..core.paths import video_filename
from .contract import Option, ShardJob, Stage, guarded, run_videos, write_report

NAME = "reencode"
_D = ReencodeConfig()        # the defaults, for the help text


class _Item:
    def __init__(self, video_id: str, src: Path, dst: Path):
        self.video_id, self.src, self.dst = video_id, src, dst


def _one(item: _Item, cfg: ReencodeConfig, folder_fps: float) -> dict:
    info = reencode_file(item.src, item.dst, cfg, folder_fps)
    return {"video_id": item.video_id, "file": item.dst.name, **info}


def run(job: ShardJob) -> dict:
    """Re-encode the videos of one shard; write the folder, the failure report and the done-marker."""
    cfg: ReencodeConfig = job.config
    job.output("done").unlink(missing_ok=True)      # the folder changes now: an old marker would vouch for it
    folder = job.output("folder")
    folder.mkdir(parents=True, exist_ok=True)
    items = [_Item(e.video_id, Path(job.root) / e.path, folder / video_filename(e.video_id)) for e in job.entries()]
    fn = guarded(NAME, _one)
    fps = job.settings.decode.folder_fps
    if job.options["workers"] > 1:
        results = joblib.Parallel(n_jobs=job.options["workers"], return_as="generator")(
            joblib.delayed(fn)(i, cfg, fps) for i in items)
    else:
        results = (fn(i, cfg, fps) for i in items)
    done: list[dict] = []
    s = run_videos(results, stage=NAME, strict=job.strict, keep=lambda d: done.append(d) or d["frames"],
                   total=len(items), progress=job.progress, name=folder.name)
    keep = {d["file"] for d in done}
    for stale in folder.glob("*.avi"):
        if stale.name not in keep:
            stale.unlink()
    write_report(job.output("failures"), s["failures"])
    marker = {"stage": NAME, "dataset": job.manifest.dataset, "shard": job.shard, "num_shards": job.num_shards,
              "manifest_sha256": job.manifest.sha256, "params": job.params(), "folder": folder.name, "videos": done}
    write_text_atomic(job.output("done"), json.dumps(marker, indent=1, ensure_ascii=False) + "\n")
    return {"shard": str(folder), "videos": s["videos"], "frames": s["frames"], "failures": len(s["failures"])}


def run_file(src: str, dst: str, settings: Settings, cfg: ReencodeConfig) -> dict:
    """``prep-cli reencode SRC DST``: one file (a frame folder is read at ``decode.folder_fps``)."""
    info = reencode_file(src, dst, cfg, settings.decode.folder_fps)
    w, h = cfg.size
    info["message"] = (f"{dst}: {info['frames']} frames, {info['gops']} GOPs ({cfg.codec}, {w}x{h}, "
                       f"{cfg.fps:g} fps, GOP {cfg.gop}, {cfg.bframes} B-frames, q {cfg.qscale})")
    return info


STAGE = Stage(
    name=NAME,
    summary=(f"Re-encode to MPEG-4 Part 2 (by default GOP {_D.gop}, {_D.bframes} B-frames, q {_D.qscale}, {_D.fps:g} fps, "
             f"{_D.size[0]}x{_D.size[1]}): a shard's videos, or SRC DST."),
    reads="manifest", writes=("folder", "done", "failures"), uses=(NAME, "decode.folder_fps"), run=run,
    single_file=run_file,
    options=(Option("--workers", "workers", config=False, type=int, default=1,
                    help="Videos re-encoded in parallel."),),
)

__all__ = ["STAGE", "run", "run_file"]
