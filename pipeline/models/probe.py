"""D3D's motion probe: decoders that read optical flow off the frozen features of one layer of a 3D CNN.

J. C. Stroud, D. A. Ross, C. Sun, J. Deng, R. Sukthankar, "D3D: Distilled 3D Networks for Video Action
Recognition", WACV 2020, §3.1 (Fig. 2-3), §3.2, §5.2 (Table 1, Fig. 4). Features of a hidden layer are
passed through a decoder trained to predict TV-L1 flow in the Im2Flow form ``(mag, sin θ, cos θ)``; its
endpoint error measures how much motion the layer represents. None of the decoders has a temporal filter, a
cost volume or any other way of combining time steps, so whatever motion they recover was in the features.

The decoders (notation ``C x (T x H x W)``: output channels and kernel size, §3.1), on features
(N, C_in, T', H', W') float32 -> (N, 3, T', H', W') float32, the same T', H', W' (every 1x3x3 conv pads 1 in H
and W, none in T):

=========  ==================================================================================================
Simple     ``3 x (1x1x1)``: one linear map per position
Spatial    ``C x (1x3x3)``, ``C x (1x3x3)`` with C = C_in, then ``3 x (1x1x1)``
PWC        six ``C_L x (1x3x3)`` convs, C_L = 128, 128, 96, 64, 32, 3: PWC-Net's optical-flow estimator
           (Sun et al. 2018) without its cost volume and warping layers
=========  ==================================================================================================

What the paper leaves open, and the reading taken here:

* Activations: PWC-Net follows every conv of its estimator but the last with a leaky ReLU of slope 0.1; the
  PWC decoder does the same, and so does the Spatial decoder between its convs (the paper names none; a
  stack of purely linear convs would collapse to one 5x5 conv). No activation after the last conv of any
  decoder: the magnitude and the two angle channels are raw regression outputs.
* PWC-Net's estimator concatenates each conv's input to its output (DenseNet connections); D3D describes six
  plain convs, which is what is built.
* Every conv has a bias (no normalisation follows) and PyTorch's default initialisation.
* ``width_scale`` (default 1, the paper's channels) multiplies the hidden widths of Spatial and PWC for tiny
  tests; the output layer always has 3 channels.

:func:`layer_features` captures the activations of the chosen layer of a frozen backbone with forward hooks
on the modules the network's ``PROBE_LAYERS`` names (:class:`~pipeline.models.base.Classifier`): for the
ResNets of :mod:`.resnet3d` and :mod:`.resnet18_3d`, ``stem`` is the output of the stem's max pool
(``conv1``, ``bn1``, ``act``, ``maxpool``), ``layer1`` .. ``layer4`` the outputs of the residual stages (for a
3D ResNet at 16x112x112, width 64: stem 64 x 8 x 56 x 56 ... layer4 512 x 1 x 4 x 4); for S3D-G / S3D
(:mod:`.s3dg`) MaxPool_2a, MaxPool_3a (D3D's "3A"), Mixed_3c, Mixed_4f and Mixed_5c. The flow targets, the loss and the probe's training live in :mod:`pipeline.train.probe`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

import torch
from torch import nn

#: the decoder kinds of D3D §3.1, Fig. 3
KINDS = ("simple", "spatial", "pwc")
#: the layers a probe may read, input side first; ``stem`` is the output of the stem's max pool
LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4")
#: the module whose output each layer name means, for a network without ``PROBE_LAYERS`` (the ResNets')
_MODULES = {"stem": "maxpool", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3", "layer4": "layer4"}


def probe_modules(model: nn.Module) -> dict[str, str]:
    """Probe layer name -> module path in ``model``: its ``PROBE_LAYERS`` (every name of :data:`LAYERS`),
    else the ResNets' (stem max pool, ``layer1`` .. ``layer4``)."""
    return dict(getattr(model, "PROBE_LAYERS", _MODULES))


def _submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        module = model.get_submodule(path)
    except AttributeError:
        return None
    return module if isinstance(module, nn.Module) else None


