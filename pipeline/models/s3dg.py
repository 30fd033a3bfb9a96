"""S3D-G and S3D (Xie et al. 2018): Inception-v1 with separable 3D convolutions and feature gating, the
student and teacher network of D3D.

S. Xie, C. Sun, J. Huang, Z. Tu, K. Murphy, "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy
Trade-offs in Video Classification", ECCV 2018 (arXiv 1712.04851); J. C. Stroud et al., "D3D: Distilled 3D
Networks for Video Action Recognition", WACV 2020 §4 ("We use S3D-G as the architecture for both D3D and the
teacher network"; its Fig. 2 names the layers as Inception-v1 does). The layout, paddings, pools and batch
norms are torchvision's ``video.s3d`` (S3D without gating, read at pytorch/vision
``torchvision/models/video/s3d.py``), so its Kinetics-400 weights convert (:func:`from_torchvision`). For a
clip (N, C, T, H, W), w = 64, every channel count scaled by w / 64:

===== ================ ============================================================ =====================
index Inception name   layers                                                       output (16x224x224)
===== ================ ============================================================ =====================
0     Conv2d_1a_7x7    sep. conv: 1x7x7 stride (1, 2, 2) pad (0, 3, 3); 7x1x1 stride   64 x 8 x 112 x 112
                       (2, 1, 1) pad (3, 0, 0)
1     MaxPool_2a_3x3   max-pool 1x3x3, stride (1, 2, 2), pad (0, 1, 1)                 64 x 8 x 56 x 56
2     Conv2d_2b_1x1    conv 1x1x1                                                      64 x 8 x 56 x 56
3     Conv2d_2c_3x3    sep. conv 1x3x3 + 3x1x1 (pad 1) to 192; [gate]                  192 x 8 x 56 x 56
4     MaxPool_3a_3x3   max-pool 1x3x3, stride (1, 2, 2), pad (0, 1, 1)                 192 x 8 x 28 x 28
5, 6  Mixed_3b, 3c     Inception blocks                                                256, 480 x 8 x 28 x 28
7     MaxPool_4a_3x3   max-pool 3x3x3, stride 2, pad 1                                 480 x 4 x 14 x 14
8-12  Mixed_4b .. 4f   Inception blocks                                                512..832 x 4 x 14 x 14
13    MaxPool_5a_2x2   max-pool 2x2x2, stride 2                                        832 x 2 x 7 x 7
14,15 Mixed_5b, 5c     Inception blocks (``last_block``)                               832, 1024 x 2 x 7 x 7
head                   average pool (2, 7, 7), stride 1, then mean; dropout; ``fc``    num_classes
===== ================ ============================================================ =====================

Every conv is conv (no bias) - BN (eps 0.001, momentum 0.001: TF's decay 0.999) - ReLU; a separable conv
("sep.") is a 1xkxk spatial conv then a kx1x1 temporal conv, each with its BN and ReLU. An Inception block
(the channels of :data:`BLOCKS`) concatenates four branches: ``branch0`` 1x1x1; ``branch1`` and ``branch2``
1x1x1 then a separable 3x3x3; ``branch3`` max-pool 3x3x3 (stride 1, pad 1) then 1x1x1.

Feature gating (S3D-G; ``gating=True``): ``y = sigmoid(W mean(x)) * x`` per channel, ``mean`` over T, H and W
of the sample, ``W`` a C x C matrix without bias (Xie et al.'s feature gating; the authors' ``self_gating`` in
tensorflow/models research/slim/nets/s3dg.py, ``transformer_W`` with ``biases_initializer=None``,
truncated-normal 0.01 initialisation). Where the authors' code applies it (``gating_startat='Conv2d_2c_3x3'``,
``gate_at="branches"``, the default): after Conv2d_2c_3x3 and on the output of each of the four branches of
every Inception block (``inception_block_v1_3d``'s ``self_gating_fn``); ``gate_at="blocks"`` gates each
block's concatenated output with one C x C gate instead. ``gating=False`` is plain S3D: no gate modules at
all, torchvision's ``s3d`` exactly.

Head: torchvision pools with a fixed ``AvgPool3d((2, 7, 7), stride=1)``, applies dropout and a 1x1x1 conv and
averages what is left; since the conv is linear this equals ``fc`` on the mean of the pooled windows, which
:meth:`S3DG.forward_features` returns (before dropout, the classifier interface). In eval the logits are
torchvision's; in training its dropout acts on each window before the mean, ours on the mean. The window is
clipped to the feature map, so clips too small for it (under 2 x 7 x 7 at Mixed_5c: fewer than 13 frames or
209 pixels; the max-pools need at least 5 frames of 17 x 17) run too, where torchvision's fails;
``pool="global"`` averages globally (different only for clips longer or larger than 16 x 224 x 224).

Sizes (400 classes, 3 x 16 x 224 x 224): S3D 8,320,048 parameters and 17.98 G multiply-adds (torchvision's
S3D_Weights: 8,320,048 parameters, 17.98 "GFLOPS", which are multiply-adds); S3D-G adds the gates' 1,219,328
(36,864 after Conv2d_2c, the rest on the branches), 9,539,376 parameters, and as many multiply-adds (a gate
costs C^2 per clip), 17.98 G. With ``gate_at="blocks"`` the gates hold 3,794,176 (12,114,224 in all).
(Xie et al.'s own figures are not checked here: the paper is not among the project's papers.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier, check_common, init_weights

#: batch norm of every conv (torchvision's s3d: ``BatchNorm3d(eps=0.001, momentum=0.001)``)
BN_EPS, BN_MOMENTUM = 0.001, 0.001
#: Inception blocks at w = 64: name, index in ``features``, and (b0, b1 1x1, b1 3x3, b2 1x1, b2 3x3, b3)
BLOCKS = (
    ("Mixed_3b", 5, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 6, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 8, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 9, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 10, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 11, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 12, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 14, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 15, (384, 192, 384, 48, 128, 128)),
)
#: Inception-v1 name -> index in ``features`` (D3D Fig. 2's layer names)
ENDPOINTS = {"Conv2d_1a_7x7": 0, "MaxPool_2a_3x3": 1, "Conv2d_2b_1x1": 2, "Conv2d_2c_3x3": 3,
             "MaxPool_3a_3x3": 4, "MaxPool_4a_3x3": 7, "MaxPool_5a_2x2": 13,
             **{name: index for name, index, _ in BLOCKS}}
GATE_AT = ("branches", "blocks")
POOLS = ("torchvision", "global")
#: torchvision's ``AvgPool3d`` window before its classifier (stride 1)
POOL_WINDOW = (2, 7, 7)


@dataclass(frozen=True)
class S3DGConfig:
    """The hyper-parameters of S3D-G / S3D (Xie et al. 2018; torchvision's S3D layout)."""

    in_channels: int = 3            # input channels: 3 RGB (the student), 2 TV-L1 flow (the teacher); any
    num_classes: int = 400          # classifier outputs (Kinetics-400 in Xie et al. and D3D)
    width: int = 64                 # channels of Conv2d_1a; every channel count is scaled by width / 64
                                    # (TF's depth_multiplier; 64 in the paper; tests use 8)
    gating: bool = True             # feature gating (S3D-G); False: plain S3D, torchvision's s3d
    gate_at: str = "branches"       # "branches": after Conv2d_2c and on each branch (the authors' code);
                                    # "blocks": on each Inception block's output
    dropout: float = 0.2            # before fc (torchvision's default; TF's dropout_keep_prob 0.8)
    pool: str = "torchvision"       # "torchvision": average pools (2, 7, 7), stride 1 (clipped to the map),
                                    # then their mean; "global": the global average pool

    def __post_init__(self) -> None:
        check_common(self)
        if not isinstance(self.gating, bool):
            raise ValueError(f"gating must be a bool, got {self.gating!r}")
        if self.gate_at not in GATE_AT:
            raise ValueError(f"gate_at must be one of {GATE_AT}, got {self.gate_at!r}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")

    def channels(self, c: int) -> int:
        """A channel count of the w = 64 network scaled to this width (at least 1)."""
        return max(1, c * self.width // 64)


def conv_bn(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
            padding: tuple[int, int, int]) -> nn.Sequential:
    """conv (no bias) - BN - ReLU, names ``0``, ``1``, ``2`` (torchvision's ``Conv3dNormActivation``)."""
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm3d(cout, eps=BN_EPS, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))


def unit(cin: int, cout: int) -> nn.Sequential:
    """A 1x1x1 conv - BN - ReLU: (N, cin, T, H, W) -> (N, cout, T, H, W)."""
    return conv_bn(cin, cout, (1, 1, 1), (1, 1, 1), (0, 0, 0))


def separable(cin: int, cout: int, k: int, stride: int, pad: int) -> nn.Sequential:
    """Spatial 1xkxk (stride (1, s, s)) then temporal kx1x1 (stride (s, 1, 1)), each conv - BN - ReLU, names
    ``0`` and ``1``: (N, cin, T, H, W) -> (N, cout, T/s, H/s, W/s) (with padding ``pad``)."""
    return nn.Sequential(conv_bn(cin, cout, (1, k, k), (1, stride, stride), (0, pad, pad)),
                         conv_bn(cout, cout, (k, 1, 1), (stride, 1, 1), (pad, 0, 0)))


class SelfGate(nn.Module):
    """Feature gating: ``sigmoid(transform(mean over T, H, W of x)) * x`` per sample and channel;
    (N, C, T, H, W) -> the same shape. ``transform`` is a C x C linear map without bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.transform = nn.Linear(channels, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.transform(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class InceptionBlock(nn.Module):
    """Four branches concatenated: (N, cin, T, H, W) -> (N, b0 + b1 + b2 + b3, T, H, W), with ``gate0`` ..
    ``gate3`` (one per branch) or ``gate`` (on the output) when gated."""

    def __init__(self, cin: int, widths: tuple[int, ...], gate_at: str | None) -> None:
        super().__init__()
        b0, b1a, b1, b2a, b2, b3 = widths
        self.branch0 = unit(cin, b0)
        self.branch1 = nn.Sequential(unit(cin, b1a), separable(b1a, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(unit(cin, b2a), separable(b2a, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), unit(cin, b3))
        self.out_channels = b0 + b1 + b2 + b3
        self.gate_at = gate_at
        if gate_at == "branches":
            for i, c in enumerate((b0, b1, b2, b3)):
                self.add_module(f"gate{i}", SelfGate(c))
        elif gate_at == "blocks":
            self.gate = SelfGate(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        if self.gate_at == "branches":
            outs = [getattr(self, f"gate{i}")(o) for i, o in enumerate(outs)]
        out = torch.cat(outs, 1)
        return self.gate(out) if self.gate_at == "blocks" else out


class S3DG(Classifier):
    """S3D-G / S3D on clips (N, in_channels, T, H, W) float32 -> logits (N, K). ``forward_features`` gives
    the (N, feature_dim) pooled Mixed_5c (1024 at w = 64), before dropout; ``features`` holds the 16 stages
    under torchvision's indices (:data:`ENDPOINTS` names them); ``last_block`` is Mixed_5b and Mixed_5c."""

    input_dims = 3
    #: the crop of Xie et al. and torchvision's weights (``prep-cli models summary`` uses it)
    default_size = 224
    #: D3D's motion probe layers (:mod:`.probe`), analogous to a ResNet's stem max pool and four stages, at
    #: 16 x 224 x 224 (w = 64): ``stem`` MaxPool_2a_3x3 (after Conv2d_1a, like a ResNet's stem; 64 x 8 x 56 x
    #: 56), ``layer1`` MaxPool_3a_3x3 (D3D's "3A", the layer of its Table 1 and Figs. 5-6; 192 x 8 x 28 x 28),
    #: ``layer2`` Mixed_3c (480 x 8 x 28 x 28), ``layer3`` Mixed_4f (832 x 4 x 14 x 14), ``layer4`` Mixed_5c
    #: (1024 x 2 x 7 x 7): the last layer of each resolution, with the paper's 3A for the first one
    PROBE_LAYERS = {"stem": f"features.{ENDPOINTS['MaxPool_2a_3x3']}",
                    "layer1": f"features.{ENDPOINTS['MaxPool_3a_3x3']}",
                    "layer2": f"features.{ENDPOINTS['Mixed_3c']}",
                    "layer3": f"features.{ENDPOINTS['Mixed_4f']}",
                    "layer4": f"features.{ENDPOINTS['Mixed_5c']}"}

    def __init__(self, config: S3DGConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else S3DGConfig()
        c = cfg.channels
        gate_at = cfg.gate_at if cfg.gating else None
        stem_pool = dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        conv2c = separable(c(64), c(192), 3, 1, 1)
        if gate_at == "branches":                                   # gating_startat='Conv2d_2c_3x3'
            conv2c.add_module("gate", SelfGate(c(192)))
        layers: list[nn.Module] = [separable(cfg.in_channels, c(64), 7, 2, 3), nn.MaxPool3d(**stem_pool),
                                   unit(c(64), c(64)), conv2c, nn.MaxPool3d(**stem_pool)]
        cin = c(192)
        for _, index, widths in BLOCKS:
            if index == ENDPOINTS["Mixed_4b"]:
                layers.append(nn.MaxPool3d(3, stride=2, padding=1))           # MaxPool_4a_3x3
            elif index == ENDPOINTS["Mixed_5b"]:
                layers.append(nn.MaxPool3d(2, stride=2))                      # MaxPool_5a_2x2
            assert len(layers) == index, (len(layers), index)
            block = InceptionBlock(cin, tuple(c(w) for w in widths), gate_at)
            layers.append(block)
            cin = block.out_channels
        self.features = nn.Sequential(*layers)
        self.feature_dim = cin
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cin, cfg.num_classes)
        init_weights(self)
        for m in self.modules():
            if isinstance(m, SelfGate):                  # the authors' trunc_normal(0.01) (cut at 2 sigma)
                nn.init.trunc_normal_(m.transform.weight, std=0.01, a=-0.02, b=0.02)

    @property
    def first_layer(self) -> nn.Module:
        """Conv2d_1a_7x7 (``features[0]``: the separable 1x7x7 and 7x1x1 convs with their batch norms), the
        layer that reads the input channels."""
        return self.features[0]

    @property
    def last_block(self) -> nn.Module:
        """The last Inception stage, Mixed_5b and Mixed_5c (``features[14:]``): what "fine-tune the last
        stage" trains."""
        return self.features[ENDPOINTS["Mixed_5b"]:]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled Mixed_5c, (N, feature_dim), before dropout: the mean of the (2, 7, 7) stride-1 average
        pools (window clipped to the map; ``pool="global"``: the global average)."""
        x = self.features(x)
        if self.config.pool == "torchvision":
            window = tuple(min(k, s) for k, s in zip(POOL_WINDOW, x.shape[2:]))
            x = F.avg_pool3d(x, window, stride=1)
        return x.mean(dim=(2, 3, 4))


def from_torchvision(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's ``video.s3d`` state_dict in our names: ``features.*`` keep theirs, the classifier's 1x1x1
    conv ``classifier.1.weight`` (K, 1024, 1, 1, 1) becomes ``fc.weight`` (K, 1024) and ``classifier.1.bias``
    ``fc.bias``. It loads strictly into ``S3DG(S3DGConfig(gating=False))``; into S3D-G with
    ``strict=False`` (only the gates' ``...gate*.transform.weight`` missing: S3D-G started from S3D, in code
    only: ``prep-cli models import`` / :func:`pipeline.models.weights.load_pretrained` map these weights to
    ``s3d`` and refuse ``s3dg``, never loading partially)."""
    out = {}
    for key, value in state_dict.items():
        if key == "classifier.1.weight":
            out["fc.weight"] = value.reshape(value.shape[0], -1)
        elif key == "classifier.1.bias":
            out["fc.bias"] = value
        else:
            out[key] = value
    return out
