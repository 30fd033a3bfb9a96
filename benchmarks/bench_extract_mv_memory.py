"""Peak memory of the ``extract_mv`` stage against the number of videos in its shard.

Every stage streams its shard one video at a time, so its peak memory should not depend on how many videos
the shard holds. This script makes the synthetic 10 s clip of ``bench_compressed.py`` (320x240, a pan and a
moving disc; or ``--video FILE``), copies it N times into a dataset, re-encodes each shard of N videos with
the ``reencode`` stage (340x256 MPEG-4 Part 2, 250 frames a video), and runs ``prep-cli extract-mv`` on it in
a fresh process for every N and storage. The peak is the child's maximum resident set size from the kernel
(``wait4``; extract_mv is one process). Printed per storage: the peak for each N, its ratio to the smallest
N's, and the growth per added video.

``--old`` also runs the decoding as it was before frames were freed one by one (``frame.side_data``
cached on the frame and ``gc.collect(0)`` after each, the frames kept in a reference cycle until the process
ended: BENCHMARKS.md "extract_mv memory") and checks that both give the same bytes (shard, I-frame file, failure report).

    python benchmarks/bench_extract_mv_memory.py [--videos 4,16,32] [--storage bitstream,arrays] [--old]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compressed import cpu_model, make_clip  # noqa: E402

from pipeline.core.config import resolve  # noqa: E402
from pipeline.core.manifest import make_manifest, read_manifest  # noqa: E402
from pipeline.steps import run_shard  # noqa: E402

# runs prep-cli in the child; "old" puts back the decoding of before the fix (same arrays, same bytes)
CHILD = """
import sys
if sys.argv[1] == "old":
    import gc
    from pipeline.compressed import backends, gop
    new_frame = backends.frame_of
    def old_frame(frame):
        frame.side_data                 # cached on the frame, referring back to it: the cycle of before
        decoded = new_frame(frame)
        gc.collect(0)                   # what collect_frame() did after every frame
        return decoded
    backends.frame_of = gop.frame_of = old_frame
sys.argv = ["prep-cli", *sys.argv[2:]]
from pipeline.cli import main
main()
"""
OUTPUTS = ("shard-00000.h5", "shard-00000.iframes.h5", "shard-00000.failures.json")


def peak_rss_mb(args: list[str], decoding: str) -> float:
    """Run prep-cli ``args`` in a fresh process; its peak resident set size in MB (10^6 bytes)."""
    p = subprocess.Popen([sys.executable, "-c", CHILD, decoding, *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode:
        raise SystemExit(f"prep-cli {' '.join(args)} failed ({p.returncode}):\n{err[-3000:]}")
    return usage.ru_maxrss * 1024 / 1e6          # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default="4,16,32", help="shard sizes (videos per shard), comma-separated")
    ap.add_argument("--storage", default="bitstream,arrays", help="extract_mv.storage settings")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the synthetic clip")
    ap.add_argument("--video", type=Path, default=None, help="a real clip to copy instead of the synthetic one")
    ap.add_argument("--old", action="store_true", help="also run the decoding of before the fix")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary "
                    "folder; storage arrays takes ~170 MB a video)")
    args = ap.parse_args()
    sizes = sorted({int(n) for n in args.videos.split(",")})
    storages = args.storage.split(",")
    decodings = ["new", "old"] if args.old else ["new"]
    tmp_ctx = tempfile.TemporaryDirectory() if args.workdir is None else None
    tmp = Path(tmp_ctx.name) if tmp_ctx else args.workdir
    try:
        videos = tmp / "videos" / "c"
        videos.mkdir(parents=True, exist_ok=True)
        clip = videos / "clip.mp4"
        if args.video:
            shutil.copy(args.video, clip)
        else:
            make_clip(clip, args.seconds)
        for i in range(sizes[-1]):
            shutil.copy(clip, videos / f"clip{i:03d}.mp4")
        print(f"machine: {os.cpu_count()} cores, {cpu_model()}; Python {sys.version.split()[0]}")
        peaks: dict[tuple[str, str], dict[int, float]] = {}
        for n in sizes:
            d = tmp / f"n{n}"
            rows = [(f"clip{i:03d}", f"c/clip{i:03d}.mp4", "c", "train") for i in range(n)]
            d.mkdir(exist_ok=True)
            make_manifest("bench", "csv", tmp / "videos", ["c"], rows).write(d / "bench.tsv")
            base = {"datasets": {"bench": {"format": "csv", "root": str(tmp / "videos")}}, "dataset": "bench",
                    "results": str(d / "results"), "videos_per_shard": n}
            re_dir = d / "reencode"
            if not (re_dir / "shard-00000.done.json").exists():
                run_shard("reencode", resolve(base), 0, manifest=read_manifest(d / "bench.tsv"), out_dir=re_dir,
                          strict=True, progress=False, options={"workers": min(2, os.cpu_count() or 1)})
            for storage in storages:
                cfg = d / f"config-{storage}.yaml"
                cfg.write_text(json.dumps({**base, "extract_mv": {"storage": storage}}))
                for decoding in decodings:
                    out = d / f"mv-{storage}-{decoding}"
                    cli = ["extract-mv", "--config", str(cfg), "--manifest", str(d / "bench.tsv"), "--shard", "0",
                           "--input", str(re_dir), "--out", str(out), "--no-progress"]
                    mb = peaks.setdefault((storage, decoding), {})[n] = peak_rss_mb(cli, decoding)
                    print(f"  {storage:9s} {decoding}: {n:3d} videos: peak RSS {mb:7.0f} MB", flush=True)
                if args.old:
                    a, b = d / f"mv-{storage}-new", d / f"mv-{storage}-old"
                    same = all(filecmp.cmp(a / f, b / f, shallow=False) for f in OUTPUTS)
                    print(f"  {storage:9s} {n:3d} videos: outputs of old and new decoding "
                          f"{'byte-identical' if same else 'DIFFER'}")
                    if not same:
                        raise SystemExit(1)
                    shutil.rmtree(b)
                if storage == "arrays":                                   # ~170 MB a video
                    shutil.rmtree(d / f"mv-{storage}-new")
        lo = sizes[0]
        print(f"\npeak RSS of extract_mv (MB) against videos per shard (10^6 bytes; ratio to {lo} videos)")
        print("storage    decoding  " + "  ".join(f"{n:>14d}" for n in sizes) + "   MB per added video")
        for (storage, decoding), by_n in peaks.items():
            cells = "  ".join(f"{by_n[n]:7.0f} ({by_n[n] / by_n[lo]:4.2f}x)" for n in sizes)
            slope = (by_n[sizes[-1]] - by_n[lo]) / (sizes[-1] - lo) if len(sizes) > 1 else 0.0
            print(f"{storage:10s} {decoding:8s}  {cells}   {slope:8.1f}")
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
