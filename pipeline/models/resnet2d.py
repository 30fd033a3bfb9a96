"""2D ResNet-18/34/50/101/152 and ResNeXt (He et al. 2016; Xie et al. 2017; torchvision's layout) for any
number of input channels.

The appearance path of the residual-frame two-path network (Tao et al. §3.2: one RGB frame, 224 x 224; their
best appearance model is ResNeXt-101 32x8d), DMC-Net's classifier (Shou et al. 2019: ResNet-18 on the DMC and
the residual) and CoViAR's / DMC-Net's I-frame network (ResNet-152). For an image (N, C, H, W):

====== ======================================================== ============================
stage  layers                                                   output (224 x 224, w = 64)
====== ======================================================== ============================
stem   conv 7x7, stride 2, pad 3, w channels; BN; ReLU;          w x 112 x 112
       max-pool 3x3, stride 2, pad 1                            w x 56 x 56
1..4   blocks[i] x block(w 2^i); stages 2-4 start with stride 2  8 w e x 7 x 7
head   global average pool; dropout; linear                     num_classes
====== ======================================================== ============================

Basic block (18/34, e = 1): 3x3 - BN - ReLU - 3x3 - BN, add, ReLU. Bottleneck (50+, e = 4): 1x1 - 3x3
(stride s, torchvision's "ResNet v1.5" placement) - 1x1 (4x) with BN and ReLU, add, ReLU. The shortcut is the
identity, or a 1x1 conv (stride s) + BN when the shape changes (He et al.'s option B). ResNeXt (torchvision's
semantics): the bottleneck's 1x1 and 3x3 convs are ``int(planes * width_per_group / 64) * groups`` wide and
the 3x3 is grouped into ``groups``; the block still outputs 4 planes (32x8d: 256 .. 2048 wide inner convs).

Module names are torchvision's ``resnet*`` / ``resnext*`` state_dict keys one to one (``conv1``, ``bn1``,
``layer1.0.conv1`` .. ``layer1.0.bn3``, ``layer1.0.downsample.0/1``, ``fc``), so its ImageNet weights load
with ``load_state_dict`` (a different ``in_channels`` or class count needs ``conv1`` / ``fc`` replaced).

Sizes at 224 x 224 with 1000 classes (torchvision's model docs: parameters, "GFLOPS" which are multiply-adds):

==================== ============== =================================================================
network              parameters     multiply-adds
==================== ============== =================================================================
ResNet-18            11,689,512     1.82 G (He et al. Table 1: 1.8 G; DMC-Net Table 1: 1.78 G)
ResNet-50            25,557,032     4.09 G (He et al.: 3.8 G; more because of the v1.5 stride placement)
ResNet-101           44,549,160     7.80 G (He et al.: 7.6 G)
ResNet-152           60,192,808     11.51 G (He et al.: 11.3 G; DMC-Net Table 1 too: CoViAR's I-frame net)
ResNeXt-101 32x8d    88,791,336     16.41 G (torchvision; Tao et al.'s best appearance path)
==================== ============== =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Classifier, check_common, check_layers

#: depth -> (block kind, blocks per stage): He et al. 2016 Table 1
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@dataclass(frozen=True)
class ResNet2dConfig:
    """The hyper-parameters of a 2D ResNet (He et al. 2016; torchvision's implementation)."""

    depth: int = 18                 # 18/34: basic blocks; 50/101/152: bottlenecks (He et al. Table 1)
    in_channels: int = 3            # input channels: 3 RGB frame or I-frame, 2 motion vectors / DMC; any
    num_classes: int = 400          # classifier outputs (ImageNet's 1000 in He et al.)
    width: int = 64                 # channels of conv1 and stage 1 (64 in He et al.; tests use 8)
    layers: tuple[int, int, int, int] | None = None  # blocks per stage; None = the depth's standard counts
    dropout: float = 0.0            # dropout probability before the classifier (He et al.: none)
    groups: int = 1                 # groups of the bottleneck's 3x3 conv: 1 ResNet, 32 ResNeXt-101 32x8d
    width_per_group: int = 64       # channels per group at width 64 (torchvision's base_width): 64 ResNet,
                                    # 8 ResNeXt 32x8d; inner width = int(planes * width_per_group/64) * groups

    def __post_init__(self) -> None:
        if self.depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {self.depth!r}")
        check_common(self)
        object.__setattr__(self, "layers", check_layers(self.layers))
        for name in ("groups", "width_per_group"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.block == "basic" and (self.groups, self.width_per_group) != (1, 64):
            raise ValueError(f"basic blocks (depth {self.depth}) take groups=1 and width_per_group=64, got "
                             f"{self.groups} and {self.width_per_group}: ResNeXt needs depth >= 50")
        if min(self.inner_widths) < self.groups:
            raise ValueError(f"the inner widths {self.inner_widths} must hold at least one channel per group "
                             f"(groups {self.groups}): use a larger width or width_per_group")

    @property
    def block(self) -> str:
        """``"basic"`` or ``"bottleneck"`` (the depth's block kind)."""
        return DEPTHS[self.depth][0]

    @property
    def blocks(self) -> tuple[int, int, int, int]:
        """Blocks per stage: ``layers``, or the depth's standard counts."""
        return self.layers if self.layers is not None else DEPTHS[self.depth][1]

    @property
    def expansion(self) -> int:
        """Output channels of a block over its 3x3 conv width: 1 basic, 4 bottleneck."""
        return 1 if self.block == "basic" else 4

    @property
    def inner_widths(self) -> tuple[int, int, int, int]:
        """Width of each stage's bottleneck 1x1 and 3x3 convs: ``int(planes * width_per_group / 64) * groups``
        with planes = width 2^i (torchvision's ``Bottleneck``); the planes themselves for basic blocks."""
        return tuple(int(self.width * 2 ** i * self.width_per_group / 64) * self.groups  # type: ignore
                     for i in range(4))


def projection(cin: int, cout: int, stride: int) -> nn.Module | None:
    """The shortcut from ``cin`` to ``cout`` channels at ``stride``: None (identity) when the shape stays,
    else a 1x1 conv (stride s) + BN."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock2d(nn.Module):
    """Two 3x3 convs with a shortcut: (N, cin, H, W) -> (N, planes, H/s, W/s)."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = projection(cin, planes, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck2d(nn.Module):
    """1x1 - 3x3 (stride s, ``groups`` groups) - 1x1 convs with a shortcut: (N, cin, H, W) ->
    (N, 4 planes, H/s, W/s); the inner convs are ``inner`` wide (``planes`` for a ResNet)."""

    def __init__(self, cin: int, planes: int, stride: int = 1, inner: int | None = None,
                 groups: int = 1) -> None:
        super().__init__()
        inner = planes if inner is None else inner
        self.conv1 = nn.Conv2d(cin, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = projection(cin, planes * 4, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet2d(Classifier):
    """2D ResNet / ResNeXt on images (N, in_channels, H, W) float32 -> logits (N, K); ``forward_features``
    gives the (N, feature_dim) average of stage 4 (512 for ResNet-18/34, 2048 for ResNet-50/101/152 and
    ResNeXt-101 at width 64)."""

    input_dims = 2

    def __init__(self, config: ResNet2dConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else ResNet2dConfig()
        block = BasicBlock2d if cfg.block == "basic" else Bottleneck2d
        self.conv1 = nn.Conv2d(cfg.in_channels, cfg.width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.width)
        self.act = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = cfg.width
        for i, count in enumerate(cfg.blocks):
            planes = cfg.width * 2 ** i
            extra = {} if cfg.block == "basic" else {"inner": cfg.inner_widths[i], "groups": cfg.groups}
            stage = []
            for j in range(count):
                stage.append(block(cin, planes, 2 if i > 0 and j == 0 else 1, **extra))
                cin = planes * cfg.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self._head(cin, cfg.num_classes, cfg.dropout)
