"""3D ResNet-10/18/34/50/101/152/200 and 3D ResNeXt, as in Hara et al. 2018 (the MARS backbone).

K. Hara, H. Kataoka, Y. Satoh, "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?",
CVPR 2018 (code: github kenshohara/3D-ResNets-PyTorch). The network, for an input clip (N, C, T, H, W):

====== ====================================================== =========================== ==============
stage  layers                                                 output (16x112x112, w=64)   ResNeXt output
====== ====================================================== =========================== ==============
stem   conv 7x7x7, stride (1, 2, 2), pad 3, w channels; BN;   w x 16 x 56 x 56
       ReLU; max-pool 3x3x3, stride 2, pad 1                  w x 8 x 28 x 28
1      blocks[0] x block(w), stride 1                         w*e x 8 x 28 x 28           4w x 8 x 28 x 28
2      blocks[1] x block(2w), first stride 2 in T, H and W    2w*e x 4 x 14 x 14          8w
3      blocks[2] x block(4w), first stride 2                  4w*e x 2 x 7 x 7            16w
4      blocks[3] x block(8w), first stride 2                  8w*e x 1 x 4 x 4            32w
head   global average pool; dropout; linear                   num_classes
====== ====================================================== =========================== ==============

* Basic block (depth 10/18/34, e = 1): 3x3x3 conv (stride s) - BN - ReLU - 3x3x3 conv - BN, add the
  shortcut, ReLU.
* Bottleneck (depth 50 and more, e = 4): 1x1x1 conv - BN - ReLU - 3x3x3 conv (stride s) - BN - ReLU -
  1x1x1 conv to 4x the width - BN, add the shortcut, ReLU.
* ResNeXt bottleneck (``cardinality`` > 1, e = 2): the same with the 3x3x3 conv grouped into
  ``cardinality`` groups and the stage widths doubled (128, 256, 512, 1024 at w = 64, outputs 256 .. 2048),
  as in Hara's ResNeXt-101 (32 groups).
* Shortcut when a block changes the shape: type A subsamples with the block's stride and zero-pads the new
  channels (no parameters); type B is a 1x1x1 conv (stride s) and BN. Hara used A for ResNet-18/34 and B for
  ResNet-50 and deeper and for ResNeXt; the published parameter counts (their Table 2, 400 classes:
  18: 33.2 M, 34: 63.5 M, 50: 46.4 M, 101: 85.3 M, ResNeXt-101: 48.3 M) need exactly these choices (B on
  ResNet-18 would give 33.4 M), so ``shortcut=None`` picks them.

torchvision's ``video.r3d_18`` (Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions", R3D-18;
registered as ``r3d-18``) is the same network with another stem, ``stem="torchvision"``: conv 3x7x7, stride
(1, 2, 2), padding (1, 3, 3), BN, ReLU and no max-pool (``maxpool`` is an identity), so at 16x112x112 the
stages are 64 x 16 x 56 x 56, 128 x 8 x 28 x 28, 256 x 4 x 14 x 14 and 512 x 2 x 7 x 7; with shortcut B
it has 33,371,472 parameters at 400 classes and 40.7 G multiply-adds (torchvision's R3D_18_Weights:
33,371,472 parameters, 40.70 "GFLOPS"). Its state_dict maps onto ours by renaming ``stem.0`` -> ``conv1``,
``stem.1`` -> ``bn1``, ``layerI.J.conv1.0/1`` -> ``layerI.J.conv1``/``bn1``, ``layerI.J.conv2.0/1`` ->
``layerI.J.conv2``/``bn2``; ``downsample.0/1`` and ``fc`` keep their names.

The final pooling is adaptive, so any clip of at least one frame and one pixel runs (Hara's code pooled a
fixed (1, 4, 4) for 16x112x112).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier, activation, check_common, check_layers

#: depth -> (block kind, blocks per stage): He et al. 2016 Table 1, Hara et al. 2018 Table 1
DEPTHS = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
SHORTCUTS = ("A", "B")
#: stem name -> (conv1 kernel, padding, max-pool after it): Hara's, and torchvision's video ResNets' BasicStem
STEMS = {"hara": ((7, 7, 7), (3, 3, 3), True), "torchvision": ((3, 7, 7), (1, 3, 3), False)}


@dataclass(frozen=True)
class ResNet3dConfig:
    """The hyper-parameters of a 3D ResNet/ResNeXt (Hara et al. 2018)."""

    depth: int = 18                 # 10/18/34: basic blocks; 50/101/152/200: bottlenecks (Hara Table 1)
    cardinality: int = 1            # groups of the 3x3x3 conv: 1 ResNet, 32 ResNeXt-101 (Hara §3.2; Xie 2017)
    in_channels: int = 3            # input channels: 3 RGB, 2 flow (x, y), 3 residual frames; any count
    num_classes: int = 400          # classifier outputs (Kinetics-400 in Hara's Table 2)
    width: int = 64                 # channels of conv1 and of stage 1's 3x3x3 convs (64 in Hara; tests use 8)
    layers: tuple[int, int, int, int] | None = None  # blocks per stage; None = the depth's standard counts
    shortcut: str | None = None     # "A" zero-pad identity, "B" 1x1x1 conv + BN; None = Hara's: A for basic
                                    # blocks (ResNet-18/34), B for bottlenecks and ResNeXt (Hara's READMEs)
    dropout: float = 0.0            # dropout probability before the classifier (Hara: none)
    stem: str = "hara"              # "hara": conv 7x7x7 (stride 1, 2, 2) + max-pool 3x3x3 stride 2;
                                    # "torchvision": conv 3x7x7, pad (1, 3, 3), no max-pool (video.r3d_18)

    def __post_init__(self) -> None:
        if self.depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {self.depth!r}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {sorted(STEMS)}, got {self.stem!r}")
        check_common(self)
        object.__setattr__(self, "layers", check_layers(self.layers))
        if self.shortcut is not None and self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS} or None, got {self.shortcut!r}")
        if not isinstance(self.cardinality, int) or self.cardinality < 1:
            raise ValueError(f"cardinality must be a positive int, got {self.cardinality!r}")
        if self.cardinality > 1:
            if self.block != "bottleneck":
                raise ValueError(f"ResNeXt (cardinality {self.cardinality}) needs bottleneck blocks: "
                                 f"depth >= 50, got depth {self.depth}")
            if self.planes[0] % self.cardinality:
                raise ValueError(f"ResNeXt stage widths {self.planes} (2 x width) must be divisible by the "
                                 f"cardinality {self.cardinality}: use width >= {self.cardinality // 2} "
                                 f"or a smaller cardinality")

    @property
    def block(self) -> str:
        """``"basic"`` or ``"bottleneck"`` (the depth's block kind)."""
        return DEPTHS[self.depth][0]

    @property
    def blocks(self) -> tuple[int, int, int, int]:
        """Blocks per stage: ``layers``, or the depth's standard counts."""
        return self.layers if self.layers is not None else DEPTHS[self.depth][1]

    @property
    def shortcut_type(self) -> str:
        """The shortcut used: ``shortcut``, or Hara's choice for the block kind."""
        if self.shortcut is not None:
            return self.shortcut
        return "A" if self.block == "basic" and self.cardinality == 1 else "B"

    @property
    def expansion(self) -> int:
        """Output channels of a block over its 3x3x3 conv width: 1 basic, 4 bottleneck, 2 ResNeXt."""
        if self.block == "basic":
            return 1
        return 2 if self.cardinality > 1 else 4

    @property
    def planes(self) -> tuple[int, int, int, int]:
        """Width of each stage's 3x3x3 convs: w, 2w, 4w, 8w (ResNeXt: 2w .. 16w)."""
        base = 2 * self.width if self.cardinality > 1 else self.width
        return tuple(base * 2 ** i for i in range(4))  # type: ignore[return-value]


def conv3x3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv3d:
    """3x3x3 convolution, padding 1, no bias (a BN follows)."""
    return nn.Conv3d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


class ZeroPadShortcut(nn.Module):
    """Shortcut type A: subsample by ``stride`` in T, H and W and zero-pad the channels to ``out_channels``.

    (N, C, T, H, W) -> (N, out_channels, ceil(T/s), ceil(H/s), ceil(W/s)): the same size as a 3x3x3 conv with
    padding 1 and stride s. No parameters.
    """

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if s != 1:
            x = x[:, :, ::s, ::s, ::s]
        pad = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, pad)) if pad else x


