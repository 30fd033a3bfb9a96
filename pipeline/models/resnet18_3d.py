"""ResNet-18-3D of the residual-frames paper: Hara's 3D ResNet-18 with max-pool downsampling and ELU.

L. Tao, X. Wang, T. Yamasaki, "Rethinking Motion Representation: Residual Frames with 3D ConvNets for Better
Action Recognition" (the motion path of the residual-frame two-path network). What the paper says:

* §3.2: "In the original ResNet-18-3D [Hara], convolution with stride is used at the beginning of several
  residual blocks to perform down-sampling. We attempt another version of residual blocks which uses
  max-pooling layers at the end of each corresponding blocks. These two versions have almost the same
  network parameters." §4.3 repeats it: stride at the beginning of some blocks, or max-pooling at the end of
  the corresponding blocks instead.
* §5.1 and Table 1: replacing ReLU with ELU adds 2.6 to 3.3 points; "we use ResNet-18 with max-pooling
  layers as our default model version" (with ELU: 72.4 % from scratch on UCF101 split 1, residual input).
* Inputs 16 x 112 x 112 residual clips (|frame_i - frame_i+1| of RGB, 3 channels).

What the paper leaves open, and the reading taken here (the closest to the text):

* Which blocks: "the corresponding blocks" are the ones Hara's network strides in, the first block of
  stages 2, 3 and 4. Those blocks run at stride 1 and end with a max-pool of stride 2 in T, H and W, after
  the residual sum and its activation. The stem (7x7x7 conv, stride (1, 2, 2), and its 3x3x3 max-pool) is
  Hara's, unchanged.
* The pool: kernel 3, stride 2, padding 1 (``pool_kernel=3``), the kernel of Hara's stem pool and the size
  rule of a strided 3x3x3 conv, so every feature map has the same size as in the stride version
  (16x112x112 -> 512 x 1 x 4 x 4 before the global pool). ``pool_kernel=2`` (no padding, ceil mode: the
  same sizes) is the other common choice.
* The shortcut: type A as in Hara's ResNet-18, which the paper fine-tunes from ("the network architecture
  remains the same as [9]"); in the pool version it only zero-pads the new channels (no subsampling: the
  block's pool does that). Both versions then have exactly the same parameters (33.2 M at 400 classes);
  "almost the same" in the paper allows for either shortcut type.
* ELU (alpha 1) replaces every ReLU, the stem's included; the initialisation stays Hara's.
* The cost of the pool version: stage 2-4's first blocks compute their first conv at the full, not the
  halved, resolution: 14.6 G instead of 8.3 G multiply-adds at 16x112x112 (:func:`~.summary.summarize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import ACTIVATIONS, Classifier, activation, check_common, check_layers
from .resnet3d import SHORTCUTS, BasicBlock3d

DOWNSAMPLES = ("pool", "stride")


@dataclass(frozen=True)
class ResNet18Elu3dConfig:
    """The hyper-parameters of the residual-frames ResNet-18-3D (Tao et al., §3.2, §5.1)."""

    in_channels: int = 3            # input channels: 3 residual frames of RGB (Tao §3.1), 2 flow; any
    num_classes: int = 400          # classifier outputs (Tao: 101 UCF101, 51 HMDB51, 200 Mini-Kinetics)
    width: int = 64                 # channels of conv1 and stage 1 (64 in Hara's ResNet-18; tests use 8)
    layers: tuple[int, int, int, int] | None = None  # basic blocks per stage; None = ResNet-18's (2, 2, 2, 2)
    downsample: str = "pool"        # "pool": stride-1 blocks ending in a max-pool (Tao's default, §5.1);
                                    # "stride": Hara's strided first conv (Tao Table 1's other version)
    activation: str = "elu"         # "elu" (Tao §5.1: +2.6 / +3.3 points) or "relu" (Hara)
    shortcut: str = "A"             # "A" zero-pad identity (Hara's ResNet-18) or "B" 1x1x1 conv + BN
    pool_kernel: int = 3            # downsampling max-pool kernel: 3 (padding 1, Hara's stem pool) or 2 (our
                                    # reading; the paper does not say)
    dropout: float = 0.0            # dropout probability before the classifier (the paper does not say: none)

    def __post_init__(self) -> None:
        check_common(self)
        object.__setattr__(self, "layers", check_layers(self.layers))
        if self.downsample not in DOWNSAMPLES:
            raise ValueError(f"downsample must be one of {DOWNSAMPLES}, got {self.downsample!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
        if self.pool_kernel not in (2, 3):
            raise ValueError(f"pool_kernel must be 2 or 3, got {self.pool_kernel!r}")

    @property
    def blocks(self) -> tuple[int, int, int, int]:
        """Blocks per stage: ``layers``, or ResNet-18's (2, 2, 2, 2)."""
        return self.layers if self.layers is not None else (2, 2, 2, 2)


class PooledBasicBlock3d(BasicBlock3d):
    """A stride-1 basic block followed by a max-pool of stride 2 in T, H and W (after the sum and activation):
    (N, cin, T, H, W) -> (N, planes, ceil(T/2), ceil(H/2), ceil(W/2)) with either kernel (kernel 2 pools
    in ceil mode), the sizes of a strided 3x3x3 conv."""

    def __init__(self, cin: int, planes: int, shortcut: str, act: str, pool_kernel: int) -> None:
        super().__init__(cin, planes, 1, shortcut, act)
        self.pool = nn.MaxPool3d(pool_kernel, stride=2, padding=pool_kernel // 2 if pool_kernel == 3 else 0,
                                 ceil_mode=pool_kernel == 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(super().forward(x))


class ResNet18Elu3d(Classifier):
    """The residual-frames ResNet-18-3D on clips (N, in_channels, T, H, W) float32 -> logits (N, K);
    ``forward_features`` gives the (N, 8 * width) average of stage 4 (512 at width 64)."""

    input_dims = 3

    def __init__(self, config: ResNet18Elu3dConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else ResNet18Elu3dConfig()
        self.conv1 = nn.Conv3d(cfg.in_channels, cfg.width, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(cfg.width)
        self.act = activation(cfg.activation)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        cin = cfg.width
        for i, count in enumerate(cfg.blocks):
            planes = cfg.width * 2 ** i
            stage: list[nn.Module] = []
            for j in range(count):
                if i > 0 and j == 0 and cfg.downsample == "pool":
                    stage.append(PooledBasicBlock3d(cin, planes, cfg.shortcut, cfg.activation,
                                                    cfg.pool_kernel))
                else:
                    stride = 2 if i > 0 and j == 0 else 1
                    stage.append(BasicBlock3d(cin, planes, stride, cfg.shortcut, cfg.activation))
                cin = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self._head(cin, cfg.num_classes, cfg.dropout)
