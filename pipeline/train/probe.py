"""Training and scoring D3D's motion probe: a flow decoder on the frozen features of one layer of a 3D CNN.

J. C. Stroud et al., "D3D: Distilled 3D Networks for Video Action Recognition", WACV 2020, §3.1-3.2, §5.2
(Table 1, Fig. 4). The decoders and the feature capture are :mod:`pipeline.models.probe`; this module holds
the targets, the loss, the endpoint error and the training loop, as small functions of tensors.

Shapes and units: ``flow`` (N, 2, T, H, W) float32 TV-L1 flow in pixels of the clip's frames, channels
(x, y) (x to the right, y downwards, as images index them); a *target* or a decoder's *prediction*
(N, 3, T', H', W') float32 in the Im2Flow form ``(mag, sin θ, cos θ)`` (D3D §3.1), ``mag`` in pixels and
``θ = atan2(y, x)``; (T', H', W') is the size of the probed feature map.

* :func:`flow_to_target` / :func:`target_to_flow`: flow <-> the three-channel form;
* :func:`resize_flow` / :func:`resize_target`: the flow of a clip at the input resolution averaged onto the
  feature map's grid (vectors averaged, still in input pixels, so the endpoint error is in input pixels);
* :func:`probe_loss`: ``mean[(m̂ - m)^2 + m ((ŝ - s)^2 + (ĉ - c)^2)]`` (squared error, angle channels
  weighted by the target magnitude, D3D §3.1);
* :func:`end_point_error`, :func:`zero_flow_epe`: mean endpoint error in pixels, and that of the "All zeros"
  baseline of D3D Table 1;
* :func:`fit_probe`, :func:`evaluate_probe`: Adam on the decoder only, the backbone frozen (D3D §3.2's
  first setting; the "ft" setting of Fig. 4, fine-tuning end to end, is not provided here);
* :func:`flow_pixels_from_clip`, :func:`clip_batches`: the data pipeline's flow clips back to pixels.

How the package's clips align (``pipeline.data.dataset.ShardClips``): a sample of ``length`` T holds RGB
frames ``i .. i+T-1`` and the flows ``i .. i+T-1``, flow ``j`` being the motion from frame ``j`` to frame
``j+1``; so flow ``t`` of a clip starts at RGB frame ``t`` and the last one ends one frame after the clip.
Batches given to the probe may hold T such flows or only the T-1 between the clip's own frames; either way
flow ``t`` is taken to start at frame ``t`` (see :func:`resize_flow`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import ClipsConfig, ExtractFlowConfig
from ..models.probe import FlowDecoder, build_probe, check_layers, feature_channels, layer_features

#: the flow stage's clipping bound (pixels) and the data pipeline's flow centre: the config defaults
BOUND = ExtractFlowConfig().bound
FLOW_MEAN = ClipsConfig().flow_mean
#: (rgb clip (N, C, T, H, W) float, flow (N, 2, T or T-1, H, W) float pixels)
Batch = tuple[torch.Tensor, torch.Tensor]
#: what :func:`fit_probe` and :func:`evaluate_probe` read: an iterable of batches (re-iterated when it runs
#: out: a list or a DataLoader) or a callable returning a fresh iterable of batches each time
Batches = Union[Iterable[Batch], Callable[[], Iterable[Batch]]]


class ProbeScore(NamedTuple):
    """The probe's mean endpoint error and that of predicting zero flow, both in input pixels."""

    epe: float
    zero_flow_epe: float


# -- the flow representation --------------------------------------------------------------------------------
def _check_channels(x: torch.Tensor, channels: int, what: str) -> None:
    if x.ndim < 2 or x.shape[1] != channels:
        raise ValueError(f"{what} must be (N, {channels}, ...), got shape {tuple(x.shape)}")