@dataclass(frozen=True)
class ProbeConfig:
    """The hyper-parameters of a flow decoder (D3D §3.1)."""

    kind: str = "pwc"               # "simple" | "spatial" | "pwc" (D3D Fig. 3; PWC is the best, Table 1)
    in_channels: int = 64           # channels of the probed feature map (the Spatial decoder's C)
    pwc_channels: tuple[int, ...] = (128, 128, 96, 64, 32, 3)  # C_L of the six PWC convs (D3D §3.1)
    negative_slope: float = 0.1     # leaky ReLU between convs (PWC-Net's; used by Spatial too)
    width_scale: float = 1.0        # multiplies the hidden widths (Spatial's C, PWC's C_1..C_5) for tiny
                                    # tests; 1 = the paper's; the output stays 3 channels

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown probe decoder {self.kind!r}: allowed are {', '.join(KINDS)}")
        c = self.in_channels
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ValueError(f"in_channels must be a positive int, got {c!r}")
        chans = tuple(int(k) for k in self.pwc_channels)
        if len(chans) < 1 or min(chans) < 1 or chans[-1] != 3:
            raise ValueError(f"pwc_channels must be positive and end with the 3 output channels, got "
                             f"{self.pwc_channels!r}")
        object.__setattr__(self, "pwc_channels", chans)
        if not float(self.width_scale) > 0:
            raise ValueError(f"width_scale must be positive, got {self.width_scale!r}")
        if float(self.negative_slope) < 0:
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope!r}")

    def scaled(self, channels: int) -> int:
        """A hidden width times ``width_scale``, rounded, at least 1."""
        return max(1, int(round(channels * float(self.width_scale))))

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels of each conv, in order (the last is 3): Simple ``(3,)``, Spatial ``(C, C, 3)``,
        PWC ``(128, 128, 96, 64, 32, 3)`` at ``width_scale`` 1."""
        if self.kind == "simple":
            return (3,)
        if self.kind == "spatial":
            c = self.scaled(self.in_channels)
            return (c, c, 3)
        return tuple(self.scaled(c) for c in self.pwc_channels[:-1]) + (3,)

    @property
    def kernels(self) -> tuple[tuple[int, int, int], ...]:
        """The (T, H, W) kernel of each conv: 1x1x1 for Simple and Spatial's last, 1x3x3 otherwise."""
        if self.kind == "simple":
            return ((1, 1, 1),)
        if self.kind == "spatial":
            return ((1, 3, 3), (1, 3, 3), (1, 1, 1))
        return ((1, 3, 3),) * len(self.pwc_channels)


