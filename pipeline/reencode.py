"""Stage ``reencode``: any video -> MPEG-4 Part 2 (CoViAR / DMC-Net §3.1), checked picture by picture.

``prep-cli reencode SRC DST`` converts one file; ``prep-cli reencode --manifest FILE --out DIR [--shard K]``
converts the videos of one shard (or all) into ``DIR/shard-K/<video>.avi`` and then writes
``DIR/shard-K.failures.json`` and the done-marker ``DIR/shard-K.done.json`` (the list of files with their
frame counts and picture types summary, and every parameter). ffmpeg (the binary shipped with imageio-ffmpeg)
is driven through ffmpeg-python; every encoder setting is given explicitly::

    ffmpeg -i SRC -an -vf fps=25,scale=340:256,setsar=1 -c:v mpeg4 -g 12 -bf 0 -q:v 1
           -sc_threshold 1000000000 -pix_fmt yuv420p -f avi DST

``-sc_threshold 1000000000`` disables scene-cut I-frames, so I-frames are exactly every ``gop`` frames. After
encoding, the picture types are read from the MPEG-4 VOP headers of the packets (no decoding) and the file is
rejected unless frame ``i`` is an I-frame exactly when ``i % gop == 0`` and every other frame is a P-frame.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import click
import ffmpeg

from .atomic import atomic_path, write_text_atomic
from .cli_common import stage_context, stage_options
from .config import ReencodeConfig, Settings
from .manifest import Manifest, shard_entries
from .shards import failures_name
from .stage import StageError, VideoFailure, guarded
from .videoio import ffmpeg_exe

STAGE = "reencode"
VOP_START = b"\x00\x00\x01\xb6"
VOP_TYPES = "IPBS"
FFMPEG_TIMEOUT_S = 3600      # per video; a hung ffmpeg becomes a recorded failure instead of a stuck job


class ReencodeError(RuntimeError):
    """ffmpeg failed, or the result does not have the required picture structure."""


def video_filename(video_id: str) -> str:
    """File name of a video's re-encoded copy: the id with unsafe characters replaced (plus a short hash
    of the id when anything was replaced, so distinct ids never collide) and ``.avi``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", video_id)
    if safe != video_id or safe.startswith("."):
        safe = f"{safe}-{hashlib.sha1(video_id.encode()).hexdigest()[:8]}"
    return f"{safe}.avi"


def shard_dir(out_dir: str | Path, shard: int) -> Path:
    return Path(out_dir) / f"shard-{shard:05d}"


def done_name(shard: int) -> str:
    return f"shard-{shard:05d}.done.json"


def ffmpeg_command(src: str | Path, dst: str | Path, cfg: ReencodeConfig, folder_fps: float = 12.0) -> list[str]:
    """The ffmpeg argument list (built with ffmpeg-python) for one file, or for a folder of frames
    (``00001.jpg``, ... in name order, read at ``folder_fps``: Something-Something v1 is 12 fps)."""
    w, h = cfg.size
    rate = Fraction(cfg.fps).limit_denominator(1001)
    src = Path(src)
    if src.is_dir():
        from .video import list_frame_files
        suffix = list_frame_files(src)[0].suffix
        pattern = str(src / f"*{suffix}").replace("[", "[[]")
        inp = ffmpeg.input(pattern, pattern_type="glob", framerate=str(Fraction(folder_fps).limit_denominator(1001)))
    else:
        inp = ffmpeg.input(str(src))
    v = inp.video.filter("fps", fps=str(rate)).filter("scale", w, h).filter("setsar", 1)
    out = ffmpeg.output(v, str(dst), an=None, vcodec=cfg.codec, g=cfg.gop, bf=cfg.bframes,
                        threads=1, **{"q:v": cfg.qscale, "sc_threshold": 1000000000, "pix_fmt": "yuv420p",
                                      "f": "avi"})
    return [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *out.get_args()]


def picture_types(path: str | Path) -> str:
    """Picture types of an MPEG-4 Part 2 file in decode order, one letter per frame ("IPPP..."), read from
    the VOP headers of the packets without decoding (``vop_coding_type``: I, P, B or S)."""
    import av
    types = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if stream.codec_context.name != "mpeg4":
            raise ReencodeError(f"{Path(path).name}: codec {stream.codec_context.name!r} is not mpeg4")
        for packet in c.demux(stream):
            data = bytes(packet)
            if not data:
                continue
            at = data.find(VOP_START)
            while at >= 0 and at + 4 < len(data):
                types.append(VOP_TYPES[data[at + 4] >> 6])
                at = data.find(VOP_START, at + 4)
    return "".join(types)


def check_gop(types: str, gop: int) -> None:
    """Raise :class:`ReencodeError` unless I-frames are exactly at multiples of ``gop`` and the rest are P."""
    if not types:
        raise ReencodeError("the re-encoded file has no frames")
    for i, t in enumerate(types):
        want = "I" if i % gop == 0 else "P"
        if t != want:
            raise ReencodeError(f"frame {i} is a {t}-frame, expected {want} (GOP {gop}, no B-frames): "
                                f"{types[:48]}")


