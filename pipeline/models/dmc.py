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

Discriminator (supplementary Figure 6): a stack of 2D convolutions ending in a two-way linear layer; see
:class:`DMCDiscriminator` for the layers (the figure's numbers are not in the paper's text, so they are our
DCGAN-style choice).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class DMCDiscriminatorConfig:
    """The hyper-parameters of the DMC discriminator (DMC-Net supplementary §7.2, Figure 6; the numbers are
    ours, DCGAN's discriminator (Radford et al. 2016) with a two-way linear layer, see
    :class:`DMCDiscriminator`)."""

    in_channels: int = 2            # flow-like maps (x, y) in pixels: TV-L1 flow (real) or DMC (fake)
    filters: tuple[int, ...] = (64, 128, 256, 512)  # filters of each conv (DCGAN: 64 doubling, 4 layers)
    kernel_size: int = 4            # every conv: k x k (DCGAN: 4)
    stride: int = 2                 # every conv halves the map (DCGAN: 2)
    padding: int = 1                # (DCGAN: 1): 224 -> 112 -> 56 -> 28 -> 14
    negative_slope: float = 0.2     # leaky ReLU after every conv (DCGAN: 0.2)
    batch_norm: bool = True         # batch norm after every conv but the first (DCGAN)
    num_classes: int = 2            # the two-way linear layer: index 0 = fake (DMC), 1 = real (flow)

    def __post_init__(self) -> None:
        _positive_int("in_channels", self.in_channels)
        object.__setattr__(self, "filters", _positive_ints("filters", self.filters))
        _positive_int("kernel_size", self.kernel_size)
        _positive_int("stride", self.stride)
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"padding must be an int >= 0, got {self.padding!r}")
        if self.padding > self.kernel_size // 2:
            raise ValueError(f"padding ({self.padding}) must be at most kernel_size // 2 "
                             f"({self.kernel_size // 2})")
        if float(self.negative_slope) < 0:
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope!r}")
        _positive_int("num_classes", self.num_classes)

    def out_size(self, size: int) -> int:
        """The side of the last conv's map for an input side ``size`` (14 for 224 by default)."""
        for _ in self.filters:
            size = (size + 2 * self.padding - self.kernel_size) // self.stride + 1
        return size

    @property
    def min_size(self) -> int:
        """The smallest input side the convs accept (16 by default: the last map is 1 x 1)."""
        size = 1
        while self.out_size(size) < 1:
            size += 1
        return size


class DMCDiscriminator(nn.Module):
    """DMC-Net's discriminator: flow-like maps (N, 2, H, W) float (pixels) -> logits (N, 2), class 0 = fake
    (generated DMC), class 1 = real (TV-L1 flow); softmax gives P_D (DMC-Net §3.3.2, eq. 2-3).

    The paper (supplementary §7.2, Figure 6) says only that the discriminator is "a stack of 2D
    convolutional layers with a two-way fully connected layer at the end", derived from the discriminators
    of a popular GAN repository by varying filters and depth; the figure's per-layer numbers (#filters,
    kernel, stride, padding) are not in its text. We therefore use DCGAN's discriminator (Radford et al.
    2016), the standard of such repositories, with the two-way linear layer in place of its last conv and
    sigmoid:

    ======  ====================================================  ==========================
    layer   operation                                             output at 224 x 224
    ======  ====================================================  ==========================
    conv0   64 filters, 4x4, stride 2, padding 1; leaky ReLU 0.2   64 x 112 x 112
    conv1   128, 4x4, 2, 1; batch norm; leaky ReLU 0.2             128 x 56 x 56
    conv2   256, 4x4, 2, 1; batch norm; leaky ReLU 0.2             256 x 28 x 28
    conv3   512, 4x4, 2, 1; batch norm; leaky ReLU 0.2             512 x 14 x 14
    pool    global average (adaptive), so any H, W >= 16 works     512
    fc      linear 512 -> 2                                        2 logits
    ======  ====================================================  ==========================

    Convs carry a bias only where no batch norm follows. DCGAN's initialisation: conv weights N(0, 0.02),
    batch-norm weights N(1, 0.02) and biases 0; the linear layer keeps PyTorch's default. At 224 x 224 it
    costs about 1.26 G multiply-adds. With batch norm, real and fake batches passed separately are normalised
    separately (as in DCGAN's training); ``batch_norm=False`` avoids that. ``features`` is the conv stack,
    ``avgpool`` the pooling, ``fc`` the two-way layer.
    """

    def __init__(self, config: DMCDiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else DMCDiscriminatorConfig()
        layers: list[nn.Module] = []
        cin = cfg.in_channels
        for i, f in enumerate(cfg.filters):
            norm = cfg.batch_norm and i > 0
            layers.append(nn.Conv2d(cin, f, cfg.kernel_size, stride=cfg.stride, padding=cfg.padding,
                                    bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(f))
            layers.append(nn.LeakyReLU(cfg.negative_slope))
            cin = f
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, cfg.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DCGAN's initialisation: conv weights N(0, 0.02) and biases 0, batch norm weights N(1, 0.02) and
        biases 0; ``fc`` PyTorch's default. Deterministic given ``torch.manual_seed``."""
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 2) of flow-like maps (N, in_channels, H, W), H, W >= ``config.min_size`` (16); a
        ValueError for another rank or channel count, or a map too small."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"DMCDiscriminator takes (N, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[2:]) < cfg.min_size:
            raise ValueError(f"DMCDiscriminator needs H, W >= {cfg.min_size}, got {tuple(x.shape[2:])}")
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


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

    def forward_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, feature_dim), DMC (N, 2, H, W)) of the stacked input (N, 5, H, W)."""
        cue = self.generator(x)
        return self.classifier.forward_features(cue), cue

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_parts(x)[0]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.classify(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x))


__all__ = ["DMCNet", "DMCNetConfig", "DMCDiscriminator", "DMCDiscriminatorConfig", "DMCGenerator", "DMCGeneratorConfig", "FAKE", "REAL",
           "stack_input"]
