"""Training-clip throughput from shards, against decoding the same JPEGs and against an mmaction2 rawframes
folder holding the same JPEG bytes on the same disk, in one run; plus files and bytes per 1,000 videos.

Data: ``--videos`` synthetic videos of ``--frames`` frames at 340x256 (the decode stage's size for
UCF101), moving multi-scale colour texture, JPEG quality 95 (the decode stage's default), written once to
one vidshard file per 100 videos and exported with ``prep-cli shards export --layout rawframes`` (the same
bytes as ``img_00001.jpg`` ... files). Cached under ``--workdir`` between runs.

One clip = one training sample as ``ShardClips(mode="train", train_view="window")`` makes it: 16 consecutive
frames, random 112x112 window, random mirror, mean subtraction, a float32 (3, 16, 112, 112) tensor. Every method runs the
same clips (same seeds) in one process (= one DataLoader worker):

* ``decode``: only the decoding of the clip's 16 JPEGs (the same ``cv2.imdecode`` call the dataset makes),
  the bytes already in memory: the floor.
* ``shards``: ``ShardClips.__getitem__`` (HDF5 read + decode + crop/flip/normalize + tensor).
* ``rawframes``: the same dataset code, but each frame read from its own file (open, read, close), as
  mmaction2's ``RawFrameDecode`` does.

``warm``: files in the page cache (a full pass first). ``cold``: before each clip, the shard file (handle kept
open, as in training) or the clip's 16 frame files are dropped from the page cache (``posix_fadvise``), so the
bytes come from the disk. The methods take turns clip by clip, so all see the same load from other processes;
per-round clips/s (per CPU-second of this process = per core, and per wall-second) and the median over rounds
are reported.

    python benchmarks/bench_loader.py [--videos 100] [--frames 150] [--rounds 5] [--workdir .bench/loader]

``--part views``: the recipes' spatial views instead (:mod:`pipeline.data.views`), clips/s per core (CPU
seconds of this one process) of one clip ``ShardClips.__getitem__`` makes, every case on the same clips in
turn, clip by clip:

* MARS's inputs at 16x112x112, RGB, flow (x and y JPEGs) and RGB+flow: ``before`` = the 112x112 window of
  the frames as stored (the loader before the recipes: ``train_view="window"``, ``test_view="window"``);
  ``train`` = the multi-scale corner crop resized to 112; ``test`` = short side to 112, centre 112; each
  with reduced JPEG decoding (``reduced``) and without (``full``);
* the 2D streams' single-frame inputs at 224 (RGB): the TSN multi-scale crop, one of the ten test crops,
  DMC-Net's 256x256-squashed centre, reduced and full.

The fraction of the decode time saved by reduced decoding is ``1 - full / reduced`` clips/s ratios'
complement on the same views (the rest of a sample's cost is the same in both).

    python benchmarks/bench_loader.py --part views [--videos 20] [--frames 150] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.media import jpeg
from pipeline.data import ShardClips
from pipeline.data.dataset import VideoEntry, _decode_jpeg
from pipeline.layouts.convert import export_shards
from pipeline.media.synthetic import texture
from pipeline.core.paths import shard_name
from pipeline.shards import ShardWriter, Stream

W, H = 340, 256


def make_data(root: Path, videos: int, frames: int, per_shard: int = 100) -> list[Path]:
    """Shards under ``root/shards/rgb`` and the rawframes export under ``root/rawframes`` (cached)."""
    done = root / "done.json"
    if done.exists() and json.loads(done.read_text()) == [videos, frames]:
        return sorted((root / "shards" / "rgb").glob("shard-*.h5"))
    rng = np.random.default_rng(0)
    paths = []
    num_shards = (videos + per_shard - 1) // per_shard
    for k in range(num_shards):
        path = root / "shards" / "rgb" / shard_name(k)
        with ShardWriter(path, dataset="bench", modality="rgb", encoding="jpeg", shard=k,
                         num_shards=num_shards, classes=["c"], manifest_sha256="0" * 64,
                         params={"decode": {"jpeg_quality": 95}}, streams=[Stream("rgb")]) as w:
            for v in range(k * per_shard, min(videos, (k + 1) * per_shard)):
                speed = rng.uniform(0.5, 2.0)
                bg = cv2.GaussianBlur(texture(rng, H + 8, W + int(speed * frames) + 8), (0, 0), 1.0)
                fg = texture(rng, 80, 80, contrast=1.6)
                out = []
                for i in range(frames):
                    x0 = int(speed * i)
                    img = bg[4:4 + H, x0:x0 + W].copy()
                    cy, cx = int(90 + 40 * np.sin(i / 9)), int(40 + (i * 3) % (W - 120))
                    img[cy:cy + 80, cx:cx + 80] = fg
                    out.append(jpeg.encode(img, 95))
                w.add_video(f"v{v:05d}", 0, "train", 25.0, H, W, {"rgb": out})
        paths.append(path)
    export_shards(paths, root / "rawframes", "rawframes")
    done.write_text(json.dumps([videos, frames]))
    return paths


class RawframesClips(ShardClips):
    """ShardClips with every frame read from its own ``img_%05d.jpg`` file instead of the shard."""

    def __init__(self, frames_root: Path, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frames_root = Path(frames_root)

    def _stored(self, src: str, entry: VideoEntry, stream: str, lo: int, hi: int) -> list[np.ndarray]:
        folder = self.frames_root / entry.video_id
        out = []
        for k in range(lo + 1, hi + 1):
            with open(folder / f"img_{k:05d}.jpg", "rb") as f:
                out.append(np.frombuffer(f.read(), np.uint8))
        return out


def evict(paths: list[Path]) -> None:
    """Drop files from the page cache (no root needed; affects only these files)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def footprint(files: list[Path], dirs: int, videos: int) -> dict:
    apparent = sum(p.stat().st_size for p in files)
    allocated = sum(p.stat().st_blocks * 512 for p in files)
    k = 1000 / videos
    return {"files": round(len(files) * k), "inodes": round((len(files) + dirs) * k),
            "apparent_GB": apparent * k / 1e9, "allocated_GB": allocated * k / 1e9}


