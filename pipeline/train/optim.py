"""Optimisers and learning-rate schedules of the recipes (``RecipeConfig``), as functions of a model.

* :func:`param_groups`: the parameters one phase trains, split into named groups with their learning rates:
  ``slow_layers`` (``backbone``: every classifier parameter but its last linear layer ``fc``, CoViAR and the
  DMC-Net paper; ``all``: the whole classifier, the DMC-Net code) at ``lr * slow_lr_mult``, the classifier's
  first layer (its ``first_layer``: ResNets' ``conv1`` and ``bn1``, S3D-G's Conv2d_1a ``features[0]``,
  VGG's first conv [and BN]) at ``lr * first_lr_mult`` when slow layers are set and ``first_lr_mult`` is not
  None
  (CoViAR's re-initialised first layer of its motion-vector and residual streams), a composite network's
  front part (DMC-Net's generator) at ``lr``, and MotionNet inside the stacked temporal stream at
  ``lr * motionnet_mult``.
* :func:`build_optimizer`: SGD with momentum, dampening, Nesterov and weight decay (MARS's code: dampening
  0.9, weight decay 1e-3) or Adam with its epsilon and weight decay (CoViAR, DMC-Net: 1e-3, 1e-4).
* :func:`build_scheduler`: ``plateau``, ``steps`` (``lr_steps``, x ``lr_factor``), ``cosine`` or
  ``constant``.
"""

from __future__ import annotations

import dataclasses
from typing import Collection

import torch
from torch import nn

from ..core.config import RecipeConfig

#: parameter-name prefixes of the first layer of a network without a ``first_layer`` (2D and 3D ResNets' names)
FIRST_LAYER = ("conv1.", "bn1.")


def first_layer_ids(model: nn.Module) -> set[int] | None:
    """The ids of the parameters of the classification network's first layer: ``first_layer`` of
    ``model.classifier`` (DMC-Net), ``model.temporal`` (the stacked temporal stream) or ``model``; None when
    that network has no ``first_layer`` (then the names :data:`FIRST_LAYER` decide)."""
    net = model.classifier if hasattr(model, "generator") else (
        model.temporal if isinstance(getattr(model, "temporal", None), nn.Module) else model)
    first = getattr(net, "first_layer", None)
    return {id(p) for p in first.parameters()} if isinstance(first, nn.Module) else None


def param_groups(model: nn.Module, names: Collection[str], recipe: RecipeConfig,
                 motionnet_mult: float = 1.0, pretrained: bool = True) -> list[dict]:
    """The named parameters of ``model`` in ``names`` as optimiser groups ``{"params", "lr", "name"}``.

    ``pretrained`` False (a network trained from scratch): ``slow_layers`` is ignored, every layer at
    ``lr``. The authors' x 0.01 keeps ImageNet weights close to where they started (CoViAR and DMC-Net
    always start from them); on random weights it would only stall the layers it slows.

    The classification network is ``model.classifier`` in a DMC-Net (``classifier.`` names; its generator
    keeps ``lr``), ``model.temporal`` in the stacked temporal stream (``motionnet.`` names at
    ``lr * motionnet_mult``) and the model itself otherwise. Empty groups are left out; every parameter
    of ``names`` is in exactly one group."""
    lr = float(recipe.lr)
    prefix = "classifier." if hasattr(model, "generator") else ""
    first = first_layer_ids(model)
    groups: dict[str, tuple[float, list]] = {}

    def put(group: str, rate: float, p: nn.Parameter) -> None:
        groups.setdefault(group, (rate, []))[1].append(p)

    for n, p in model.named_parameters():
        if n not in names:
            continue
        if n.startswith("motionnet."):
            put("motionnet", lr * motionnet_mult, p)
            continue
        if prefix and not n.startswith(prefix):      # DMC-Net's generator
            put("generator", lr, p)
            continue
        local = n[len(prefix):]
        if local.startswith("temporal."):
            local = local[len("temporal."):]
        head = local.startswith("fc.")
        if recipe.slow_layers == "none" or not pretrained:
            put("main", lr, p)
        elif recipe.slow_layers == "backbone" and head:
            put("fc", lr, p)
        elif recipe.first_lr_mult is not None and (id(p) in first if first is not None
                                                   else local.startswith(FIRST_LAYER)):
            put("first", lr * recipe.first_lr_mult, p)
        else:
            put("slow", lr * recipe.slow_lr_mult, p)
    order = ("generator", "main", "fc", "first", "slow", "motionnet")
    return [{"params": groups[g][1], "lr": groups[g][0], "name": g} for g in order if g in groups]


def build_optimizer(groups: list[dict], recipe: RecipeConfig, optimizer: str | None = None,
                    lr: float | None = None, weight_decay: float | None = None) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``groups`` (``optimizer`` / ``lr`` / ``weight_decay`` replace the
    recipe's: a phase of its own, as MotionNet's unsupervised Adam)."""
    kind = optimizer or recipe.optimizer
    if weight_decay is not None:
        recipe = dataclasses.replace(recipe, weight_decay=weight_decay)
    if lr is not None:
        groups = [{**g, "lr": lr} for g in groups]
    if kind == "sgd":
        if recipe.nesterov and (recipe.dampening or not recipe.momentum):
            raise ValueError("SGD with Nesterov momentum needs momentum > 0 and dampening 0 (recipe: momentum "
                             f"{recipe.momentum}, dampening {recipe.dampening})")
        return torch.optim.SGD(groups, lr=float(recipe.lr), momentum=float(recipe.momentum),
                               dampening=float(recipe.dampening), nesterov=bool(recipe.nesterov),
                               weight_decay=float(recipe.weight_decay))
    if kind == "adam":
        return torch.optim.Adam(groups, lr=float(recipe.lr), eps=float(recipe.adam_eps),
                                weight_decay=float(recipe.weight_decay))
    raise ValueError(f"unknown optimizer {kind!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: RecipeConfig, epochs: int):
    """The recipe's schedule over a phase of ``epochs`` epochs (None: constant). ``steps``: the rate times
    ``lr_factor`` after each epoch of ``lr_steps``; ``plateau``: after ``lr_patience`` epochs without a lower
    validation loss."""
    if recipe.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", factor=recipe.lr_factor,
                                                          patience=recipe.lr_patience)
    if recipe.schedule == "steps":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(recipe.lr_steps),
                                                    gamma=recipe.lr_factor)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if recipe.schedule == "constant":
        return None
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


__all__ = ["param_groups", "build_optimizer", "build_scheduler", "FIRST_LAYER", "first_layer_ids"]
