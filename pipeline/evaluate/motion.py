"""How good and how fast the learned motion is: DMC-Net's generated cue and Hidden Two-Stream's MotionNet
flow, against TV-L1 flow and, where the dataset has it (the demo's ``true_flow.h5``), against the true flow.

End-point error (EPE): the mean Euclidean distance in pixels over every pixel of every test sample, on the
test split's centre crops. DMC-Net's cue approximates the *negated* TV-L1 flow from the frame before the
anchor P-frame (motion vectors are ``src - dst``; :mod:`pipeline.train.inputs`), so every reference here is
put in that orientation; the raw motion vectors and all-zero motion are scored the same way, as baselines.
Times are forward passes per frame on the evaluation device, after one warm-up batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..core.config import ClipsConfig
from ..data import clips as C
from ..data.dataset import ShardClips, pixel_views, worker_init
from ..train.inputs import dmc_target, network_input, scales_of
from ..train.methods import get as get_method
from ..train.trainer import load_model, method_clips
from .run import checkpoint_recipe


def epe(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) mean end-point error per sample of two (N, 2, H, W) motion fields in pixels."""
    return torch.linalg.vector_norm(a.float() - b.float(), dim=1).flatten(1).mean(1)


def true_flow_crops(true_flow: h5py.File, data: ShardClips, batch: Mapping[str, torch.Tensor], index: int,
                    size: int) -> torch.Tensor | None:
    """(N, 2, S, S) true flow ``index`` frames after each sample's start (centre crop, as the test clips),
    None when a video has no true flow or another frame size."""
    out = []
    for v, s in zip(batch["video"].tolist(), batch["start"].tolist()):
        vid = data.videos[v].video_id
        if vid not in true_flow:
            return None
        truth = true_flow[vid]
        if s + index >= len(truth):
            return None
        f = truth[s + index]                                   # (H, W, 2) pixels
        y0, x0 = C.crop_box(f.shape[0], f.shape[1], size)
        out.append(torch.from_numpy(np.ascontiguousarray(f[y0:y0 + size, x0:x0 + size].transpose(2, 0, 1))))
    return torch.stack(out)


def _timed(fn, x: torch.Tensor, device: torch.device, rounds: int = 3) -> float:
    """Seconds per sample of ``fn(x)`` (median of ``rounds`` after a warm-up)."""
    with torch.inference_mode():
        fn(x)
        times = []
        for _ in range(rounds):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            fn(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t)
    return float(np.median(times)) / len(x)


def dmc_motion(model_path: str | Path, shards: Mapping[str, Sequence[Path]], clips: ClipsConfig,
               true_flow: str | Path | None = None, device: str | torch.device = "cpu", batch_size: int = 16,
               split: str = "test", time_size: int = 224) -> dict:
    """DMC-Net's cue on the ``split``'s anchored P-frames: EPE against TV-L1 flow (its training target) of
    the DMC, of the raw motion vectors and of zero motion; the same against the true flow when
    ``true_flow`` (an h5 of ``/<video id>: (N-1, H, W, 2)`` pixels) is given; and seconds per frame of the
    generator alone and of the generator and classifier, on the test crops and on one ``time_size``^2 frame
    (DMC-Net Table 1's setting). ``shards``: ``mv`` and ``flow``."""
    device = torch.device(device)
    model, ck = load_model(model_path, device)
    method = get_method(ck["method"])
    if method.name != "dmc":
        raise ValueError(f"{model_path} is a {ck['method']} model, not DMC-Net")
    data = ShardClips.from_config(shards, "mv+residual+flow", clips, pixel_views(checkpoint_recipe(ck, clips)),
                                  mode="test", split=split, **method_clips(method, int(ck.get("gop", 12))))
    scales = scales_of(data)
    sums = {k: 0.0 for k in ("dmc_tvl1", "mv_tvl1", "zero_tvl1", "dmc_true", "mv_true", "tvl1_true", "zero_true")}
    n = n_true = 0
    gt = h5py.File(true_flow, "r") if true_flow else None
    try:
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, worker_init_fn=worker_init)
        with torch.inference_mode():
            for batch in loader:
                x = network_input(method, batch, scales).to(device)
                cue = model.generator(x).float().cpu()
                mv, target = x[:, :2].float().cpu(), dmc_target(batch, scales)
                sums["dmc_tvl1"] += float(epe(cue, target).sum())
                sums["mv_tvl1"] += float(epe(mv, target).sum())
                sums["zero_tvl1"] += float(epe(torch.zeros_like(target), target).sum())
                n += len(x)
                truth = true_flow_crops(gt, data, batch, 0, data.crop) if gt is not None else None
                if truth is not None:
                    truth = -truth                                 # the orientation of the vectors
                    sums["dmc_true"] += float(epe(cue, truth).sum())
                    sums["mv_true"] += float(epe(mv, truth).sum())
                    sums["tvl1_true"] += float(epe(target, truth).sum())
                    sums["zero_true"] += float(epe(torch.zeros_like(truth), truth).sum())
                    n_true += len(x)
    finally:
        if gt is not None:
            gt.close()
    out = {"frames": n, **{f"epe_{k}": sums[k] / n for k in ("dmc_tvl1", "mv_tvl1", "zero_tvl1")}}
    if n_true:
        out.update({"true_flow_frames": n_true,
                    **{f"epe_{k}": sums[k] / n_true for k in ("dmc_true", "mv_true", "tvl1_true", "zero_true")}})
    x = torch.randn(batch_size, 5, data.crop, data.crop, device=device)
    big = torch.randn(1, 5, time_size, time_size, device=device)
    out["seconds_per_frame"] = {
        "generator": _timed(model.generator, x, device), "generator_classifier": _timed(model, x, device),
        f"generator_{time_size}": _timed(model.generator, big, device),
        f"generator_classifier_{time_size}": _timed(model, big, device), "crop": data.crop}
    return out