def spatial_conv(cin: int, cout: int, kernel: tuple[int, int, int]) -> nn.Conv3d:
    """A conv with no temporal extent: ``kernel`` (1, k, k), padding (0, k // 2, k // 2), with bias, so
    (N, cin, T, H, W) -> (N, cout, T, H, W)."""
    if kernel[0] != 1:
        raise ValueError(f"probe decoders have no temporal filters, got kernel {kernel}")
    return nn.Conv3d(cin, cout, kernel, padding=(0, kernel[1] // 2, kernel[2] // 2), bias=True)


class FlowDecoder(nn.Module):
    """One of D3D's decoders: features (N, in_channels, T', H', W') float32 -> (N, 3, T', H', W') float32,
    the flow in the ``(mag, sin θ, cos θ)`` form at the feature map's resolution (raw outputs: nothing
    bounds the magnitude or normalises the angle channels).

    ``self.convs`` holds the convs in order; a leaky ReLU (``config.negative_slope``) follows each but the
    last.
    """

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__()
        self.config = config
        cin = config.in_channels
        self.convs = nn.ModuleList()
        for cout, kernel in zip(config.widths, config.kernels):
            self.convs.append(spatial_conv(cin, cout, kernel))
            cin = cout
        self.act = nn.LeakyReLU(config.negative_slope)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 5 or features.shape[1] != self.config.in_channels:
            raise ValueError(f"the {self.config.kind} decoder takes (N, {self.config.in_channels}, T, H, W) "
                             f"features, got {tuple(features.shape)}")
        x = features
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < last:
                x = self.act(x)
        return x


def build_probe(kind: str, in_channels: int, **overrides: Any) -> FlowDecoder:
    """A fresh decoder ``kind`` (``"simple"``, ``"spatial"`` or ``"pwc"``) on ``in_channels`` feature
    channels; ``overrides``: other :class:`ProbeConfig` fields (``width_scale=0.25``, ...). Initialised by
    PyTorch's defaults (deterministic given ``torch.manual_seed``). ValueError for an unknown kind or
    field."""
    allowed = set(ProbeConfig.__dataclass_fields__) - {"kind", "in_channels"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"ProbeConfig has no field {', '.join(map(repr, unknown))}: allowed are "
                         f"{', '.join(sorted(allowed))}")
    return FlowDecoder(replace(ProbeConfig(), kind=kind, in_channels=in_channels, **overrides))


def check_layers(layers: str | Iterable[str]) -> tuple[str, ...]:
    """``"layer2"`` or a sequence of layer names -> a tuple of names of :data:`LAYERS` (duplicates dropped,
    order kept); a ValueError naming the allowed layers otherwise."""
    names = (layers,) if isinstance(layers, str) else tuple(layers)
    bad = [n for n in names if n not in LAYERS]
    if bad or not names:
        raise ValueError(f"unknown probe layer(s) {bad or names!r}: allowed are {', '.join(LAYERS)}")
    return tuple(dict.fromkeys(names))


class _Captured(Exception):
    """Raised by the hook of the deepest requested layer: the rest of the network need not run."""


def layer_features(model: nn.Module, x: torch.Tensor, layers: str | Iterable[str]) -> dict[str, torch.Tensor]:
    """The activations of ``layers`` (names of :data:`LAYERS`) of a frozen 3D network for clips ``x``.

    ``model``: a 3D network of :mod:`pipeline.models` with ``forward_features`` and the modules its
    ``PROBE_LAYERS`` names (ResNets: stem ``conv1``/``bn1``/``act``/``maxpool``, stages ``layer1`` ..
    ``layer4``; S3D-G: Inception endpoints in ``features``); ``x``: (N, C, T, H, W) float on the model's
    device. Returns ``{name: (N, C', T', H', W') float}`` detached copies, captured with forward hooks on
    those modules while ``forward_features`` runs under ``torch.no_grad()`` in eval mode (batch
    norms use their running statistics); the run stops after the deepest requested layer. Every module's
    ``training`` flag is restored afterwards and no parameter or buffer changes. ValueError for an unknown
    layer (naming the allowed ones) or a model without those modules or not taking 5-D clips.
    """
    names = check_layers(layers)
    if getattr(model, "input_dims", 3) != 3:
        raise ValueError(f"the flow probe reads 3D networks on (N, C, T, H, W) clips; "
                         f"{type(model).__name__} takes {model.input_dims}-D inputs")
    if x.ndim != 5:
        raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(x.shape)}")
    paths = probe_modules(model)
    modules = {n: _submodule(model, paths[n]) if n in paths else None for n in names}
    missing = [paths.get(n, n) for n in names if modules[n] is None]
    if missing or not hasattr(model, "forward_features"):
        raise ValueError(f"{type(model).__name__} lacks {missing or 'forward_features'}: the probe needs a "
                         f"network with a stem max pool and stages layer1 .. layer4, or PROBE_LAYERS naming "
                         f"its modules for {', '.join(LAYERS)}")
    deepest = max(names, key=LAYERS.index)
    out: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            out[name] = output.detach().clone()    # a copy: later in-place ops cannot touch it
            if name == deepest:
                raise _Captured
        return hook

    modes = [(m, m.training) for m in model.modules()]
    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
    try:
        model.eval()
        with torch.no_grad():
            try:
                model.forward_features(x)
            except _Captured:
                pass
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    return {n: out[n] for n in names}


def feature_channels(model: nn.Module, layer: str) -> int:
    """The channel count of ``layer`` (a name of :data:`LAYERS`) of a 3D network: from one forward of a
    (1, C, 8, 32, 32) zero clip on the model's device and dtype (C = ``conv1.in_channels``), stopping at
    that layer (a few milli-seconds for a 3D ResNet-18 on a CPU)."""
    check_layers(layer)
    conv1 = getattr(model, "conv1", None)
    cin = conv1.in_channels if isinstance(conv1, nn.Conv3d) else int(model.config.in_channels)
    p = next(model.parameters())
    x = torch.zeros(1, cin, 8, 32, 32, device=p.device, dtype=p.dtype)
    return int(layer_features(model, x, layer)[layer].shape[1])


__all__ = ["KINDS", "LAYERS", "FlowDecoder", "ProbeConfig", "build_probe", "check_layers", "feature_channels",
           "layer_features", "probe_modules", "spatial_conv"]
