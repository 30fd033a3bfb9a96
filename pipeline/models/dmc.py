"""DMC-Net's generator and discriminator (Shou et al. 2019, "DMC-Net: Generating Discriminative Motion Cues
for Fast Compressed Video Action Recognition", §3.2, §3.3.2 and supplementary §7.2, Figure 6).

The generator refines the blocky, noisy compressed-domain motion vectors into a "discriminative motion cue"
(DMC) that resembles TV-L1 optical flow; a small 2D ResNet-18 (``build("resnet2d-18", in_channels=2)``)
classifies the DMC. The discriminator tells real flow from generated DMC for the adversarial loss (the
losses are in :mod:`pipeline.train.dmc`).

Generator (DMC-Net Table 2), on a P-frame's stacked motion vectors and residual (N, 5, H, W):

=====  ==================  ===========  ==============================================================
layer  input channels      filters      then
=====  ==================  ===========  ==============================================================
conv0  5  (MV 2 + R 3)      8            leaky ReLU 0.1
conv1  13 (+ conv0)         8            leaky ReLU 0.1
conv2  21 (+ conv1)         6            leaky ReLU 0.1
conv3  27 (+ conv2)         4            leaky ReLU 0.1
conv4  31 (+ conv3)         2            leaky ReLU 0.1
conv5  33 (+ conv4)         2            none; DMC = MV + conv5 (the MV shortcut)
=====  ==================  ===========  ==============================================================

Every conv is 3x3, stride 1, padding 1, with a bias, so the map keeps its size H x W (odd sizes too). The
layers are densely connected (Huang et al. 2017): each takes the concatenation of the input and of every
earlier layer's output. At 224 x 224 the generator costs 4,554 x 224^2 = 228.5 M multiply-adds (biases
left out), the paper's 0.23 "GFLOPs" (Table 1, which counts multiply-adds like He et al. 2016), and has
4,554 weights + 30 biases.

Discriminator (supplementary §7.2, Figure 6: "a stack of 2D convolutional layers with a two-way fully
connected layer at the end"): the authors' ``Discriminator3`` (facebookresearch/dmc-net, the class their GAN
runs select), twelve 3x3 convs with 16 to 128 filters, dropout and batch norm; see :class:`DMCDiscriminator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

#: the class index of each kind of input in the discriminator's (N, 2) logits
FAKE, REAL = 0, 1


def _positive_ints(name: str, values: tuple[int, ...]) -> tuple[int, ...]:
    """``values`` as a non-empty tuple of positive ints; a ValueError naming ``name`` otherwise."""
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of positive ints, got {values!r}") from None
    if not out or min(out) < 1 or any(isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    return out


def _positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class DMCGeneratorConfig:
    """The hyper-parameters of the DMC generator (DMC-Net §3.2, Table 2)."""

    in_mv: int = 2                  # motion-vector channels (x, y), first in the input; also the output's
    in_residual: int = 3            # residual channels (RGB), after the motion vectors
    filters: tuple[int, ...] = (8, 8, 6, 4, 2, 2)  # filters of conv0 .. conv5 (Table 2); the last = in_mv
    kernel_size: int = 3            # every conv: k x k, stride 1, padding k // 2 (Table 2: 3, 1, 1); odd
    negative_slope: float = 0.1     # leaky ReLU after every conv but the last (§3.2: 0.1)
    zero_init_last: bool = True     # conv5 starts at zero, so DMC = MV at first (ours; the paper is silent)

    def __post_init__(self) -> None:
        _positive_int("in_mv", self.in_mv)
        _positive_int("in_residual", self.in_residual)
        object.__setattr__(self, "filters", _positive_ints("filters", self.filters))
        if self.filters[-1] != self.in_mv:
            raise ValueError(f"the last layer's filters ({self.filters[-1]}) must equal in_mv "
                             f"({self.in_mv}): its output is added to the input motion vectors")
        _positive_int("kernel_size", self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the map keeps its size), got {self.kernel_size}")
        if float(self.negative_slope) < 0:
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope!r}")

    @property
    def in_channels(self) -> int:
        """Channels of the generator's input: ``in_mv + in_residual`` (5)."""
        return self.in_mv + self.in_residual

    @property
    def layer_in_channels(self) -> tuple[int, ...]:
        """Input channels of conv0 .. conv5 under dense connection: (5, 13, 21, 27, 31, 33) by default."""
        out, c = [], self.in_channels
        for f in self.filters:
            out.append(c)
            c += f
        return tuple(out)


