"""Parameters and multiply-accumulates (MACs) of a model, counted by forward hooks.

MACs are those of the convolutions and linear layers, per sample (for batch size 1):

* ``Conv2d``/``Conv3d``: output elements x (in_channels / groups) x kernel volume;
* ``Linear``: in_features x out_features (x any extra leading dims).

Bias additions, batch norm, activations, pooling and the shortcut sums are left out (the convention of
He et al. 2016 and of the papers' GFLOPs figures, which are multiply-adds). A model built on the ``meta``
device is counted without computing anything, which :func:`describe` uses, so full-size models are
summarised instantly.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from . import ARCHS, build, input_dims_of


def conv_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one Conv2d/Conv3d call per sample: output elements x in_channels/groups x kernel volume."""
    per_sample = output.numel() // output.shape[0]
    return per_sample * (module.in_channels // module.groups) * math.prod(module.kernel_size)


def linear_macs(module: nn.Linear, output: torch.Tensor) -> int:
    """MACs of one Linear call per sample: in_features x output elements per sample."""
    return output.numel() // output.shape[0] * module.in_features


def summarize(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """Count a model's parameters and its MACs on one input of ``input_shape`` (N, C, [T,] H, W).

    The model runs once in eval mode under ``no_grad`` on zeros of that shape, on the device of its
    parameters (``meta`` computes nothing); its training mode is restored. Returns ``parameters`` (int, all
    of them), ``trainable_parameters``, ``macs`` (int, per sample: ``conv_macs + linear_macs``),
    ``conv_macs``, ``linear_macs``, ``input_shape`` and ``output_shape`` (lists).
    """
    counts = {"conv": 0, "linear": 0}

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            counts["linear"] += linear_macs(module, output)
        else:
            counts["conv"] += conv_macs(module, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(tuple(input_shape), device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "macs": counts["conv"] + counts["linear"],
        "conv_macs": counts["conv"],
        "linear_macs": counts["linear"],
        "input_shape": list(input_shape),
        "output_shape": list(out.shape),
    }


def input_shape_of(model: nn.Module, in_channels: int, frames: int, size: int) -> tuple[int, ...]:
    """The batch-1 input of a model: (1, C, T, S, S) when ``model.input_dims`` is 3, (1, C, S, S) when 2."""
    if getattr(model, "input_dims", 3) == 2:
        return (1, in_channels, size, size)
    return (1, in_channels, frames, size, size)


def default_size(arch: str) -> int:
    """The standard crop of an architecture: its model class's ``default_size`` when it has one (S3D-G: 224,
    Xie et al.'s and torchvision's crop), else 224 for 2D models and 112 for 3D ones (ValueError: unknown)."""
    own = getattr(ARCHS[arch][1], "default_size", None) if arch in ARCHS else None
    if own is not None:
        return int(own)
    return 224 if input_dims_of(arch) == 2 else 112


def describe(arch: str, in_channels: int | None = None, classes: int = 400, frames: int = 16,
             size: int | None = None, **overrides: Any) -> dict[str, Any]:
    """:func:`summarize` of ``build(arch, in_channels=..., num_classes=classes, **overrides)`` (``in_channels``
    None: the architecture's own, 3, or 5 for DMC-Net) on its batch-1
    input ((1, C, T, S, S) for 3D, (1, C, S, S) for 2D; ``size`` None = :func:`default_size`), built on
    the ``meta`` device (no memory, no compute). Adds ``arch`` and ``feature_dim`` to the summary."""
    if size is None:
        size = default_size(arch)
    with torch.device("meta"):
        model = build(arch, in_channels=in_channels, num_classes=classes, **overrides)
    out = summarize(model, input_shape_of(model, model.config.in_channels, frames, size))
    return {"arch": arch, **out, "feature_dim": model.feature_dim}
