"""Sizes of every network of pipeline.models against the published figures, and training throughput.

Table: parameters and multiply-adds (``pipeline.models.summary.describe``, counted on the meta device, so
instant) of every architecture at 400 classes, on a 16x112x112 clip (3D) or a 224x224 image (2D), beside the
published numbers: Hara et al. 2018 Table 2 for the 3D ResNets (400 classes; they give no multiply-adds),
He et al. 2016 Table 1 and torchvision for the 2D ResNets (ImageNet, 1000 classes: those rows are counted at
1000 classes too).

Throughput: clips (images) per second of full training steps of one architecture (forward, cross-entropy,
backward, SGD with momentum) on random inputs, ``--warmup`` untimed steps then ``--steps`` timed ones;
``--bf16`` runs the forward under CUDA bf16 autocast.

    python benchmarks/bench_models.py --steps 2                       # CPU: the table and a short timing
    python benchmarks/bench_models.py --device cuda --bf16 --batch 32 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models import ARCHS, build, input_dims_of  # noqa: E402
from pipeline.models.summary import describe  # noqa: E402

#: arch -> (classes the figures are for, parameters, multiply-adds or None, source)
PUBLISHED = {
    "resnet3d-18": (400, 33.2e6, None, "Hara 2018 T2"),
    "resnet3d-34": (400, 63.5e6, None, "Hara 2018 T2"),
    "resnet3d-50": (400, 46.4e6, None, "Hara 2018 T2"),
    "resnet3d-101": (400, 85.3e6, None, "Hara 2018 T2"),
    "resnext3d-101": (400, 48.3e6, None, "Hara 2018 T2"),
    "resnet18-3d-elu": (400, 33.2e6, None, "Tao: ~ResNet-18-3D"),
    "resnet2d-18": (1000, 11.7e6, 1.8e9, "He 2016 T1; DMC-Net T1 1.78 G"),
    "resnet2d-34": (1000, 21.8e6, 3.6e9, "He 2016 T1"),
    "resnet2d-50": (1000, 25.6e6, 3.8e9, "He 2016 T1 (v1.5: 4.1 G)"),
}


def table(frames: int) -> list[dict]:
    """One row per architecture: our parameters and MACs at 400 classes and at the published class count."""
    rows = []
    for arch in ARCHS:
        classes, params, macs, source = PUBLISHED[arch]
        ours = describe(arch, classes=400, frames=frames)
        at = ours if classes == 400 else describe(arch, classes=classes, frames=frames)
        rows.append({"arch": arch, "input": "x".join(map(str, ours["input_shape"][1:])),
                     "parameters": ours["parameters"], "macs": ours["macs"], "published_classes": classes,
                     "parameters_at_published": at["parameters"], "published_parameters": params,
                     "macs_at_published": at["macs"], "published_macs": macs, "source": source})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'arch':16s} {'input':12s} {'params@400':>11s} {'MACs':>8s} | {'K':>4s} {'params':>8s} "
          f"{'published':>9s} {'diff':>6s} {'MACs':>7s} {'published':>9s}  source")
    for r in rows:
        pub_m = f"{r['published_macs'] / 1e9:.2f} G" if r["published_macs"] else "-"
        diff = 100 * (r["parameters_at_published"] / r["published_parameters"] - 1)
        print(f"{r['arch']:16s} {r['input']:12s} {r['parameters'] / 1e6:9.2f} M {r['macs'] / 1e9:6.2f} G | "
              f"{r['published_classes']:4d} {r['parameters_at_published'] / 1e6:6.2f} M "
              f"{r['published_parameters'] / 1e6:7.1f} M {diff:+5.1f}% {r['macs_at_published'] / 1e9:5.2f} G "
              f"{pub_m:>9s}  {r['source']}")


def throughput(arch: str, device: str, batch: int, steps: int, warmup: int, frames: int, size: int | None,
               bf16: bool, classes: int = 400) -> dict:
    """Training steps per second of ``arch`` on random (batch, 3, T, S, S) clips (or (batch, 3, S, S))."""
    dev = torch.device(device)
    torch.manual_seed(0)
    model = build(arch, num_classes=classes).to(dev).train()
    size = size or (224 if input_dims_of(arch) == 2 else 112)
    shape = (batch, 3, frames, size, size) if model.input_dims == 3 else (batch, 3, size, size)
    x = torch.randn(shape, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    use_bf16 = bf16 and dev.type == "cuda"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    total = sum(times)
    out = {"arch": arch, "device": str(dev), "batch": batch, "input": list(shape), "bf16": use_bf16,
           "warmup": warmup, "steps": steps, "seconds_per_step": total / steps,
           "clips_per_s": batch * steps / total,
           "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--arch", default="resnet3d-18", choices=list(ARCHS), help="network timed")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=None, help="crop (default: 112 for 3D, 224 for 2D)")
    ap.add_argument("--bf16", action="store_true", help="CUDA bf16 autocast")
    ap.add_argument("--no-table", action="store_true", help="only the timing")
    ap.add_argument("--no-timing", action="store_true", help="only the table")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    result: dict = {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if not args.no_table:
        result["table"] = table(args.frames)
        print_table(result["table"])
    if not args.no_timing:
        t = throughput(args.arch, args.device, args.batch, args.steps, args.warmup, args.frames, args.size,
                       args.bf16)
        result["throughput"] = t
        print(f"\n{t['arch']} training on {t['device']}{' (' + t['gpu'] + ')' if 'gpu' in t else ''}, input "
              f"{'x'.join(map(str, t['input']))}, bf16 {t['bf16']}, {t['threads']} threads: "
              f"{t['clips_per_s']:.2f} clips/s ({t['seconds_per_step']:.2f} s a step, {t['steps']} steps "
              f"after {t['warmup']} warm-up)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
