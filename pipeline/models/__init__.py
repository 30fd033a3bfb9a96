"""The networks: 3D ResNet/ResNeXt (Hara et al. 2018) and torchvision's R3D-18, S3D-G / S3D (Xie et al. 2018),
the residual-frames ResNet-18-3D (Tao et al.), 2D ResNets / ResNeXts (He et al. 2016, Xie et al. 2017) and
VGG (Simonyan & Zisserman 2015), all with one interface (:class:`~pipeline.models.base.Classifier`).

    model = build("resnet3d-18", in_channels=2, num_classes=101)   # any config field as an override
    logits = model(x)                        # x (N, C, T, H, W) for 3D models, (N, C, H, W) for 2D
    feat = model.forward_features(x)         # (N, model.feature_dim): pooled last stage, before dropout/fc
    logits = model.classify(feat)            # dropout + model.fc; equals model(x)

Every model has ``fc`` (the final linear layer), ``last_block`` (the last residual stage; S3D-G: Mixed_5b-5c;
VGG: the last conv stage), ``first_layer`` (the layer reading the input: ``conv1`` + ``bn1``; S3D-G and VGG:
``features[0]``, the optimiser's first-layer rate), ``PROBE_LAYERS`` (the motion probe's layers), ``feature_dim``,
``config`` (its dataclass), ``input_dims`` (3 or 2) and ``arch`` (its registry name).
:mod:`.summary` counts parameters and multiply-adds.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from torch import nn

from .base import Classifier
from .dmc import DMCNet, DMCNetConfig
from .motionnet import HiddenTwoStream, HiddenTwoStreamConfig
from .resnet2d import ResNet2d, ResNet2dConfig
from .resnet3d import ResNet3d, ResNet3dConfig
from .resnet18_3d import ResNet18Elu3d, ResNet18Elu3dConfig
from .s3dg import S3DG, S3DGConfig
from .vgg import VGG, VGGConfig


#: architecture name -> (config class, model class, the config defaults that make the architecture)
ARCHS: dict[str, tuple[type, type[Classifier], dict[str, Any]]] = {
    "resnet3d-18": (ResNet3dConfig, ResNet3d, {}),                 # shortcut A: 33.2 M at 400 classes (Hara)
    "resnet3d-34": (ResNet3dConfig, ResNet3d, {"depth": 34}),      # shortcut A: 63.5 M
    "resnet3d-50": (ResNet3dConfig, ResNet3d, {"depth": 50}),      # shortcut B: 46.4 M
    "resnet3d-101": (ResNet3dConfig, ResNet3d, {"depth": 101}),    # shortcut B: 85.3 M
    "resnext3d-101": (ResNet3dConfig, ResNet3d, {"depth": 101, "cardinality": 32}),   # the MARS backbone: 48.3 M
    # torchvision's video.r3d_18 (Tran et al. 2018): 33,371,472 at 400 classes, 40.70 G MACs at 16x112x112
    "r3d-18": (ResNet3dConfig, ResNet3d, {"stem": "torchvision", "shortcut": "B"}),
    # D3D's student and teacher (Xie et al. 2018); S3D = torchvision's s3d: 8,320,048, 17.98 G at 16x224x224
    "s3dg": (S3DGConfig, S3DG, {}),                                # S3D + the gates' 1,219,328: 9,539,376
    "s3d": (S3DGConfig, S3DG, {"gating": False}),
    "resnet18-3d-elu": (ResNet18Elu3dConfig, ResNet18Elu3d, {}),   # residual frames (Tao et al.)
    "resnet2d-18": (ResNet2dConfig, ResNet2d, {}),                 # He et al. 2016
    "resnet2d-34": (ResNet2dConfig, ResNet2d, {"depth": 34}),
    "resnet2d-50": (ResNet2dConfig, ResNet2d, {"depth": 50}),      # torchvision's v1.5 stride placement
    "resnet2d-101": (ResNet2dConfig, ResNet2d, {"depth": 101}),    # 44,549,160 at 1000 classes, 7.80 G at 224
    # CoViAR's / DMC-Net's I-frame net: 60,192,808, 11.51 G at 224 (He et al., DMC-Net Table 1: 11.3 G)
    "resnet2d-152": (ResNet2dConfig, ResNet2d, {"depth": 152}),
    # Tao et al.'s best appearance path, torchvision's resnext101_32x8d: 88,791,336, 16.41 G at 224
    "resnext2d-101": (ResNet2dConfig, ResNet2d, {"depth": 101, "groups": 32, "width_per_group": 8}),
    # Hidden Two-Stream's temporal stream (config D): 138,357,544 at 1000 classes, 15.47 G at 224
    "vgg16": (VGGConfig, VGG, {}),
    "dmcnet": (DMCNetConfig, DMCNet, {}),                          # DMC-Net: generator + 2D ResNet-18
    "hidden": (HiddenTwoStreamConfig, HiddenTwoStream, {}),        # MotionNet + a 3D temporal stream
}


def config_fields(arch: str) -> list[str]:
    """The config fields an architecture takes as overrides (ValueError for an unknown name)."""
    return [f.name for f in fields(_entry(arch)[0])]


def input_dims_of(arch: str) -> int:
    """3 for an architecture taking clips (N, C, T, H, W), 2 for one taking images (N, C, H, W)."""
    return _entry(arch)[1].input_dims


def make_config(arch: str, **overrides: Any) -> Any:
    """The config dataclass of ``arch`` with ``overrides`` applied; an override of None keeps the
    architecture's default (``width=None``: 64). ValueError for an unknown architecture, an unknown field or
    a bad value, naming the allowed ones."""
    cfg_cls, _, defaults = _entry(arch)
    allowed = config_fields(arch)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"{arch} has no config field {', '.join(map(repr, unknown))}: allowed are "
                         f"{', '.join(allowed)}")
    return cfg_cls(**{**defaults, **{k: v for k, v in overrides.items() if v is not None}})


def build(arch: str, **overrides: Any) -> nn.Module:
    """The model ``arch`` (a name of :data:`ARCHS`), freshly initialised (deterministic given
    ``torch.manual_seed``), with any config field overridden, e.g.
    ``build("resnet3d-18", in_channels=2, num_classes=8, width=8, layers=(1, 1, 1, 1))``; an override of None
    keeps the default. An unknown architecture or field is a ValueError naming the allowed ones."""
    model_cls = _entry(arch)[1]
    model = model_cls(make_config(arch, **overrides))
    model.arch = arch
    return model


def build_spec(spec: Mapping[str, Any]) -> nn.Module:
    """The network of a ``model_spec`` (``{"arch": name, <config field>: value, ...}``, as checkpoints store
    it: lists for tuples), freshly initialised (:func:`build`)."""
    spec = dict(spec)
    arch = spec.pop("arch")
    return build(arch, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()})


def _entry(arch: str) -> tuple[type, type[Classifier], dict[str, Any]]:
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: allowed are {', '.join(ARCHS)}")
    return ARCHS[arch]


__all__ = ["ARCHS", "Classifier", "DMCNet", "DMCNetConfig", "HiddenTwoStream", "HiddenTwoStreamConfig", "ResNet2d", "ResNet2dConfig", "ResNet3d", "ResNet3dConfig", "ResNet18Elu3d",
           "ResNet18Elu3dConfig", "S3DG", "S3DGConfig", "VGG", "VGGConfig", "build", "build_spec", "config_fields",
           "input_dims_of", "make_config"]
