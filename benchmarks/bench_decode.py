"""Decode-stage throughput against a bare PyAV decode + resize loop on the same file, in one run.

The footage is a 10 s H.264 clip of moving texture (320x240 like UCF101 by default, ``--source 1280x720`` for
HD footage like much of Kinetics), generated here, listed
``--videos`` times in the manifest (a real shard holds ~100 videos, so per-shard costs are shared). Both sides
decode with one thread, convert to 8-bit colour and resize to 340x256; the stage also JPEG-encodes every frame
and writes the HDF5 shard (temporary file, rename) and its failure report. Rounds alternate between the two and the medians are
compared. Throughput is frames per CPU-second of the process (= frames/s per core) and frames per wall second.

    python benchmarks/bench_decode.py [--source 320x240] [--seconds 10] [--fps 25] [--videos 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.core.config import resolve
from pipeline.steps import run_shard
from pipeline.media.synthetic import texture
from pipeline.core.manifest import make_manifest, read_manifest
from pipeline.media.videoio import write_video


def make_clip(path: Path, seconds: float, fps: float, width: int = 320, height: int = 240) -> int:
    rng = np.random.default_rng(0)
    n = int(round(seconds * fps))
    bg = texture(rng, height, width + 2 * n)
    frames = (np.ascontiguousarray(bg[:, 2 * i:2 * i + width]) for i in range(n))
    write_video(path, frames, fps, "libx264", {"crf": "20"})
    return n


def bare_loop(path: Path) -> int:
    """The reference: PyAV decode, RGB conversion, cv2 resize to 340x256; nothing else."""
    n = 0
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            # threads=1: swscale on this thread, like everything else here (PyAV's default, 0 = automatic,
            # gives each frame's new swscale context a thread pool: more CPU time a frame)
            cv2.resize(frame.to_ndarray(format="rgb24", threads=1), (340, 256), interpolation=cv2.INTER_AREA)
            n += 1
    return n


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    n = fn()
    return n, time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=25.0, help="source frame rate (25: no resampling)")
    ap.add_argument("--videos", type=int, default=8, help="copies of the clip in the shard")
    ap.add_argument("--source", default="320x240", help="source size WxH (320x240: UCF101/HMDB51; 1280x720: HD)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sw, sh = map(int, args.source.split("x"))
        make_clip(tmp / "videos" / "c" / "clip.mp4", args.seconds, args.fps, sw, sh)
        m = make_manifest("bench", "csv", tmp / "videos", ["c"],
                          [(f"clip{i:03d}", "c/clip.mp4", "c", "train") for i in range(args.videos)])
        m.write(tmp / "bench.tsv")
        m = read_manifest(tmp / "bench.tsv")
        settings = resolve({"datasets": {"bench": {"format": "csv", "root": str(tmp / "videos")}},
                            "videos_per_shard": args.videos,
                            "dataset": "bench", "decode": {"size": [340, 256], "threads": 1}})

        def stage() -> int:
            s = run_shard("decode", settings, 0, manifest=m, out_dir=tmp / "out", strict=True, progress=False)
            return s["frames"]

        rows = {"bare": [], "stage": []}
        for _ in range(args.rounds):
            bare = lambda: sum(bare_loop(tmp / "videos" / "c" / "clip.mp4") for _ in range(args.videos))  # noqa: E731
            for name, fn in (("bare", bare), ("stage", stage)):
                rows[name].append(timed(fn))
    med = {k: (v[0][0], statistics.median(x[1] for x in v), statistics.median(x[2] for x in v))
           for k, v in rows.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, "
          f"python {platform.python_version()}, av {av.__version__}, opencv {cv2.__version__}")
    print(f"clip: {args.seconds:g} s at {args.fps:g} fps, {args.source} H.264 -> 340x256, {args.videos} videos a shard; "
          f"{args.rounds} rounds, medians")
    for k, (n, cpu, wall) in med.items():
        print(f"{k:6s} {n} frames  {n / cpu:8.1f} frames/CPU-s (per core)  {n / wall:8.1f} frames/s wall")
    # each round's own ratio (the two ran back to back), then the median: steadier on a shared machine
    per_round = sorted((s[0] / s[1]) / (b[0] / b[1]) for b, s in zip(rows["bare"], rows["stage"]))
    wall = sorted((s[0] / s[2]) / (b[0] / b[2]) for b, s in zip(rows["bare"], rows["stage"]))
    print(f"ratio stage/bare per core: median {statistics.median(per_round):.3f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in per_round)}; goal >= 0.8); "
          f"wall: median {statistics.median(wall):.3f}")


if __name__ == "__main__":
    main()
