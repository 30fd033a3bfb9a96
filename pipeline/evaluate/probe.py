"""D3D's motion probe run on trained networks: how much TV-L1 flow each layer's frozen features encode.

J. C. Stroud et al., "D3D: Distilled 3D Networks for Video Action Recognition", WACV 2020, §3.1-3.2, Fig. 4.
For every trained RGB network (a ``model.pt`` of the rgb, mers, mars or d3d methods) and every requested layer
(:data:`pipeline.models.probe.LAYERS`), a fresh decoder is trained on the frozen features of that layer to
predict the flow of the train split's clips (:func:`pipeline.train.probe.fit_probe`), then scored on the test
split's clips (:func:`pipeline.train.probe.evaluate_probe`): its mean end-point error (EPE) in pixels of the
input clip, and the EPE of predicting no motion on the same clips (D3D Table 1's "All zeros"). A layer whose
EPE is well below the zero baseline represents motion.

The data, read straight from the ``decode`` and ``extract_flow`` shards with the run's ``clips`` settings
(clip length, crop, means; no method overrides, as the RGB methods have none):

* training: train-split clips in train mode (a random clip of each video, random crop, random mirror when
  ``clips.flip``; a mirrored clip's flow x is negated); pass ``k`` over the videos draws its clips and its
  order from ``(seed, k)``, so every pass sees new clips and every network and layer sees the same sequence
  of batches;
* scoring: test-split clips in test mode (centre crop, every non-overlapping clip of every video, one
  pass), the same clips for every network and layer.

Flow values are turned back into pixels with the quantization bound recorded on the flow shard's streams
(``ShardClips.pixels_per_unit("flow")`` = 2 bound / 255) and the ``clips.flow_mean`` the dataset subtracts
(:func:`pipeline.train.probe.flow_pixels_from_clip`). Batches are read as they are used (a DataLoader per
pass); no clip, feature or flow is kept beyond its batch.

Everything is deterministic given ``seed`` on one device with a fixed thread count (decoder initialisation,
clip sampling and order). The backbone is never changed (``fit_probe`` checks it bit for bit).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..core.config import ClipsConfig
from ..core.config import effective_recipe, recipe_defaults
from ..data.dataset import ShardClips, pixel_views, worker_init
from ..models.probe import KINDS, LAYERS, check_layers
from ..train.probe import Batch, clip_batches, evaluate_probe, fit_probe
from ..train.trainer import load_model, resolve_device

#: the modalities the probe reads: the network's input and the flow it predicts
MODALITIES = "rgb+flow"
#: the checkpoint input the probe accepts (3D networks on RGB clips)
PROBED_INPUT = "rgb"


def load_probed_network(name: str, path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained network the probe can read, in eval mode, and its checkpoint's entries: a 3D network whose
    checkpoint ``input`` is ``"rgb"``. ValueError naming ``name`` and ``path`` otherwise (a flow stream, a
    2D network, a compressed-domain stream); :class:`~pipeline.core.errors.CheckpointError` for an
    unreadable checkpoint."""
    model, data = load_model(path, device)
    given = data.get("input")
    dims = getattr(model, "input_dims", 3)
    if given != PROBED_INPUT or dims != 3:
        what = f"input {given!r}" if given != PROBED_INPUT else f"a {dims}-D network"
        raise ValueError(f"network {name!r} ({path}, method {data.get('method')!r}) has {what}: the motion "
                         f"probe reads 3D networks trained on {PROBED_INPUT!r} clips (methods rgb, mers, mars, "
                         f"d3d)")
    return model, data


def flow_scale(data: ShardClips, flow_bound: float | None = None) -> tuple[float, float]:
    """``(bound, mean)`` for :func:`pipeline.train.probe.clip_batches` on ``data``: the quantization bound
    (pixels) recorded on the flow shard (``pixels_per_unit("flow") * 255 / 2``) and the flow mean the
    dataset subtracts. ``flow_bound``: the bound to use for shards that record none; ValueError when the
    shards record none and no ``flow_bound`` is given, or when both are there and differ."""
    mean = float(data.means["flow"])
    try:
        recorded = data.pixels_per_unit("flow") * 255.0 / 2.0
    except ValueError:
        recorded = None
    if recorded is None:
        if flow_bound is None:
            raise ValueError(f"the flow shards ({', '.join(map(str, data.paths['flow']))}) record no "
                             f"quantization bound (a 'linear_clip' stream attribute): pass flow_bound, the "
                             f"extract_flow bound they were written with")
        bound = float(flow_bound)
    else:
        if flow_bound is not None and not math.isclose(float(flow_bound), recorded, rel_tol=1e-6):
            raise ValueError(f"flow_bound {flow_bound} differs from the bound {recorded:g} recorded on the flow "
                             f"shards ({', '.join(map(str, data.paths['flow']))})")
        bound = recorded
    if not bound > 0:
        raise ValueError(f"flow bound must be positive, got {bound}")
    return bound, mean


