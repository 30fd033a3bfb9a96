"""Feature extraction throughput: clips per second and the fraction of time spent waiting for data.

A synthetic RGB shard like the decode stage's output for UCF101 (JPEG frames, 128 x 171 by default) is written
once under ``.bench/features/``; then ``pipeline.features.extract.run_items`` (the stage's engine: batches of
clips across videos, DataLoader workers reading ahead, pinned memory on CUDA) runs a freshly initialised
network of each ``--arch`` on every 16 x 112 x 112 clip (MARS's recipe: centre view, stride 16). Reported per
network: clips/s, the seconds blocked on the loader (``wait``) and in the network (``compute``), and
``wait / (wait + compute)``: 0 means the network never waits for data.

    python benchmarks/bench_features.py                                     # CPU: ResNet-18-3D and ResNeXt-101
    python benchmarks/bench_features.py --device cuda --workers 12 --batch 32 --videos 64 --frames 160
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.config import ClipsConfig, recipe_defaults  # noqa: E402
from pipeline.data.dataset import ShardClips  # noqa: E402
from pipeline.features.extract import run_items  # noqa: E402
from pipeline.media import jpeg  # noqa: E402
from pipeline.models import build  # noqa: E402
from pipeline.shards import ShardWriter, Stream  # noqa: E402
from pipeline.train.methods import get as get_method  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / ".bench" / "features"


def synthetic_shard(path: Path, videos: int, frames: int, h: int, w: int) -> Path:
    """An RGB shard of ``videos`` videos of ``frames`` JPEG frames (moving noise, quality 90)."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h, w + frames, 3), dtype=np.uint8)
    with ShardWriter(path, dataset="bench", modality="rgb", encoding="jpeg", shard=0, num_shards=1,
                     classes=["a"], manifest_sha256="0" * 64, params={}, streams=[Stream("rgb")]) as wr:
        for v in range(videos):
            jp = [jpeg.encode(np.ascontiguousarray(base[:, i:i + w]), 90) + bytes(i % 3) for i in range(frames)]
            wr.add_video(f"v{v}", 0, "test", 25.0, h, w, {"rgb": jp})
    return path


def bench(arch: str, shard: Path, *, batch: int, workers: int, device: str, bf16: bool, warmup: int) -> dict:
    recipe = dataclasses.replace(recipe_defaults()["mars"], test_view="short_center")
    data = ShardClips.from_config({"rgb": [shard]}, "rgb", ClipsConfig(), recipe, mode="test", test_stride=16)
    torch.manual_seed(0)
    model = build(arch, in_channels=3, num_classes=101).to(device).eval()
    warm = torch.zeros(min(batch, warmup) or 1, 3, 16, 112, 112, device=device)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(warmup):
            model.forward_features(warm)
    t = time.perf_counter()
    out = run_items(model, get_method("rgb"), data, batch_size=batch, workers=workers, device=device,
                    bf16=bf16, pad=device.startswith("cuda"))
    total = time.perf_counter() - t
    return {"arch": arch, "clips": out.clips, "seconds": total, "clips_per_s": out.clips / total,
            "wait_s": out.wait_seconds, "compute_s": out.compute_seconds,
            "wait_fraction": out.wait_seconds / max(out.wait_seconds + out.compute_seconds, 1e-9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", nargs="+", default=["resnet3d-18", "resnext3d-101"])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=48, help="frames per video (clips: frames // 16)")
    ap.add_argument("--size", type=int, nargs=2, default=[171, 128], metavar=("W", "H"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed forward passes first")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    w, h = a.size
    shard = synthetic_shard(OUT / f"rgb-{a.videos}x{a.frames}-{w}x{h}.h5", a.videos, a.frames, h, w)
    rows = [bench(arch, shard, batch=a.batch, workers=a.workers, device=a.device, bf16=a.bf16, warmup=a.warmup)
            for arch in a.arch]
    machine = {"machine": f"{platform.machine()} {platform.processor()}".strip(), "cpus": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "device": a.device,
               "gpu": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else None}
    if a.json:
        print(json.dumps({"settings": vars(a), **machine, "rows": rows}))
        return
    print(f"{machine}; batch {a.batch}, workers {a.workers}, {a.videos} videos x {a.frames} frames {w}x{h}, "
          "clips 16x112x112 every 16 frames")
    print(f"{'arch':16s} {'clips':>6s} {'clips/s':>9s} {'wait s':>8s} {'compute s':>10s} {'waiting':>8s}")
    for r in rows:
        print(f"{r['arch']:16s} {r['clips']:6d} {r['clips_per_s']:9.2f} {r['wait_s']:8.2f} {r['compute_s']:10.2f} "
              f"{r['wait_fraction']:8.1%}")


if __name__ == "__main__":
    main()