def reencode_file(src: str | Path, dst: str | Path, cfg: ReencodeConfig, folder_fps: float = 12.0) -> dict:
    """Re-encode ``src`` (a video file, or a folder of frames at ``folder_fps``) to ``dst`` (written
    atomically) and check its picture types; return ``{"frames": n, "gops": g}``. Raises
    :class:`ReencodeError` naming the file."""
    src, dst = Path(src), Path(dst)
    if cfg.size[0] % 2 or cfg.size[1] % 2:
        raise ReencodeError(f"reencode.size {list(cfg.size)} must be even (MPEG-4 4:2:0)")
    if not src.exists():
        raise ReencodeError(f"{src}: no such file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    import subprocess
    with atomic_path(dst) as tmp:
        cmd = ffmpeg_command(src, tmp, cfg, folder_fps)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ReencodeError(f"{src.name}: ffmpeg did not finish within {FFMPEG_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()
            raise ReencodeError(f"{src.name}: ffmpeg failed ({proc.returncode}): {' | '.join(err[-3:])}")
        types = picture_types(tmp)
        try:
            check_gop(types, cfg.gop)
        except ReencodeError as exc:
            raise ReencodeError(f"{src.name}: {exc}") from None
    return {"frames": len(types), "gops": types.count("I")}


def stage_params(settings: Settings) -> dict:
    return {"reencode": settings.section_dict("reencode"), "videos_per_shard": settings.videos_per_shard}


class _Item:
    def __init__(self, entry, src: Path, dst: Path):
        self.video_id, self.entry, self.src, self.dst = entry.video_id, entry, src, dst


def _one(item: _Item, cfg: ReencodeConfig, folder_fps: float = 12.0) -> dict:
    info = reencode_file(item.src, item.dst, cfg, folder_fps)
    return {"video_id": item.video_id, "file": item.dst.name, **info}


def run_reencode(settings: Settings, manifest: Manifest, shard: int, out_dir: Path, *, strict: bool,
                 root: str | None = None, workers: int = 1, progress: bool = True) -> dict:
    """Re-encode the videos of one shard; write the folder, the failure report and the done-marker."""
    from tqdm import tqdm
    import joblib

    cfg = settings.reencode
    entries = shard_entries(manifest, shard, settings.videos_per_shard)
    folder = shard_dir(out_dir, shard)
    folder.mkdir(parents=True, exist_ok=True)
    base = Path(root or manifest.root)
    items = [_Item(e, base / e.path, folder / video_filename(e.video_id)) for e in entries]
    fn = guarded(STAGE, _one)
    if workers > 1:
        results = joblib.Parallel(n_jobs=workers, return_as="generator")(
            joblib.delayed(fn)(i, cfg, settings.decode.folder_fps) for i in items)
    else:
        results = (fn(i, cfg, settings.decode.folder_fps) for i in items)
    done, failures = [], []
    bar = tqdm(results, total=len(items), desc=f"{STAGE} shard {shard}", disable=not progress, leave=False)
    for res in bar:
        if isinstance(res, VideoFailure):
            if strict:
                raise StageError(f"{STAGE}: video {res.video_id}: {res.error}")
            failures.append({"video_id": res.video_id, "stage": res.stage, "error": res.error})
        else:
            done.append(res)
    keep = {d["file"] for d in done}
    for stale in folder.glob("*.avi"):
        if stale.name not in keep:
            stale.unlink()
    if not done:
        raise StageError(f"{STAGE}: shard {shard} has no video that could be re-encoded "
                         f"({len(failures)} failed; first: {failures[:1]})")
    write_text_atomic(out_dir / failures_name(shard),
                      json.dumps(failures, indent=1, ensure_ascii=False) + "\n")
    marker = {"stage": STAGE, "dataset": manifest.dataset, "shard": shard, "manifest_sha256": manifest.sha256,
              "params": stage_params(settings), "folder": folder.name, "videos": done}
    write_text_atomic(out_dir / done_name(shard), json.dumps(marker, indent=1, ensure_ascii=False) + "\n")
    return {"shard": str(folder), "videos": len(done), "frames": sum(d["frames"] for d in done),
            "failures": len(failures)}


@click.command("reencode")
@stage_options
@click.option("--root", default=None, help="Dataset root (default: the one recorded in the manifest).")
@click.option("--workers", type=int, default=1, show_default=True, help="Videos re-encoded in parallel.")
@click.argument("src", required=False, type=click.Path(dir_okay=False))
@click.argument("dst", required=False, type=click.Path(dir_okay=False))
def reencode_cmd(config_path, dataset, manifest_path, shard, out_dir, strict, progress, root, workers, src,
                 dst):
    """Re-encode to MPEG-4 Part 2 (GOP 12, no B-frames, q 1, 25 fps, 340x256): SRC DST, or a manifest."""
    if src or dst:
        if not (src and dst):
            raise click.UsageError("give both SRC and DST, or neither (and a manifest)")
        from .cli_common import resolve_settings
        cfg = resolve_settings(config_path, dataset).reencode
        try:
            info = reencode_file(src, dst, cfg)
        except ReencodeError as exc:
            raise StageError(f"{STAGE}: {exc}") from None
        click.echo(f"reencode: {dst}: {info['frames']} frames, {info['gops']} GOPs ({asdict(cfg)})")
        return
    ctx = stage_context(STAGE, config_path, dataset, manifest_path, shard, out_dir, strict, progress)
    for k in ctx.shards:
        s = run_reencode(ctx.settings, ctx.manifest, k, ctx.out_dir, strict=ctx.strict, root=root,
                         workers=workers, progress=ctx.progress)
        click.echo(f"reencode: {s['shard']}: {s['videos']} videos, {s['frames']} frames, "
                   f"{s['failures']} failed")


commands = [reencode_cmd]

__all__ = ["reencode_file", "ffmpeg_command", "picture_types", "check_gop", "run_reencode", "video_filename",
           "shard_dir", "done_name", "ReencodeError"]