def stack_input(mv: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """The generator's input (N, 5, H, W): motion vectors (N, 2, H, W) then the residual (N, 3, H, W), both
    already decoded to float by the caller (see :class:`DMCGenerator`). A ValueError when the batch or the
    spatial sizes differ."""
    if mv.dim() != 4 or residual.dim() != 4 or mv.shape[0] != residual.shape[0] \
            or mv.shape[2:] != residual.shape[2:]:
        raise ValueError(f"motion vectors {tuple(mv.shape)} and residual {tuple(residual.shape)} must be "
                         "(N, C, H, W) with the same N, H and W")
    return torch.cat([mv, residual.to(mv.dtype)], dim=1)


class DMCGenerator(nn.Module):
    """DMC-Net's generator: (N, 5, H, W) float -> DMC (N, 2, H, W) float, same dtype and device.

    Input channels 0-1 are the P-frame's motion vectors (x, y) **in pixels**, expanded to one vector per
    pixel (the stored per-cell grid repeated over its pixels, so the map is blocky); channels 2-4 are its
    residual (RGB). The module does no decoding or normalisation: the caller turns CoViAR's uint8
    encodings into floats first (motion vectors ``(q - 128) * bound / 127.5`` pixels, bound 20, i.e.
    :func:`pipeline.compressed.encoding.decode_mv`; residuals ``q - 128``). Any fixed residual scale works
    (the first conv absorbs it); ``(q - 128) / 128``, about [-1, 1], keeps it comparable to the motion
    vectors. The output is ``mv + conv5(...)``, so the DMC is in the motion vectors' units (pixels) and is
    compared with TV-L1 flow in pixels, with the same sign convention: the package's motion vectors are
    ``src - dst`` (:mod:`pipeline.compressed`), the negation of the forward flow from frame t-1 to t that
    :mod:`pipeline.flow` computes, so the caller negates one of the two (or takes the flow from t to t-1).
    H and W are any sizes >= 1 (every conv keeps them).

    ``convs[i]`` is Table 2's conv``i``; ``acts[i]`` is the leaky ReLU after ``convs[i]`` (one fewer than
    the convs: none after the last). Initialisation: Kaiming-normal (fan in, leaky-ReLU gain) weights and
    zero biases, and the last conv all zero when ``config.zero_init_last`` (so the DMC starts equal to the
    motion vectors); deterministic given ``torch.manual_seed``.
    """

    def __init__(self, config: DMCGeneratorConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else DMCGeneratorConfig()
        k = cfg.kernel_size
        self.convs = nn.ModuleList(nn.Conv2d(cin, f, k, stride=1, padding=k // 2)
                                   for cin, f in zip(cfg.layer_in_channels, cfg.filters))
        self.acts = nn.ModuleList(nn.LeakyReLU(cfg.negative_slope) for _ in cfg.filters[:-1])
        self.reset_parameters()

    @property
    def last_conv(self) -> nn.Conv2d:
        """conv5: its output is the refinement added to the motion vectors."""
        return self.convs[-1]

    def reset_parameters(self) -> None:
        """Kaiming-normal weights (fan in, leaky-ReLU gain at ``negative_slope``), zero biases; the last conv
        zero when ``config.zero_init_last``."""
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, a=self.config.negative_slope, mode="fan_in",
                                    nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        if self.config.zero_init_last:
            nn.init.zeros_(self.last_conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """DMC (N, in_mv, H, W) of a stacked input (N, in_mv + in_residual, H, W): ``x[:, :in_mv]`` plus the
        last conv's output. A ValueError for another rank or channel count."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"DMCGenerator takes (N, {cfg.in_channels}, H, W) (motion vectors then "
                             f"residual), got {tuple(x.shape)}")
        features = x
        for conv, act in zip(self.convs[:-1], self.acts):
            features = torch.cat([features, act(conv(features))], dim=1)
        return x[:, :cfg.in_mv] + self.last_conv(features)


#: pixels per unit of the authors' normalised flow: dense_flow stores TV-L1 flow as uint8 with bound 20 px
#: (2 x 20 px over 255 levels) and their loader maps a level q to ``(q / 255 - 0.5) / 0.226`` (0.226 = the
#: mean of ImageNet's std), so one unit is 2 x 20 x 0.226 = 9.04 px; their MVs share that unit
#: (facebookresearch/dmc-net @ 323d160, code/dmcnet_GAN/dataset.py:196-200, 253-264)
AUTHORS_FLOW_UNIT_PX = 2 * 20 * (0.229 + 0.224 + 0.225) / 3


@dataclass(frozen=True)
class DMCDiscriminatorConfig:
    """The hyper-parameters of the DMC discriminator: the authors' ``Discriminator3`` by default
    (facebookresearch/dmc-net @ 323d160, code/dmcnet_GAN/model.py:254-279 and 332-366; see
    :class:`DMCDiscriminator`)."""

    in_channels: int = 2            # flow-like maps (x, y) in pixels: TV-L1 flow (real) or DMC (fake)
    filters: tuple[int, ...] = (16, 32, 64, 128)  # filters of each stage (model.py:336-347)
    convs_per_stage: int = 3        # a stride-2 conv then (n - 1) stride-1 convs a stage (Discriminator3: 3;
                                    # the authors' Discriminator / 2 / 5 have 1 / 2 / 5)
    kernel_size: int = 3            # every conv k x k, padding k // 2 (model.py:256, 270: 3, padding 1); odd
    negative_slope: float = 0.2     # leaky ReLU after every conv (model.py:257, 271)
    dropout: float = 0.25           # channel dropout (Dropout2d) after every activation (model.py:258, 272)
    batch_norm: bool = True         # batch norm after the dropout of every conv but the first (model.py:264,
                                    # 278; the first block is built with bn=False, model.py:336)
    bn_eps: float = 0.8             # the authors' BatchNorm2d(out, 0.8): the positional 0.8 is eps
    pool_size: int = 14             # adaptive average pooling to pool_size x pool_size before the linear
                                    # layer (ours): the authors' Linear(128*14*14, 2) fits only 224 x 224
                                    # inputs, whose last map is 14 x 14 (the pooling is then the identity)
    input_scale: float = 1 / AUTHORS_FLOW_UNIT_PX  # input (pixels) x this = the authors' units (px / 9.04):
                                    # batch norm with eps 0.8 is not scale-invariant, so the scale matters
    num_classes: int = 2            # the two-way linear layer: index 0 = fake (DMC), 1 = real (flow)

    def __post_init__(self) -> None:
        _positive_int("in_channels", self.in_channels)
        object.__setattr__(self, "filters", _positive_ints("filters", self.filters))
        _positive_int("convs_per_stage", self.convs_per_stage)
        _positive_int("kernel_size", self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (padding kernel_size // 2), got {self.kernel_size}")
        if float(self.negative_slope) < 0:
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not float(self.bn_eps) > 0:
            raise ValueError(f"bn_eps must be > 0, got {self.bn_eps!r}")
        _positive_int("pool_size", self.pool_size)
        if not (math.isfinite(float(self.input_scale)) and float(self.input_scale) > 0):
            raise ValueError(f"input_scale must be a finite number > 0, got {self.input_scale!r}")
        _positive_int("num_classes", self.num_classes)

    @property
    def num_convs(self) -> int:
        """Number of convolutions: ``len(filters) * convs_per_stage`` (12 by default)."""
        return len(self.filters) * self.convs_per_stage

    @property
    def conv_filters(self) -> tuple[int, ...]:
        """Output channels of every conv in order: (16, 16, 16, 32, 32, 32, 64, ..., 128) by default."""
        return tuple(f for f in self.filters for _ in range(self.convs_per_stage))

    @property
    def conv_strides(self) -> tuple[int, ...]:
        """Stride of every conv in order: 2 for the first of each stage, 1 for the others."""
        return tuple(2 if j == 0 else 1 for _ in self.filters for j in range(self.convs_per_stage))

    @property
    def fc_in_features(self) -> int:
        """Inputs of the linear layer: ``filters[-1] * pool_size ** 2`` (128 x 14 x 14 = 25,088)."""
        return self.filters[-1] * self.pool_size ** 2

    def out_size(self, size: int) -> int:
        """The side of the last conv's map for an input side ``size`` (14 for 224, 3 for 40): each stage's
        stride-2 conv maps n to ceil(n / 2), its stride-1 convs keep the size."""
        p = self.kernel_size // 2
        for s in self.conv_strides:
            size = (size + 2 * p - self.kernel_size) // s + 1
        return size

    @property
    def min_size(self) -> int:
        """The smallest input side the convs accept: 1 (a stride-2 conv with padding k // 2 never empties a
        map); the adaptive pooling then brings any last map to ``pool_size`` x ``pool_size``."""
        size = 1
        while self.out_size(size) < 1:
            size += 1
        return size


class DMCDiscriminator(nn.Module):
    """DMC-Net's discriminator: flow-like maps (N, 2, H, W) float (pixels) -> logits (N, 2), class 0 = fake
    (generated DMC), class 1 = real (TV-L1 flow); softmax gives P_D (DMC-Net §3.3.2, eq. 2-3).

    It follows the authors' ``Discriminator3``, the one their GAN runs select (``--arch_d Discriminator3``,
    exp_my/hmdb51_gan/split1/run.sh:22 of facebookresearch/dmc-net @ 323d160; layers at
    code/dmcnet_GAN/model.py:332-366, blocks at :254-279). Their network also ends in 2 logits (no sigmoid)
    trained with cross-entropy, with the same indices: the fake half of the batch is labelled 0 and the real
    half 1 (code/dmcnet_GAN/train.py:252-256, 274). Twelve 3x3 convs (padding 1, with biases), four stages of
    three, each conv followed by leaky ReLU 0.2, then Dropout2d 0.25, then (all but the first) batch norm
    with eps 0.8, in that order:

    ======  =================================  ======  ==================  =================================
    block   conv (in -> out, 3x3, padding 1)   stride  out at 224 (40)     then
    ======  =================================  ======  ==================  =================================
    0       2 -> 16                            2       16 x 112 (20)       LReLU 0.2, Dropout2d 0.25 (no BN)
    1, 2    16 -> 16                           1       16 x 112 (20)       LReLU 0.2, Dropout2d 0.25, BN
    3       16 -> 32                           2       32 x 56 (10)        LReLU 0.2, Dropout2d 0.25, BN
    4, 5    32 -> 32                           1       32 x 56 (10)        LReLU 0.2, Dropout2d 0.25, BN
    6       32 -> 64                           2       64 x 28 (5)         LReLU 0.2, Dropout2d 0.25, BN
    7, 8    64 -> 64                           1       64 x 28 (5)         LReLU 0.2, Dropout2d 0.25, BN
    9       64 -> 128                          2       128 x 14 (3)        LReLU 0.2, Dropout2d 0.25, BN
    10, 11  128 -> 128                         1       128 x 14 (3)        LReLU 0.2, Dropout2d 0.25, BN
    pool    adaptive average to 14 x 14        -       128 x 14 x 14       flatten (channel-major)
    fc      linear 25,088 -> 2                 -       2 logits            none
    ======  =================================  ======  ==================  =================================

    (model.py:336-347 build the blocks 0-11, :348 the linear layer, :363-364 flatten and apply it.)

    Differences from the authors' code, kept small on purpose:

    * ``pool`` is ours. The authors' ``Linear(128*14*14, 2)`` works only at 224 x 224; adaptive average
      pooling to 14 x 14 keeps their linear layer (and parameter count) and is the identity at 224, so any
      H, W >= ``config.min_size`` (1) work, e.g. the demo's 40 x 40 (a 3 x 3 map, each value repeated over
      the 14 x 14 grid).
    * The input is in pixels, as the rest of motionprep; it is multiplied by ``config.input_scale``
      (1 / 9.04 by default) so the network sees the authors' units (their flow and DMC are ``px / 9.04``).
    * The authors pass fake and real maps as one concatenated batch (code/dmcnet_GAN/model.py:557), so batch
      norm normalises them together; a caller that calls this module on each separately normalises each
      on its own.

    Initialisation: PyTorch's defaults, as the authors (they set none; their stage-2 run starts the
    discriminator fresh). At 224 x 224: 278,175,744 conv multiply-adds + 50,176 in ``fc`` (0.28 G), and
    541,042 parameters (489,456 conv, 1,408 batch norm, 50,178 linear). ``blocks[i]`` is block ``i``
    (``nn.Sequential`` of conv, leaky ReLU, dropout[, batch norm]), ``pool`` the pooling, ``fc`` the two-way
    layer.
    """

    def __init__(self, config: DMCDiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else DMCDiscriminatorConfig()
        k = cfg.kernel_size
        blocks: list[nn.Module] = []
        cin = cfg.in_channels
        for i, (f, s) in enumerate(zip(cfg.conv_filters, cfg.conv_strides)):
            layers: list[nn.Module] = [nn.Conv2d(cin, f, k, stride=s, padding=k // 2),
                                       nn.LeakyReLU(cfg.negative_slope), nn.Dropout2d(cfg.dropout)]
            if cfg.batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(f, eps=cfg.bn_eps))
            blocks.append(nn.Sequential(*layers))
            cin = f
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(cfg.pool_size)
        self.fc = nn.Linear(cfg.fc_in_features, cfg.num_classes)

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation of every conv, batch norm and the linear layer (the authors' own
        choice: they set none). Deterministic given ``torch.manual_seed``."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of flow-like maps (N, in_channels, H, W) in pixels, H, W >=
        ``config.min_size``; a ValueError for another rank or channel count, or a map too small."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"DMCDiscriminator takes (N, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[2:]) < cfg.min_size:
            raise ValueError(f"DMCDiscriminator needs H, W >= {cfg.min_size}, got {tuple(x.shape[2:])}")
        x = x * cfg.input_scale
        for block in self.blocks:
            x = block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


@dataclass(frozen=True)
class DMCNetConfig:
    """DMC-Net's test-time network: the generator, then a 2D classifier on the (N, 2, H, W) cue."""

    classifier: str = "resnet2d-18"              # DMC-Net 3.1: ResNet-18 on the DMC
    num_classes: int = 400
    in_channels: int = 5                         # must be the generator's: 2 MV + 3 residual channels
    width: int | None = None                     # classifier's first-stage channels (None: its own)
    layers: tuple[int, ...] | None = None        # classifier's blocks per stage (None: its own)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.in_channels != DMCGeneratorConfig().in_channels:
            raise ValueError(f"DMC-Net takes {DMCGeneratorConfig().in_channels} input channels (2 MV + 3 "
                             f"residual), not {self.in_channels}")


class DMCNet(nn.Module):
    """Generator + classifier with the interface of :class:`pipeline.models.base.Classifier`:
    ``forward_features(x)`` is the classifier's pooled feature of the DMC of ``x`` (N, 5, H, W), ``classify``
    and ``fc`` are the classifier's; :meth:`forward_parts` also returns the DMC itself (N, 2, H, W) in
    pixels, for the flow MSE and the discriminator."""

    input_dims = 2

    def __init__(self, config: DMCNetConfig | None = None) -> None:
        super().__init__()
        from . import build                       # the registry imports this module

        self.config = config or DMCNetConfig()
        self.generator = DMCGenerator()
        self.classifier = build(self.config.classifier, in_channels=2, num_classes=self.config.num_classes,
                                width=self.config.width, layers=self.config.layers, dropout=self.config.dropout)
        if self.classifier.input_dims != 2:
            raise ValueError(f"DMC-Net's classifier must be a 2D network, not {self.config.classifier}")
        self.feature_dim = self.classifier.feature_dim

    @property
    def fc(self) -> nn.Linear:
        """The classifier's last layer (a view, not a second registration: state dicts name it once)."""
        return self.classifier.fc

    @property
    def last_block(self) -> nn.Module:
        return self.classifier.last_block

    #: the classifier sees the DMC detached, so its cross-entropy trains the classifier alone (the authors'
    #: code in its first stage, facebookresearch/dmc-net code/dmcnet/model.py:352); the trainer sets it per phase
    detach_cue: bool = False

    def forward_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, feature_dim), DMC (N, 2, H, W)) of the stacked input (N, 5, H, W)."""
        cue = self.generator(x)
        return self.classifier.forward_features(cue.detach() if self.detach_cue else cue), cue

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_parts(x)[0]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.classify(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x))


__all__ = ["AUTHORS_FLOW_UNIT_PX", "DMCNet", "DMCNetConfig", "DMCDiscriminator", "DMCDiscriminatorConfig",
           "DMCGenerator", "DMCGeneratorConfig", "FAKE", "REAL", "stack_input"]
