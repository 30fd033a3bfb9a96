"""Starting a run from pretrained weights (``train.pretrained``): any file :mod:`pipeline.models.weights`
reads (torchvision, kenshohara/3D-ResNets-PyTorch, craston/MARS, pytorch-coviar, dmc-net, a motionprep
checkpoint), converted on the fly and loaded whole, never partly.

* The classifier is replaced (fresh, seeded) when the file's class count is not the run's.
* A composite network (DMC-Net's ``classifier``, the stacked temporal stream's ``temporal``) takes weights
  of its inner network there, the rest keeping its initialisation (DMC-Net starts its classifier from an
  ImageNet or CoViAR ResNet-18; Hidden Two-Stream its temporal VGG-16 from ImageNet).
* Cross-modality initialisation (TSN, Wang et al. 2016 §3.2): when the first convolution of the weights
  takes other input channels than the run's network (RGB weights for a 2-channel flow or vector network,
  a 20-channel stacked-flow VGG-16), its kernel is averaged over the input channels and repeated over the
  run's, with ``cross_modality``; without it such weights are refused, naming the layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..core.errors import CheckpointError
from ..models import build_spec, weights as W

log = logging.getLogger(__name__)

def cross_modality_kernel(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """(C_out, C_in, *k) -> (C_out, in_channels, *k): the mean over the C_in input channels, repeated
    ``in_channels`` times (TSN's cross-modality initialisation; the response to a constant input keeps its
    scale per channel, not its sum)."""
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(weight.shape[0], in_channels, *weight.shape[2:]).clone()


#: composite architectures -> the spec key naming their inner network (and its attribute)
INNER_OF = {"dmcnet": "classifier", "hidden": "temporal"}


@dataclass
class Pretrained:
    """Converted weights: ``state`` and ``spec`` in motionprep's names (:func:`pipeline.models.weights.
    load_pretrained`), what the conversion said (``info``) and where they go in the run's network
    (``into``: '' for the whole network, else the inner network's attribute)."""

    path: str
    state: dict[str, torch.Tensor]
    spec: dict[str, Any]
    info: dict[str, Any]
    into: str = ""


def read(path: str, fmt: str = "auto") -> Pretrained:
    """The weights of ``path`` in any layout :mod:`pipeline.models.weights` reads, network detected."""
    state, spec, info = W.load_pretrained(path, format=fmt)
    return Pretrained(str(path), state, spec, info)


def network(path: str, fmt: str = "auto") -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """The network of a weights file in any layout (its own architecture and classes), loaded whole, in
    eval mode: ``(model, model_spec, info)`` (feature extraction from published weights)."""
    w = read(path, fmt)
    model = build_spec(w.spec)
    model.load_state_dict(w.state)
    return model.eval(), dict(w.spec), w.info


def run_spec(spec: dict[str, Any], weights: Pretrained, arch_key: str) -> dict[str, Any]:
    """The run's ``model_spec`` when it starts from ``weights``: the file's network (its depth, widths,
    blocks, shortcut, ...) with the run's input channels and classes; for a composite network whose inner
    network is the file's, the run's own spec (``weights.into`` is set). A network of another architecture
    is a :class:`CheckpointError` saying which ``train`` key to set."""
    file_arch, arch = weights.spec.get("arch"), spec["arch"]
    if file_arch == arch:
        keep = {k: v for k, v in weights.spec.items() if k not in ("in_channels", "num_classes")}
        return {**spec, **keep, "in_channels": spec["in_channels"], "num_classes": spec["num_classes"]}
    inner = INNER_OF.get(arch)
    if inner and spec.get(inner) == file_arch:
        weights.into = inner
        return spec
    run = f"{arch} (with a {spec[inner]} {inner})" if inner else arch
    raise CheckpointError(f"pretrained weights {weights.path} are a {file_arch} network and the run's is {run}: "
                          f"set train.{arch_key} to {file_arch}, or convert them for it with "
                          f"`prep-cli models import {weights.path} --arch ...`")


def load_into(model: nn.Module, weights: Pretrained, cross_modality: bool = False) -> dict[str, Any]:
    """Load ``weights`` into ``model`` (in place; into its inner network ``weights.into`` when set) and say
    what was done: ``{"source", "format", "into", "classifier" ("kept" | "replaced"), "cross_modality" (the
    layers re-made), "notes"}``. The classifier is replaced (the run's initialisation kept) when its shape
    differs; any other key missing, unexpected or of another shape is a :class:`CheckpointError` naming it."""
    target = getattr(model, weights.into) if weights.into else model
    path, state = weights.path, weights.state
    own = target.state_dict()
    fc = {k for k in own if k.startswith(W.classifier_prefix(target))}
    out, remade, replaced = {}, [], False
    for key, want in own.items():
        have = state.get(key)
        if have is None:
            continue
        if have.shape == want.shape:
            out[key] = have
        elif key in fc:                                   # another class count: the run's fresh classifier
            out[key], replaced = want, True
        elif cross_modality and have.ndim == want.ndim >= 4 and have.shape[0] == want.shape[0] \
                and have.shape[2:] == want.shape[2:]:
            out[key] = cross_modality_kernel(have, want.shape[1]).to(want.dtype)
            remade.append(key)
        else:
            hint = (" (other input channels: train.cross_modality averages them over the run's)"
                    if have.ndim == want.ndim >= 4 and have.shape[1] != want.shape[1] else "")
            raise CheckpointError(f"pretrained weights {path}: {weights.into + '.' if weights.into else ''}"
                                  f"{key} is {tuple(have.shape)} in the file, {tuple(want.shape)} in the run's "
                                  f"network{hint}")
    missing = [k for k in own if k not in out]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"pretrained weights {path} do not fit the run's {weights.spec.get('arch')}: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    target.load_state_dict(out, strict=True)
    result = {"source": path, "format": str(weights.info.get("format")), "into": weights.into,
              "classifier": "replaced" if replaced else "kept", "cross_modality": remade,
              "notes": [str(n) for n in weights.info.get("notes", [])]}
    log.info("started from %s (%s%s; classifier %s%s)", path, result["format"],
             f", into {weights.into}" if weights.into else "", result["classifier"],
             f"; cross-modality {remade}" if remade else "")
    return result


__all__ = ["INNER_OF", "Pretrained", "cross_modality_kernel", "load_into", "network", "read", "run_spec"]