def motionnet_motion(model_path: str | Path, shards: Mapping[str, Sequence[Path]], clips: ClipsConfig,
                     true_flow: str | Path | None = None, device: str | torch.device = "cpu", batch_size: int = 8,
                     split: str = "test") -> dict:
    """The stacked temporal stream's MotionNet on the ``split``'s test clips: EPE of its finest flow
    (upsampled to the clip) against TV-L1 flow and of zero flow, the same against the true flow when given,
    and MotionNet's seconds per frame. ``shards``: ``rgb`` and ``flow``."""
    device = torch.device(device)
    model, ck = load_model(model_path, device)
    if not hasattr(model, "motionnet"):
        raise ValueError(f"{model_path} is a {ck['method']} model, not a stacked temporal stream")
    data = ShardClips.from_config(shards, "rgb+flow", clips, pixel_views(checkpoint_recipe(ck, clips)),
                                  mode="test", split=split)
    scales = scales_of(data)
    sums = {k: 0.0 for k in ("motionnet_tvl1", "zero_tvl1", "motionnet_true", "tvl1_true", "zero_true")}
    n = n_true = 0
    gt = h5py.File(true_flow, "r") if true_flow else None
    try:
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, worker_init_fn=worker_init)
        with torch.inference_mode():
            for batch in loader:
                flow = model.flow(batch["rgb"].to(device))[2].float().cpu()        # (N, 2, T-1, H, W) pixels
                k = flow.shape[2]
                tvl1 = batch["flow"][:, :, :k] * scales["flow"]
                as_pairs = lambda a: a.transpose(1, 2).flatten(0, 1)              # noqa: E731  (N (T-1), 2, H, W)
                mn, tv = as_pairs(flow), as_pairs(tvl1)
                sums["motionnet_tvl1"] += float(epe(mn, tv).sum())
                sums["zero_tvl1"] += float(epe(torch.zeros_like(tv), tv).sum())
                n += len(mn)
                if gt is not None:
                    truths = [true_flow_crops(gt, data, batch, j, data.crop) for j in range(k)]
                    if all(t is not None for t in truths):
                        truth = as_pairs(torch.stack(truths, dim=2))
                        sums["motionnet_true"] += float(epe(mn, truth).sum())
                        sums["tvl1_true"] += float(epe(tv, truth).sum())
                        sums["zero_true"] += float(epe(torch.zeros_like(truth), truth).sum())
                        n_true += len(mn)
    finally:
        if gt is not None:
            gt.close()
    out = {"flows": n, **{f"epe_{k}": sums[k] / n for k in ("motionnet_tvl1", "zero_tvl1")}}
    if n_true:
        out.update({"true_flow_flows": n_true,
                    **{f"epe_{k}": sums[k] / n_true for k in ("motionnet_true", "tvl1_true", "zero_true")}})
    x = torch.randn(batch_size, 3, data.length, data.crop, data.crop, device=device)
    per_clip = _timed(lambda v: model.flow(v), x, device)
    out["seconds_per_frame"] = {"motionnet": per_clip / max(data.length - 1, 1),
                                "motionnet_temporal": _timed(model, x, device) / max(data.length - 1, 1),
                                "crop": data.crop, "frames": data.length}
    return out


__all__ = ["epe", "dmc_motion", "motionnet_motion", "true_flow_crops"]
