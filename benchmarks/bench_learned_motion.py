"""Inference time per frame of the learned motion: DMC-Net's generator alone, generator + classifier
(2D ResNet-18 on the cue), and Hidden Two-Stream's MotionNet (11 frames -> 10 flows), at full size.

DMC-Net Table 1 reports 0.106 ms per frame for the generator (on a GPU, 224x224); here the same networks at
their paper sizes, randomly initialised (time does not depend on the weights), on ``--device``: medians of
``--rounds`` timed forward passes after a warm-up, under ``torch.inference_mode``, for batches of 1 and
``--batch``. Also the multiply-adds of each (torch's FLOP counter / 2, as the papers count).

    python benchmarks/bench_learned_motion.py [--device cpu|cuda] [--threads 2] [--rounds 5] [--batch 8] [--bf16]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from pipeline.models import build
from pipeline.models.dmc import DMCGenerator
from pipeline.models.motionnet import MotionNet, MotionNetConfig


def timed(fn, x: torch.Tensor, rounds: int, device: torch.device) -> float:
    """Median seconds of ``fn(x)``."""
    with torch.inference_mode():
        fn(x)
        out = []
        for _ in range(rounds):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            fn(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out.append(time.perf_counter() - t)
    return statistics.median(out)


def macs(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2 / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    nets = {
        "DMC generator (224x224)": (DMCGenerator(), (5, 224, 224), 1),
        "DMC generator + ResNet-18 (224x224)": (build("dmcnet", num_classes=101), (5, 224, 224), 1),
        "MotionNet, 11 frames -> 10 flows (224x224)": (MotionNet(MotionNetConfig(frames=11, scales=5, width=64)),
                                                       (33, 224, 224), 10),
    }
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{platform.machine()} {platform.processor()}, bf16 {args.bf16}")
    for name, (net, shape, frames) in nets.items():
        net = net.to(device).eval()
        m = macs(net, torch.zeros(1, *shape, device=device)) / frames
        row = [f"{name}: {m / 1e9:.3f} G multiply-adds a frame"]
        for n in (1, args.batch):
            x = torch.randn(n, *shape, device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                s = timed(net, x, args.rounds, device)
            row.append(f"batch {n}: {s / n / frames * 1e3:.3f} ms a frame")
        print("; ".join(row))


if __name__ == "__main__":
    main()
