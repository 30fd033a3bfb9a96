"""VGG-11/13/16/19 (Simonyan & Zisserman 2015, configurations A, B, D, E; torchvision's layout) for any
number of input channels.

K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015.
VGG-16 (configuration D) is Hidden Two-Stream's temporal stream (Zhu et al. 2018: the flow MotionNet predicts,
stacked over 10 frames as 20 channels of x and y). For an image (N, C, H, W), VGG-16 at w = 64:

====== ============================================================= ===========================
stage  layers                                                        output (224 x 224)
====== ============================================================= ===========================
1      2 x (conv 3x3, pad 1, w channels; [BN]; ReLU); max-pool 2x2     w x 112 x 112
2      2 x conv 3x3 (2w); max-pool 2x2                                2w x 56 x 56
3      3 x conv 3x3 (4w); max-pool 2x2                                4w x 28 x 28
4      3 x conv 3x3 (8w); max-pool 2x2                                8w x 14 x 14
5      3 x conv 3x3 (8w); max-pool 2x2 (``last_block``)               8w x 7 x 7
pool   adaptive average pool to ``pool_size`` x ``pool_size`` (7)      8w x 7 x 7
fc6    linear 8w 7 7 -> hidden (4096); ReLU; dropout                   hidden
fc7    linear hidden -> hidden; ReLU: **the feature**                  hidden (``feature_dim``)
head   dropout; linear ``fc`` (fc8)                                    num_classes
====== ============================================================= ===========================

VGG-11/13/19 have 1-1-2-2-2, 2-2-2-2-2 and 2-2-4-4-4 convs in the five stages. Every conv has a bias; with
``batch_norm`` (off by default, as in the paper) a BN follows each conv (torchvision's ``vgg16_bn``).

The classifier interface: ``forward_features`` is the output of fc7 after its ReLU, the input of the final
linear layer (4096-d), taken before the last dropout, so ``forward(x) == classify(forward_features(x))``
holds in training too (torchvision's order: fc7, ReLU, dropout, fc8). ``last_block`` is the last conv stage
(its convs, activations and max-pool: ``features[24:31]`` of VGG-16 without BN), a view of ``features``
whose parameters are not registered twice.

Module names are torchvision's ``vgg*`` state_dict keys: ``features.N`` (the same indices: conv, [BN,] ReLU
per conv, a max-pool per stage), ``classifier.0`` (fc6) and ``classifier.3`` (fc7) keep their names and
``classifier.6`` (fc8) is ``fc``; ImageNet weights load after renaming ``classifier.6.*`` -> ``fc.*`` (a
different ``in_channels`` or class count needs ``features.0`` / ``fc`` replaced).

Initialisation as torchvision's: convs Kaiming-normal (fan out, ReLU gain) with zero bias, BN weight 1 and
bias 0, linear layers N(0, 0.01) with zero bias. VGG-16 at 224 x 224 with 1000 classes: 138,357,544 parameters
(Simonyan & Zisserman Table 2: 138 M; torchvision's docs: 138,357,544) and 15.47 G multiply-adds (torchvision:
15.47 "GFLOPS"; the usual 15.5 G).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Classifier, check_common

#: depth -> convs per stage (Simonyan & Zisserman Table 1: configurations A, B, D, E)
DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


@dataclass(frozen=True)
class VGGConfig:
    """The hyper-parameters of a VGG network (Simonyan & Zisserman 2015; torchvision's implementation)."""

    depth: int = 16                 # 11/13/16/19: configurations A/B/D/E (Table 1); Hidden Two-Stream: 16
    in_channels: int = 3            # input channels: 3 RGB; 20 stacked flow (x, y of 10 frames); any
    num_classes: int = 400          # classifier outputs (ImageNet's 1000 in the paper)
    width: int = 64                 # channels of stage 1; stages 2-5: 2w, 4w, 8w, 8w (64 in the paper)
    hidden: int = 4096              # width of fc6 and fc7, the feature (4096 in the paper; tests use 16)
    dropout: float = 0.5            # dropout after fc6 and before fc (the paper's 0.5)
    batch_norm: bool = False        # a BN after every conv (torchvision's vgg*_bn; not in the paper)
    pool_size: int = 7              # side of the adaptive average pool before fc6 (torchvision: 7)

    def __post_init__(self) -> None:
        if self.depth not in DEPTHS:
            raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {self.depth!r}")
        check_common(self)
        for name in ("hidden", "pool_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be a bool, got {self.batch_norm!r}")

    @property
    def stages(self) -> tuple[tuple[int, int], ...]:
        """(convs, channels) of each of the five stages."""
        widths = (self.width, 2 * self.width, 4 * self.width, 8 * self.width, 8 * self.width)
        return tuple(zip(DEPTHS[self.depth], widths))


class VGG(Classifier):
    """VGG on images (N, in_channels, H, W) float32 -> logits (N, K); ``forward_features`` gives fc7's output
    after ReLU, (N, hidden). H and W must be at least 32 (five 2x2 max-pools that floor, as torchvision's)."""

    input_dims = 2

    def __init__(self, config: VGGConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else VGGConfig()
        layers: list[nn.Module] = []
        cin = cfg.in_channels
        for i, (convs, cout) in enumerate(cfg.stages):
            if i == len(cfg.stages) - 1:
                self._last_start = len(layers)
            for _ in range(convs):
                layers.append(nn.Conv2d(cin, cout, 3, padding=1))
                if cfg.batch_norm:
                    layers.append(nn.BatchNorm2d(cout))
                layers.append(nn.ReLU(inplace=True))
                cin = cout
            layers.append(nn.MaxPool2d(2, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(cfg.pool_size)
        self.classifier = nn.Sequential(                     # torchvision's classifier.0 .. classifier.4
            nn.Linear(cin * cfg.pool_size ** 2, cfg.hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(cfg.dropout)               # torchvision's classifier.5
        self.fc = nn.Linear(cfg.hidden, cfg.num_classes)     # torchvision's classifier.6
        self.feature_dim = cfg.hidden
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def first_layer(self) -> nn.Module:
        """The first conv (``features[0]``) and, with ``batch_norm``, its BN (``features[1]``)."""
        return self.features[:2] if self.config.batch_norm else self.features[0]

    @property
    def last_block(self) -> nn.Module:
        """The last conv stage (a view of ``features``: its convs, [BNs,] ReLUs and max-pool)."""
        return self.features[self._last_start:]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7's output after ReLU, (N, hidden): the convs, the adaptive pool, fc6 (ReLU, dropout), fc7
        (ReLU)."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