def make_flow(root: Path, rgb: list[Path]) -> list[Path]:
    """Flow shards beside the RGB shards (cached): per video N - 1 pairs of gray x / y JPEGs of a smooth
    field around 128 (the flow stage's quantized values), the RGB shard's videos and sizes."""
    from pipeline.shards import ShardReader
    out = []
    rng = np.random.default_rng(1)
    for path in rgb:
        dst = root / "shards" / "flow" / path.name
        out.append(dst)
        if dst.exists():
            continue
        with ShardReader(path) as r:
            table = r.table()
            ids = [x.decode() if isinstance(x, bytes) else x for x in r.file["videos"]["video_id"][()]]
            k, n = int(r.attrs["shard"]), int(r.attrs["num_shards"])
        with ShardWriter(dst, dataset="bench", modality="flow", encoding="jpeg", shard=k, num_shards=n,
                         classes=["c"], manifest_sha256="0" * 64, params={"extract_flow": {"bound": 20.0}},
                         streams=[Stream("x", color="gray"), Stream("y", color="gray")]) as w:
            for i, vid in enumerate(ids):
                frames = int(table["num_frames"][i])
                field = cv2.GaussianBlur(rng.normal(128, 40, (H, W)).astype(np.float32), (0, 0), 8)
                q = np.clip(field, 0, 255).astype(np.uint8)
                xs = [jpeg.encode(np.roll(q, j, axis=1), 95) for j in range(frames - 1)]
                ys = [jpeg.encode(np.roll(q, j, axis=0), 95) for j in range(frames - 1)]
                w.add_video(vid, 0, "train", 25.0, H, W, {"x": xs, "y": ys})
    return out