def pass_seed(seed: int, k: int) -> int:
    """The seed of training pass ``k`` (clip sampling and order), a 63-bit int from ``(seed, k)``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(k)]).generate_state(2, np.uint64)[0] >> 1)


def probe_recipe(clips: ClipsConfig):
    """The probe's clips: MARS's length and size (with the non-null ``clips`` overrides) in ``window`` views,
    so the flow it decodes is in the frame's pixels (:func:`pipeline.data.dataset.pixel_views`)."""
    return pixel_views(effective_recipe(recipe_defaults()["mars"], clips=clips))


class TrainPasses:
    """Training batches for :func:`~pipeline.train.probe.fit_probe`: a callable returning a fresh pass over
    the train split's clips each time it is called, ``(rgb, flow in pixels)`` pairs of ``batch_size`` clips
    (the last, shorter one dropped when there is a full one). Pass ``k`` builds a train-mode dataset seeded
    with :func:`pass_seed` ``(seed, k)`` and shuffles with a generator of the same seed; the dataset is
    closed when the pass ends or is abandoned. A new instance starts again at pass 0."""

    def __init__(self, shards: Mapping[str, Sequence[Path]], clips: ClipsConfig, batch_size: int, seed: int,
                 bound: float, mean: float, workers: int = 0) -> None:
        self.shards, self.clips, self.batch_size, self.seed = shards, clips, int(batch_size), int(seed)
        self.bound, self.mean, self.workers = float(bound), float(mean), int(workers)
        self.passes = 0

    def __call__(self) -> Iterator[Batch]:
        k, self.passes = self.passes, self.passes + 1
        return self._pass(pass_seed(self.seed, k))

    def _pass(self, seed: int) -> Iterator[Batch]:
        data = ShardClips.from_config(self.shards, MODALITIES, self.clips, probe_recipe(self.clips), mode="train",
                                      split="train", seed=seed)
        try:
            if not data.videos:
                raise ValueError("the shards hold no video of the train split")
            loader = DataLoader(data, batch_size=self.batch_size, shuffle=True,
                                generator=torch.Generator().manual_seed(seed),
                                drop_last=len(data) >= self.batch_size, num_workers=self.workers,
                                worker_init_fn=worker_init)
            yield from clip_batches(loader, self.bound, self.mean)
        finally:
            data.close()


def _datasets(shards: Mapping[str, Sequence[Path]], clips: ClipsConfig,
              seed: int) -> tuple[ShardClips, ShardClips]:
    train = ShardClips.from_config(shards, MODALITIES, clips, probe_recipe(clips), mode="train", split="train",
                                   seed=seed)
    test = ShardClips.from_config(shards, MODALITIES, clips, probe_recipe(clips), mode="test", split="test")
    for split, data in (("train", train), ("test", test)):
        if not data.videos:
            train.close()
            test.close()
            raise ValueError(f"the motion probe needs rgb+flow clips of the {split} split: the shards "
                             f"({', '.join(str(p) for ps in shards.values() for p in ps)}) hold none")
    return train, test