def flow_to_target(flow: torch.Tensor) -> torch.Tensor:
    """Flow (N, 2, ...) float pixels, channels (x, y) -> (N, 3, ...) ``(mag, sin θ, cos θ)``.

    ``mag = sqrt(x^2 + y^2)``, ``θ = atan2(y, x)``, so ``sin θ = y / mag`` and ``cos θ = x / mag``. Where
    the flow is exactly zero the angle is undefined and both ``sin θ`` and ``cos θ`` are 0 (the loss weights
    them by ``mag`` = 0 there anyway). ``flow (3, 4)`` gives ``(5, 0.8, 0.6)``.
    """
    _check_channels(flow, 2, "flow")
    flow = flow.float()
    x, y = flow[:, 0], flow[:, 1]
    mag = torch.hypot(x, y)
    moving = mag > 0
    safe = torch.where(moving, mag, torch.ones_like(mag))
    zero = torch.zeros_like(mag)
    return torch.stack([mag, torch.where(moving, y / safe, zero), torch.where(moving, x / safe, zero)], dim=1)


def target_to_flow(pred: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`flow_to_target` for predictions: (N, 3, ...) ``(m̂, ŝ, ĉ)`` -> (N, 2, ...)
    flow ``max(m̂, 0) * (ĉ, ŝ) / sqrt(ŝ^2 + ĉ^2)`` in pixels.

    A decoder's angle channels are not constrained to the unit circle, so they are normalised; where both
    are 0 the flow is 0. A negative predicted magnitude means no motion (clamped at 0) rather than motion
    in the opposite direction.
    """
    _check_channels(pred, 3, "a probe prediction")
    pred = pred.float()
    mag, s, c = pred[:, 0].clamp_min(0), pred[:, 1], pred[:, 2]
    norm = torch.hypot(s, c)
    has_angle = norm > 0
    scale = torch.where(has_angle, mag / torch.where(has_angle, norm, torch.ones_like(norm)),
                        torch.zeros_like(norm))
    return torch.stack([scale * c, scale * s], dim=1)


# -- bringing the flow to the feature map's grid ----------------------------------------------------------
def time_bins(flows: int, frames: int, steps: int) -> list[list[int]]:
    """Which flows each of ``steps`` feature time steps covers, for a clip of ``frames`` RGB frames.

    Time step ``k`` covers frames ``floor(k * frames / steps) .. floor((k + 1) * frames / steps) - 1`` (at
    least one), hence the flows starting at those frames (flow ``t`` runs from frame ``t`` to ``t + 1``):
    ``frames / steps`` flows each when it divides. Flows past the last one given (a clip with ``frames - 1``
    flows) are left out; a step left with none takes the last flow.
    """
    if flows < 1 or frames < 1 or steps < 1:
        raise ValueError(f"need at least one flow, frame and time step, got {flows}, {frames}, {steps}")
    out = []
    for k in range(steps):
        lo = k * frames // steps
        hi = max((k + 1) * frames // steps, lo + 1)
        idx = [t for t in range(lo, hi) if t < flows]
        out.append(idx or [flows - 1])
    return out


def resize_flow(flow: torch.Tensor, size: Sequence[int], frames: int | None = None) -> torch.Tensor:
    """TV-L1 flow at the input resolution averaged onto a feature map's grid: (N, 2, T, H, W) float pixels ->
    (N, 2, T', H', W') float pixels, ``size = (T', H', W')``.

    Time: each feature time step averages the flows of its frames (:func:`time_bins`; ``frames``: the RGB
    frames of the clip, default T, i.e. one flow per frame as the package's clips give). Space: area
    averaging of the vectors (``adaptive_avg_pool2d``: exact blocks when H' divides H, PyTorch's overlapping
    adaptive bins otherwise). The values stay in pixels of the input resolution (they are not divided by the
    downsampling factor), so an endpoint error on the coarse grid is in input pixels (D3D Fig. 5 shows TV-L1
    flow "downsampled to 28x28 px, the output resolution of the decoder").
    """
    _check_channels(flow, 2, "flow")
    if flow.ndim != 5 or len(size) != 3:
        raise ValueError(f"flow must be (N, 2, T, H, W) and size (T', H', W'), got {tuple(flow.shape)} and "
                         f"{tuple(size)}")
    n, _, t, h, w = flow.shape
    steps, oh, ow = (int(s) for s in size)
    bins = time_bins(t, t if frames is None else int(frames), steps)
    weights = torch.zeros(steps, t, dtype=torch.float32, device=flow.device)
    for k, idx in enumerate(bins):
        weights[k, idx] = 1.0 / len(idx)
    pooled = torch.einsum("nctp,kt->nckp", flow.float().flatten(3), weights).reshape(n, 2, steps, h, w)
    return F.adaptive_avg_pool2d(pooled.reshape(n * 2 * steps, h, w), (oh, ow)).reshape(n, 2, steps, oh, ow)


def resize_target(flow: torch.Tensor, size: Sequence[int], frames: int | None = None) -> torch.Tensor:
    """The probe's target at a feature map's grid: :func:`resize_flow` (vectors averaged, in input pixels),
    then :func:`flow_to_target`: (N, 2, T, H, W) float pixels -> (N, 3, T', H', W')."""
    return flow_to_target(resize_flow(flow, size, frames))


# -- loss and errors ----------------------------------------------------------------------------------------
def probe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """D3D §3.1's loss, a scalar: squared error in the ``(mag, sin θ, cos θ)`` form with the two angle
    channels weighted by the target magnitude ("for numerical stability"),

        mean over (N, T', H', W') of  (m̂ - m)^2 + m * ((ŝ - s)^2 + (ĉ - c)^2)

    ``pred``, ``target``: (N, 3, T', H', W') float; ``target`` carries no gradient (detached). A position
    without motion (m = 0) contributes only its magnitude error.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    _check_channels(pred, 3, "a probe prediction")
    pred, target = pred.float(), target.detach().float()
    sq = (pred - target) ** 2
    m = target[:, 0]
    return (sq[:, 0] + m * (sq[:, 1] + sq[:, 2])).mean()


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-position Euclidean distance of two (N, 2, ...) flows -> (N, ...)."""
    if a.shape != b.shape:
        raise ValueError(f"flows {tuple(a.shape)} and {tuple(b.shape)} differ")
    _check_channels(a, 2, "flow")
    d = a.float() - b.float()
    return torch.hypot(d[:, 0], d[:, 1])


def end_point_error(pred_flow: torch.Tensor, flow: torch.Tensor) -> float:
    """Mean endpoint error (pixels): the Euclidean distance between two (N, 2, ...) flows, averaged over
    every position of every clip (D3D §3.2)."""
    return float(_distance(pred_flow, flow).mean())


def zero_flow_epe(flow: torch.Tensor) -> float:
    """The endpoint error of predicting no motion ("All zeros", D3D Table 1): the mean flow magnitude of
    (N, 2, ...) flow, pixels."""
    return end_point_error(torch.zeros_like(flow), flow)


# -- the data pipeline's flow clips -------------------------------------------------------------------------
def flow_pixels_from_clip(flow_clip: torch.Tensor, bound: float = BOUND,
                          mean: float = FLOW_MEAN) -> torch.Tensor:
    """Pixels from the flow of the data pipeline: float32 ``q - mean`` as ``ShardClips`` gives it (any shape,
    e.g. (N, 2, T, S, S) channels (x, y)), or the stored uint8 ``q`` itself.

    The flow stage stores each component clipped to ``±bound`` px as ``q = floor(255 (v + bound) / (2 bound)
    + 0.5)`` (uint8, JPEG-compressed) and :mod:`pipeline.flow.quantize` inverts it at the bin centre,
    ``v = (q - 127.5) * 2 bound / 255``; the dataset hands out ``q - mean`` (mean 127.5 by default) with a
    mirrored clip's x already negated (``q -> 255 - q``). So ``v = (flow_clip + mean - 127.5) * 2 bound /
    255``: with the defaults (bound 20, mean 127.5) ``flow_clip * 40 / 255``. The recovered flow is
    quantized to 40/255 = 0.157 px steps, carries JPEG error, saturates at ±bound, and stored zero flow
    (q = 128) reads +0.078 px. ``bound`` and ``mean`` must be those of the run (the ``extract_flow`` and
    ``clips`` sections of the config). Returns float32 of the same shape.
    """
    if bound <= 0:
        raise ValueError(f"flow bound must be positive, got {bound}")
    q = flow_clip.float() if flow_clip.dtype == torch.uint8 else flow_clip.float() + float(mean)
    return (q - 127.5) * (2.0 * float(bound) / 255.0)


def clip_batches(samples: Iterable[dict[str, torch.Tensor]], bound: float = BOUND,
                 mean: float = FLOW_MEAN) -> Iterator[Batch]:
    """``(rgb, flow in pixels)`` batches from batched ``ShardClips(..., "rgb+flow")`` samples (a DataLoader):
    ``rgb`` (N, 3, T, S, S) as given, ``flow`` through :func:`flow_pixels_from_clip`. A generator: pass
    ``lambda: clip_batches(loader)`` to :func:`fit_probe` so that it can start a new pass."""
    for sample in samples:
        yield sample["rgb"], flow_pixels_from_clip(sample["flow"], bound, mean)


# -- training and scoring -----------------------------------------------------------------------------------
def _start(batches: Batches) -> Iterator[Batch]:
    source = batches() if callable(batches) and not hasattr(batches, "__iter__") else batches
    return iter(source)


def _unpack(batch: Any, device: torch.device) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError("a probe batch is (rgb clip (N, C, T, H, W), flow (N, 2, T or T-1, H, W) pixels); "
                         f"got {type(batch).__name__} (dict samples of ShardClips: wrap them in "
                         f"clip_batches)")
    rgb, flow = batch
    if rgb.ndim != 5 or flow.ndim != 5 or flow.shape[1] != 2 or rgb.shape[0] != flow.shape[0]:
        raise ValueError(f"rgb must be (N, C, T, H, W) and flow (N, 2, T, H, W), got {tuple(rgb.shape)} and "
                         f"{tuple(flow.shape)}")
    if flow.shape[2] not in (rgb.shape[2], rgb.shape[2] - 1) or flow.shape[3:] != rgb.shape[3:]:
        raise ValueError(f"a clip of {rgb.shape[2]} frames {tuple(rgb.shape[3:])} needs {rgb.shape[2]} or "
                         f"{rgb.shape[2] - 1} flows of the same size, got {tuple(flow.shape[2:])}")
    return rgb.to(device, torch.float32), flow.to(device, torch.float32)


def _model_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        return next(model.parameters()).device
    device = torch.device(device)
    model.to(device)
    return device


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    if changed:
        raise AssertionError(f"the frozen backbone changed during the probe: {changed[:5]}")


def probe_step(model: nn.Module, layer: str, decoder: FlowDecoder, rgb: torch.Tensor,
               flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward of the probe: (prediction, target, pooled flow), each (N, 3 | 3 | 2, T', H', W'), from the
    frozen features of ``layer`` for ``rgb`` (N, C, T, H, W) and its ``flow`` (N, 2, T or T-1, H, W) px."""
    features = layer_features(model, rgb, layer)[layer]
    pooled = resize_flow(flow, features.shape[2:], frames=rgb.shape[2])
    return decoder(features), flow_to_target(pooled), pooled


def fit_probe(model: nn.Module, layer: str, batches: Batches, kind: str = "pwc", steps: int = 1000,
              lr: float = 1e-3, device: str | torch.device | None = None, seed: int = 0,
              log: list[float] | None = None, **probe_overrides: Any) -> FlowDecoder:
    """Train a fresh ``kind`` decoder (:func:`pipeline.models.probe.build_probe`) on the frozen features of
    ``layer`` of ``model`` to predict the flow of ``batches`` (D3D §3.1-3.2, the fixed-backbone setting).

    ``batches``: ``(rgb clip (N, C, T, H, W) float, flow (N, 2, T or T-1, H, W) float pixels)`` pairs, flow
    ``t`` running from RGB frame ``t`` to ``t + 1`` (the package's clips give T flows, the last one ending
    one frame after the clip: see the module docstring; :func:`clip_batches` turns ``ShardClips`` samples
    into such pairs); an iterable that is iterated again when it runs out, or a callable returning a fresh
    iterable. ``steps`` Adam steps (learning rate ``lr``) on the decoder's parameters only, each on one batch
    with :func:`probe_loss` against :func:`resize_target`. The backbone runs in eval mode under
    ``no_grad`` (:func:`~pipeline.models.probe.layer_features`); its parameters and buffers are checked to be
    bit-identical afterwards (an AssertionError otherwise). ``device``: where to run (the model is moved
    there in place); None: the model's device. ``seed`` makes the decoder's initialisation reproducible
    without touching the global RNG; ``log``, when given, receives each step's loss; ``probe_overrides``:
    other :class:`~pipeline.models.probe.ProbeConfig` fields (``width_scale``, ...). Returns the trained
    decoder on ``device``, in eval mode.
    """
    if not isinstance(layer, str):
        raise ValueError(f"fit_probe trains one decoder: layer must be one layer name, got {layer!r}")
    check_layers(layer)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dev = _model_device(model, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = build_probe(kind, feature_channels(model, layer), **probe_overrides).to(dev)
    before = _snapshot(model)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    decoder.train()
    it = _start(batches)
    for step in range(steps):
        try:
            batch = next(it)
        except StopIteration:
            it = _start(batches)
            try:
                batch = next(it)
            except StopIteration:
                raise ValueError(f"batches ran out after {step} step(s) and gave nothing on a new pass: "
                                 f"pass a list, a DataLoader or a callable returning a fresh iterable"
                                 ) from None
        rgb, flow = _unpack(batch, dev)
        pred, target, _ = probe_step(model, layer, decoder, rgb, flow)
        loss = probe_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log is not None:
            log.append(float(loss.detach()))
    _check_unchanged(model, before)
    return decoder.eval()


def evaluate_probe(model: nn.Module, layer: str, decoder: FlowDecoder, batches: Batches,
                   device: str | torch.device | None = None) -> ProbeScore:
    """Endpoint errors of a trained probe over one pass of ``batches`` (as for :func:`fit_probe`): the mean
    distance, in input pixels, between :func:`target_to_flow` of the decoder's output and the flow averaged
    onto the feature grid (:func:`resize_flow`), over every position of every clip; and the same for
    predicting zero flow (D3D Table 1's "All zeros"). ``device``: as for :func:`fit_probe` (the decoder is
    moved there too). The modes of the model and the decoder are left as they were."""
    if not isinstance(layer, str):
        raise ValueError(f"evaluate_probe reads one layer: layer must be one layer name, got {layer!r}")
    check_layers(layer)
    dev = _model_device(model, device)
    decoder.to(dev)
    was_training = decoder.training
    decoder.eval()
    total = zero = 0.0
    count = 0
    try:
        with torch.no_grad():
            for batch in _start(batches):
                rgb, flow = _unpack(batch, dev)
                pred, _, pooled = probe_step(model, layer, decoder, rgb, flow)
                total += float(_distance(target_to_flow(pred), pooled).sum())
                zero += float(torch.hypot(pooled[:, 0], pooled[:, 1]).sum())
                count += pooled[:, 0].numel()
    finally:
        decoder.train(was_training)
    if count == 0:
        raise ValueError("evaluate_probe got no batches")
    return ProbeScore(total / count, zero / count)


__all__ = ["BOUND", "FLOW_MEAN", "Batch", "Batches", "ProbeScore", "clip_batches", "end_point_error",
           "evaluate_probe", "fit_probe", "flow_pixels_from_clip", "flow_to_target", "probe_loss",
           "probe_step", "resize_flow", "resize_target", "target_to_flow", "time_bins", "zero_flow_epe"]