def views_main(args) -> None:
    """``--part views``: see the module's docstring."""
    rgb = make_data(args.workdir, args.videos, args.frames)
    flow = make_flow(args.workdir, rgb)
    both = {"rgb": rgb, "flow": flow}
    mars = dict(length=16, crop=112, seed=0)
    cases: dict[str, ShardClips] = {}
    for mod, shards in (("rgb", rgb), ("flow", flow), ("rgb+flow", both)):
        src = shards if isinstance(shards, dict) else {mod: shards}
        cases[f"{mod} before train (112 window)"] = ShardClips(src, mod, "train", train_view="window", **mars)
        cases[f"{mod} before test (112 window)"] = ShardClips(src, mod, "test", test_view="window", **mars)
        for red in (True, False):
            tag = "reduced" if red else "full"
            cases[f"{mod} train corner {tag}"] = ShardClips(src, mod, "train", reduced=red, **mars)
            cases[f"{mod} test short_center {tag}"] = ShardClips(src, mod, "test", reduced=red, **mars)
    frame = dict(length=1, crop=224, seed=0, scales=(1.0, 0.875, 0.75, 0.66), test_resize=256 / 224,
                 test_clips=25)
    for red in (True, False):
        tag = "reduced" if red else "full"
        cases[f"frame 224 train multiscale {tag}"] = ShardClips(rgb, "frame", "train", train_view="multiscale",
                                                                reduced=red, **frame)
        cases[f"frame 224 test ten_crop {tag}"] = ShardClips(rgb, "frame", "test", test_view="ten_crop",
                                                             reduced=red, **frame)
        cases[f"frame 224 test squash_center {tag}"] = ShardClips(rgb, "frame", "test",
                                                                  test_view="squash_center", reduced=red, **frame)
    n = min(args.videos, min(len(d) for d in cases.values()))
    step = {name: max(1, len(d) // n) for name, d in cases.items()}      # test sets: spread over the videos
    for name, d in cases.items():                                          # warm-up
        for i in range(n):
            d[i * step[name]]
    names = list(cases)
    res: dict[str, list[float]] = {m: [] for m in names}
    for r in range(args.rounds):
        cpu = dict.fromkeys(names, 0.0)
        for i in range(n):
            k = (i + r) % len(names)
            for m in names[k:] + names[:k]:
                c0 = time.process_time()
                cases[m][i * step[m]]
                cpu[m] += time.process_time() - c0
        for m in names:
            res[m].append(n / cpu[m])
    med = {m: statistics.median(v) for m, v in res.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(res[a], res[b]))

    ratios = {}
    for mod in ("rgb", "flow", "rgb+flow"):
        ratios[f"{mod}: train corner (reduced) / before train"] = ratio(f"{mod} train corner reduced",
                                                                        f"{mod} before train (112 window)")
        ratios[f"{mod}: test short_center (reduced) / before test"] = ratio(f"{mod} test short_center reduced",
                                                                            f"{mod} before test (112 window)")
        for v in ("train corner", "test short_center"):
            ratios[f"{mod}: {v} reduced / full"] = ratio(f"{mod} {v} reduced", f"{mod} {v} full")
    for v in ("train multiscale", "test ten_crop", "test squash_center"):
        ratios[f"frame 224: {v} reduced / full"] = ratio(f"frame 224 {v} reduced", f"frame 224 {v} full")
    # the decode time reduced decoding saves: time per clip of decoding alone, full vs at the view's scale
    from pipeline.data import views as V
    d = cases["rgb test short_center full"]
    e = d.videos[0]
    data = d._stored("rgb", e, "rgb", 0, 16)
    g = V.geometry(d.test_view_list[0], *e.sizes["rgb"])
    t = {}
    for r in (1, V.reduction(g)):
        c0 = time.process_time()
        for _ in range(20):
            for b in data:
                _decode_jpeg(b, False, r)
        t[r] = (time.process_time() - c0) / 20
    out = {"info": {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                       if line.startswith("model name")), "?"),
                    "videos": args.videos, "frames": args.frames, "clips_per_case": n, "rounds": args.rounds},
           "clips_per_s_per_core": {m: round(v, 1) for m, v in med.items()},
           "ratios": {k: round(v, 3) for k, v in ratios.items()},
           "decode_16_rgb_jpegs_ms": {f"1/{r}": round(1000 * v, 2) for r, v in t.items()},
           "decode_time_saved_at_1/2": round(1 - t[max(t)] / t[1], 3)}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["layouts", "views"], default="layouts",
                    help="layouts: shards against rawframes (default); views: the recipes' spatial views")
    ap.add_argument("--videos", type=int, default=100)
    ap.add_argument("--frames", type=int, default=150, help="frames per video (UCF101: ~186 at 25 fps)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=Path(".bench/loader"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    import torch
    torch.set_num_threads(1)
    if args.part == "views":
        return views_main(args)

    shards = make_data(args.workdir, args.videos, args.frames)
    frames_root = args.workdir / "rawframes"
    ds = ShardClips(shards, "rgb", mode="train", length=16, crop=112, seed=0, train_view="window")
    raw = RawframesClips(frames_root, shards, "rgb", mode="train", length=16, crop=112, seed=0,
                         train_view="window")
    n = len(ds)
    # The clips (same seeds as the datasets use) and their JPEG bytes in memory, for the decode-only floor.
    starts = [int(ds[i]["start"]) for i in range(n)]
    memory = [ds._stored("rgb", e, "rgb", s, s + 16) for e, s in zip(ds.videos, starts)]
    clip_files = [[frames_root / e.video_id / f"img_{k + 1:05d}.jpg" for k in range(s, s + 16)]
                  for e, s in zip(ds.videos, starts)]

    def decode_only(i: int) -> None:
        for b in memory[i]:
            _decode_jpeg(b, False)

    methods = {"decode": decode_only, "shards": ds.__getitem__, "rawframes": raw.__getitem__,
               "shards_cold": ds.__getitem__, "rawframes_cold": raw.__getitem__}
    for i in range(n):              # warm-up pass: page cache, HDF5 metadata, allocator
        for fn in methods.values():
            fn(i)
    # Clip by clip, the methods take turns (rotating order), so all of them see the same load from other
    # processes on this shared machine; per-round totals give clips/s, medians over rounds are reported.
    names = list(methods)
    res: dict[str, list[tuple[float, float]]] = {m: [] for m in names}
    for r in range(args.rounds):
        cpu = dict.fromkeys(names, 0.0)
        wall = dict.fromkeys(names, 0.0)
        for i in range(n):
            k = (i + r) % len(names)
            for m in names[k:] + names[:k]:
                if m == "shards_cold":
                    evict(shards)          # the shard files leave the page cache (the handle stays open)
                elif m == "rawframes_cold":
                    evict(clip_files[i])   # the clip's 16 files (their inodes stay cached: generous to files)
                c0, w0 = time.process_time(), time.perf_counter()
                methods[m](i)
                cpu[m] += time.process_time() - c0
                wall[m] += time.perf_counter() - w0
        for m in names:
            res[m].append((n / cpu[m], n / wall[m]))
    med = {m: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for m, v in res.items()}

    def ratio(a: str, b: str, j: int) -> float:
        return statistics.median(x[j] / y[j] for x, y in zip(res[a], res[b]))

    ratios = {"shards_over_decode_cpu": ratio("shards", "decode", 0),
              "shards_over_decode_wall": ratio("shards", "decode", 1),
              "shards_over_rawframes_warm_wall": ratio("shards", "rawframes", 1),
              "shards_over_rawframes_cold_wall": ratio("shards_cold", "rawframes_cold", 1),
              "shards_over_rawframes_cold_cpu": ratio("shards_cold", "rawframes_cold", 0)}
    jpeg_files = sorted(frames_root.rglob("*.jpg"))
    frame_dirs = {p.parent for p in jpeg_files}
    lists = sorted(frames_root.glob("*.txt"))
    foot = {"shards": footprint(shards, 0, args.videos),
            "rawframes": footprint(jpeg_files + lists, len(frame_dirs) + 1, args.videos)}
    mean_jpeg = sum(p.stat().st_size for p in jpeg_files) / len(jpeg_files)
    info = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"{platform.system()} {platform.release()}",
            "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                               if line.startswith("model name")), "?"),
            "videos": args.videos, "frames": args.frames, "clips_per_pass": n, "rounds": args.rounds,
            "mean_jpeg_bytes": round(mean_jpeg)}
    out = {"info": info,
           "clips_per_s": {m: {"cpu": round(c, 1), "wall": round(w, 1)} for m, (c, w) in med.items()},
           "ratios": {k: round(v, 3) for k, v in ratios.items()}, "per_1000_videos": foot}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