def probe_networks(models: Mapping[str, Path], shards: Mapping[str, Sequence[Path]], clips: ClipsConfig,
                   layers: Sequence[str], kind: str = "pwc", steps: int = 200, lr: float = 1e-3,
                   batch_size: int = 8, device: str = "cpu", seed: int = 0, flow_bound: float | None = None,
                   width_scale: float = 1.0, workers: int = 0, threads: int | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """D3D's motion probe (§3.1, Fig. 4) on trained networks: per network and layer, a ``kind`` decoder fit
    on the frozen features of the train split's clips and its end-point error on the test split's clips.

    ``models``: ``{name: path of a model.pt}``, each a 3D network on RGB clips (checkpoint input ``"rgb"``;
    anything else is a ValueError naming it, raised before any probe is trained). ``shards``: ``{"rgb":
    [paths], "flow": [paths]}`` as :class:`pipeline.data.ShardClips` takes them (the ``decode`` and
    ``extract_flow`` shards of one dataset); ``clips``: the run's clips section (length, crop, means, flip).
    ``layers``: names of :data:`pipeline.models.probe.LAYERS` (duplicates dropped), probed and reported
    input side first. ``steps``
    Adam steps of ``batch_size`` clips at learning rate ``lr`` per decoder; ``seed``: decoder
    initialisation and training clips (the same for every network and layer). ``device``: ``"cpu"``,
    ``"cuda"``, ``"auto"``. ``flow_bound``: the flow quantization bound for shards that do not record it
    (:func:`flow_scale`). ``width_scale``: multiplies the decoder's hidden widths (1: D3D's). ``workers``:
    DataLoader workers. ``threads``: torch's intra-op threads for the run (restored afterwards; None: leave
    them). On a small shared CPU use 1: these tiny convolutions gain little from a second thread and lose
    ten times and more when another process holds a core. ``log``: called with one line per fitted probe.

    Returns a JSON-ready dict::

        {"kind", "steps", "lr", "batch_size", "seed", "width_scale", "layers": [...],
         "clips": {"length", "crop", "train_videos", "test_clips"}, "flow_bound",
         "networks": {name: {layer: {"epe": float, "zero_epe": float}}}, "seconds": float}

    ``epe`` and ``zero_epe`` are mean end-point errors in pixels of the input clip on the layer's feature
    grid (the flow averaged onto it); ``zero_epe`` is the same for every network with the same layer
    geometry (the same test clips); ``seconds`` the wall time of the whole run.
    """
    start = time.perf_counter()
    names = tuple(sorted(check_layers(layers), key=LAYERS.index))     # input side first
    if kind not in KINDS:
        raise ValueError(f"unknown probe decoder {kind!r}: allowed are {', '.join(KINDS)}")
    if int(steps) < 1 or int(batch_size) < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    if not models:
        raise ValueError("probe_networks needs at least one network")
    dev = resolve_device(device)
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    for name, path in models.items():                    # refuse every unsuitable network before any work
        model, _ = load_probed_network(name, path, "cpu")
        del model
    train, test = _datasets(shards, clips, seed)
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        bound, mean = flow_scale(train, flow_bound)
        test_bound, _ = flow_scale(test, flow_bound)
        if not math.isclose(bound, test_bound, rel_tol=1e-6):
            raise ValueError(f"the flow shards record different bounds ({bound:g}, {test_bound:g})")
        loader = DataLoader(test, batch_size=int(batch_size), shuffle=False, num_workers=int(workers),
                            worker_init_fn=worker_init)

        def test_batches() -> Iterator[Batch]:
            return clip_batches(loader, bound, mean)

        networks: dict[str, dict[str, dict[str, float]]] = {}
        for name, path in models.items():
            model, _ = load_probed_network(name, path, dev)
            scores: dict[str, dict[str, float]] = {}
            for layer in names:
                t = time.perf_counter()
                batches = TrainPasses(shards, clips, int(batch_size), seed, bound, mean, int(workers))
                decoder = fit_probe(model, layer, batches, kind=kind, steps=int(steps), lr=float(lr),
                                    device=dev, seed=int(seed), width_scale=float(width_scale))
                score = evaluate_probe(model, layer, decoder, test_batches, device=dev)
                scores[layer] = {"epe": float(score.epe), "zero_epe": float(score.zero_flow_epe)}
                del decoder
                if log is not None:
                    log(f"probe {name} {layer}: EPE {score.epe:.3f} px, zero flow {score.zero_flow_epe:.3f} px "
                        f"({time.perf_counter() - t:.1f} s)")
            networks[name] = scores
            del model
        test_clips = len(test)
        train_videos = len(train.videos)
    finally:
        torch.set_num_threads(saved_threads)
        train.close()
        test.close()
    return {"kind": kind, "steps": int(steps), "lr": float(lr), "batch_size": int(batch_size), "seed": int(seed),
            "width_scale": float(width_scale), "layers": list(names),
            "clips": {"length": int(train.length), "crop": int(train.crop), "train_videos": train_videos,
                      "test_clips": test_clips},
            "flow_bound": float(bound), "networks": networks, "seconds": time.perf_counter() - start}


__all__ = ["MODALITIES", "PROBED_INPUT", "TrainPasses", "flow_scale", "load_probed_network", "pass_seed",
           "probe_networks"]