def make_shortcut(kind: str, cin: int, cout: int, stride: int) -> nn.Module | None:
    """The shortcut of a block from ``cin`` to ``cout`` channels at ``stride``: None (identity) when the shape
    does not change, else type ``"A"`` (:class:`ZeroPadShortcut`) or ``"B"`` (1x1x1 conv + BN)."""
    if stride == 1 and cin == cout:
        return None
    if kind == "A":
        return ZeroPadShortcut(cout, stride)
    return nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convs with a shortcut: (N, cin, T, H, W) -> (N, planes, T/s, H/s, W/s)."""

    def __init__(self, cin: int, planes: int, stride: int = 1, shortcut: str = "A", act: str = "relu",
                 **_: int) -> None:
        super().__init__()
        self.conv1 = conv3x3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.act1 = activation(act)
        self.conv2 = conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = make_shortcut(shortcut, cin, planes, stride)
        self.act2 = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act2(out + identity)


class Bottleneck3d(nn.Module):
    """1x1x1 - 3x3x3 (stride s, ``groups`` groups) - 1x1x1 convs with a shortcut:
    (N, cin, T, H, W) -> (N, planes * expansion, T/s, H/s, W/s)."""

    def __init__(self, cin: int, planes: int, stride: int = 1, shortcut: str = "B", act: str = "relu",
                 groups: int = 1, expansion: int = 4) -> None:
        super().__init__()
        cout = planes * expansion
        self.conv1 = nn.Conv3d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.act1 = activation(act)
        self.conv2 = conv3x3x3(planes, planes, stride, groups)
        self.bn2 = nn.BatchNorm3d(planes)
        self.act2 = activation(act)
        self.conv3 = nn.Conv3d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.downsample = make_shortcut(shortcut, cin, cout, stride)
        self.act3 = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act3(out + identity)


class ResNet3d(Classifier):
    """3D ResNet / ResNeXt (Hara et al. 2018) on clips (N, in_channels, T, H, W) float32 -> logits (N, K).

    ``forward_features`` gives the (N, feature_dim) average of stage 4 (feature_dim = 8 w e: 512 for
    ResNet-18/34, 2048 for ResNet-50/101 and ResNeXt-101 at w = 64).
    """

    input_dims = 3

    def __init__(self, config: ResNet3dConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else ResNet3dConfig()
        block = BasicBlock3d if cfg.block == "basic" else Bottleneck3d
        extra = {} if cfg.block == "basic" else {"groups": cfg.cardinality, "expansion": cfg.expansion}
        kernel, padding, pool = STEMS[cfg.stem]
        self.conv1 = nn.Conv3d(cfg.in_channels, cfg.width, kernel, stride=(1, 2, 2), padding=padding,
                               bias=False)
        self.bn1 = nn.BatchNorm3d(cfg.width)
        self.act = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1) if pool else nn.Identity()
        cin = cfg.width
        for i, (planes, count) in enumerate(zip(cfg.planes, cfg.blocks)):
            stage = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(block(cin, planes, stride, cfg.shortcut_type, "relu", **extra))
                cin = planes * cfg.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self._head(cin, cfg.num_classes, cfg.dropout)
