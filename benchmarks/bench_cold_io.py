"""Clip I/O with every cache dropped: 16 frames from a shard vs 16 files of an mmaction2 rawframes folder.

Uses the data ``bench_loader.py`` leaves under ``--workdir`` (run it first). Before each read the kernel's
page, dentry and inode caches are dropped (``/proc/sys/vm/drop_caches`` = 3, root only), so the shard read
and the 16 ``open``/``read``/``close`` calls both start cold. Only the I/O is timed (no JPEG decoding); the
two methods alternate clip by clip; medians over ``--clips``.

    sudo python benchmarks/bench_cold_io.py [--clips 40] [--workdir .bench/loader]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

from pipeline.shards import ShardReader


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--length", type=int, default=16)
    ap.add_argument("--workdir", default=".bench/loader")
    args = ap.parse_args()
    root = Path(args.workdir)
    shard = sorted((root / "shards" / "rgb").glob("shard-*.h5"))[0]
    reader = ShardReader(shard)
    ids, off = reader.video_ids(), reader.file["videos/offset"][()]
    frames = reader.file["frames/rgb"]          # handle kept open, as a training worker does
    rng = random.Random(0)
    times: dict[str, list[float]] = {"shard": [], "rawframes": []}
    for k in range(args.clips):
        v = rng.randrange(len(ids))
        s = rng.randrange(int(off[v + 1] - off[v]) - args.length)
        for method in ("shard", "rawframes") if k % 2 == 0 else ("rawframes", "shard"):
            drop_caches()
            t = time.perf_counter()
            if method == "shard":
                data = frames[off[v] + s:off[v] + s + args.length]
            else:
                data = []
                for i in range(args.length):
                    with open(root / "rawframes" / ids[v] / f"img_{s + i + 1:05d}.jpg", "rb") as f:
                        data.append(f.read())
            times[method].append(time.perf_counter() - t)
            assert len(data) == args.length
    for method, t in times.items():
        print(f"{method:9s} cold I/O per {args.length}-frame clip: median {1000 * statistics.median(t):.2f} ms")
    ratio = statistics.median(times["rawframes"]) / statistics.median(times["shard"])
    print(f"rawframes / shard: {ratio:.2f}")


if __name__ == "__main__":
    main()
