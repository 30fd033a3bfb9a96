"""Hidden Two-Stream's MotionNet (Zhu et al. 2018, "Hidden Two-Stream Convolutional Networks for Action
Recognition", §3.1) and the flow normalization of its stacked temporal stream (§3.2).

MotionNet estimates optical flow from raw frames and is trained without supervision (the losses are in
:mod:`pipeline.train.unsupervised`). It takes ``frames`` consecutive RGB frames stacked on the channels
(§3.2: 11 frames, so 10 flows) and predicts the ``frames - 1`` flows between neighbours at 5 scales. The
paper's good practices (§3.1, ablated in §5.1 Table 2): 3x3 kernels throughout, no striding in the first two
convolutions, strided convolutions instead of pooling, a loss at each of five scales (flow2 .. flow6), and an
extra convolution between the deconvolutions of the expanding part. The layer table itself is in the paper's
supplementary material, which we do not have: the widths below are FlowNetS's (Fischer et al. 2015, which
the paper says the structure resembles), with a stride-1 level in front. For an input (N, 3 F, H, W),
``w = width`` (64), ``K = F - 1`` flows (10), each conv followed by a leaky ReLU (0.1):

=========  ==========================================  ========  ======  ===================
level      layers (k x k, stride)                       channels  stride  output grid
=========  ==========================================  ========  ======  ===================
0          conv1 3x3 s1, conv1_1 3x3 s1                 w         1       H
1          conv2 3x3 s2, conv2_1 3x3 s1                 2w        2       H/2
2          conv3 3x3 s2, conv3_1 3x3 s1                 4w        2       H/4
3          conv4 3x3 s2, conv4_1 3x3 s1                 8w        2       H/8
4          conv5 3x3 s2, conv5_1 3x3 s1                 8w        2       H/16
5          conv6 3x3 s2, conv6_1 3x3 s1                 16w       2       H/32
flow6      predict 3x3 on conv6_1 (no activation)       2K        -       H/32
up 5       deconv5 4x4 s2 on conv6_1                    8w        1/2     H/16
xconv5     3x3 on [conv5_1, deconv5, up(flow6)]         8w        1       H/16   -> flow5
up 4       deconv4 on xconv5; xconv4 on [conv4_1, ...]  4w        1/2     H/8    -> flow4
up 3       deconv3 on xconv4; xconv3 on [conv3_1, ...]  2w        1/2     H/4    -> flow3
up 2       deconv2 on xconv3; xconv2 on [conv2_1, ...]  w         1/2     H/2    -> flow2
=========  ==========================================  ========  ======  ===================

``up(flow)`` is the coarser prediction bilinearly upsampled x2 (no parameters). With the defaults (w = 64,
11 frames) the network has 42.3 M parameters, 169 MB in float32: the paper's §3.1 footprint is "170M".
Choices where the paper is silent: the widths (FlowNetS's), the leaky ReLU (FlowNet's), no batch norm
(FlowNetS has none), the 4x4 stride-2 transposed convolutions (FlowNet's; a 3x3 one has uneven overlap and
needs an output padding, ``deconv_kernel=3`` gives it), the bilinear flow upsampling, the input centring
(``x - 0.5``), and predictions starting at zero (``zero_init_flow``: the first warp is the identity).

Output: a list of ``scales`` (5) flows, **coarse to fine** (``flows[0]`` is flow6 at H/32, ``flows[-1]`` is
flow2 at H/2, the finest), each (N, 2 K, H/s, W/s) float with s = 32, 16, 8, 4, 2. Channels ``2k, 2k+1`` are
the x (right positive) and y (down positive) components of flow ``k``, from frame ``k`` to frame ``k + 1``,
in **pixels of the input resolution at every scale** and with the package's TV-L1 convention
(:mod:`pipeline.flow`): ``frame_k(p) ~ frame_{k+1}(p + flow_k(p))``. To warp the frames downsampled by s,
divide that scale's flow by s; to use a coarse flow at full resolution, upsample it
(:func:`upsample_flow`) without rescaling the values. ``flows[-1]`` can so be compared with the stored TV-L1
flow (end-point error in input pixels) once upsampled to H x W. The network's raw predictions are in units
of ``flow_scale`` (20) input pixels (FlowNet's 1/20 scaling), which keeps them near 1.

H and W must be multiples of ``2 ** scales`` (32 by default: 224 and 128 are, the data pipeline's default
112 x 112 crop is not; take ``scales=4`` (multiples of 16) or another crop); other sizes are a ValueError.

Stacked temporal stream (§3.2): MotionNet, then :class:`FlowNormalization` (clip to ±20 px, map to 0-255
as the stored TV-L1 JPEGs, subtract the data pipeline's flow mean), then the existing flow network::

    motionnet = MotionNet(MotionNetConfig())                          # 11 frames -> 10 flows
    temporal = build("resnet3d-18", in_channels=2, num_classes=101)  # the TV-L1 flow stream's network
    x = motionnet_input(sample["rgb"])         # ShardClips' (N, 3, 11, S, S) -> (N, 33, S, S) in [0, 1]
    flows = motionnet(x)                       # coarse to fine
    clip = FlowNormalization()(upsample_flow(flows[-1], x.shape[-2:]))   # (N, 2, 10, S, S), as ShardClips
    logits = temporal(clip)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import ClipsConfig, ExtractFlowConfig

#: the flow stage's clip bound (px) and the data pipeline's zero level of quantized flow (config defaults)
FLOW_BOUND = ExtractFlowConfig().bound
FLOW_MEAN = ClipsConfig().flow_mean
#: the data pipeline's RGB mean (0-255 scale, std 1), subtracted from the RGB clips it hands out
RGB_MEAN = ClipsConfig().rgb_mean


def _positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of positive ints, got {values!r}") from None
    if not out or min(out) < 1 or any(isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    return out


@dataclass(frozen=True)
class MotionNetConfig:
    """The hyper-parameters of MotionNet (Hidden Two-Stream §3.1; widths FlowNetS's, see the module doc)."""

    frames: int = 11                # input frames F, stacked on the channels; F - 1 flows (§3.2: 11 -> 10)
    in_channels: int = 3            # channels per frame (RGB)
    scales: int = 5                 # flow predictions = stride-2 levels (§3.1: five, flow6 .. flow2)
    width: int = 64                 # channels of conv1; every other width scales with it (tests use 4)
    encoder_mults: tuple[int, ...] = (1, 2, 4, 8, 8, 16)  # level 0..5 channels / width: 64 .. 1024
    decoder_mults: tuple[int, ...] = (1, 2, 4, 8)        # deconv + xconv of level 1..4 / width: 64 .. 512
    deconv_kernel: int = 4          # k x k stride-2 transposed convs that double the grid (FlowNet: 4)
    negative_slope: float = 0.1     # leaky ReLU after every conv and deconv but the predictions (FlowNet)
    flow_scale: float = 20.0        # flow in input pixels = flow_scale * raw prediction (FlowNet's 1/20)
    zero_init_flow: bool = True     # prediction convs start at zero: flow 0, the identity warp (ours)

    def __post_init__(self) -> None:
        _positive_int("frames", self.frames)
        if self.frames < 2:
            raise ValueError(f"frames must be at least 2 (one flow per neighbouring pair), got {self.frames}")
        _positive_int("in_channels", self.in_channels)
        _positive_int("scales", self.scales)
        _positive_int("width", self.width)
        _positive_int("deconv_kernel", self.deconv_kernel)
        object.__setattr__(self, "encoder_mults", _positive_ints("encoder_mults", self.encoder_mults))
        object.__setattr__(self, "decoder_mults", _positive_ints("decoder_mults", self.decoder_mults))
        if len(self.encoder_mults) < self.scales + 1:
            raise ValueError(f"{self.scales} scales need {self.scales + 1} encoder_mults (levels "
                             f"0..{self.scales}), got {len(self.encoder_mults)}")
        if len(self.decoder_mults) < self.scales - 1:
            raise ValueError(f"{self.scales} scales need {self.scales - 1} decoder_mults (levels "
                             f"1..{self.scales - 1}), got {len(self.decoder_mults)}")
        if float(self.negative_slope) < 0:
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope!r}")
        if not float(self.flow_scale) > 0:
            raise ValueError(f"flow_scale must be positive, got {self.flow_scale!r}")

    @property
    def flows(self) -> int:
        """Flows predicted: ``frames - 1``."""
        return self.frames - 1

    @property
    def input_channels(self) -> int:
        """Channels of the stacked input: ``in_channels * frames`` (33)."""
        return self.in_channels * self.frames

    @property
    def encoder_widths(self) -> tuple[int, ...]:
        """Channels of encoder levels 0 .. scales: (64, 128, 256, 512, 512, 1024) by default."""
        return tuple(self.width * m for m in self.encoder_mults[:self.scales + 1])

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        """Channels of the deconv and xconv of decoder levels 1 .. scales-1: (64, 128, 256, 512)."""
        return tuple(self.width * m for m in self.decoder_mults[:self.scales - 1])

    @property
    def factors(self) -> tuple[int, ...]:
        """The downsampling factor of each output, coarse to fine: (32, 16, 8, 4, 2)."""
        return tuple(2 ** level for level in range(self.scales, 0, -1))

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this: ``2 ** scales`` (32)."""
        return 2 ** self.scales


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 conv, padding 1, with a bias: (N, cin, H, W) -> (N, cout, H/stride, W/stride)."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def deconv2x(cin: int, cout: int, kernel: int) -> nn.ConvTranspose2d:
    """A k x k stride-2 transposed conv that exactly doubles the grid: (N, cin, H, W) -> (N, cout, 2H, 2W)
    (padding (k-2)/2 for even k; (k-1)/2 and an output padding of 1 for odd k)."""
    if kernel % 2 == 0:
        return nn.ConvTranspose2d(cin, cout, kernel, stride=2, padding=(kernel - 2) // 2)
    return nn.ConvTranspose2d(cin, cout, kernel, stride=2, padding=(kernel - 1) // 2, output_padding=1)


class MotionNet(nn.Module):
    """MotionNet: stacked frames (N, in_channels * frames, H, W) float in [0, 1] (RGB, frame ``k`` on
    channels ``3k .. 3k+2``) -> ``scales`` flows, coarse to fine, each (N, 2 (frames-1), H/s, W/s) float in
    input pixels with s = 2 ** scales .. 2 (see the module docstring for the layers, the units and the sign
    convention).

    ``encoder[l]`` is level ``l`` (two convs with leaky ReLUs; the first strided but at level 0);
    ``predict[i]``, ``deconv[i]`` and ``xconv[i]`` are ordered coarse to fine (``predict[0]`` is flow6, on
    the last encoder level; ``deconv[i]`` and ``xconv[i]`` lead to ``predict[i + 1]``). Initialisation:
    Kaiming-normal (fan in, leaky-ReLU gain) weights and zero biases, the prediction convs zero when
    ``zero_init_flow``; deterministic given ``torch.manual_seed``.
    """

    def __init__(self, config: MotionNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config if config is not None else MotionNetConfig()
        slope = cfg.negative_slope
        enc, dec, out = cfg.encoder_widths, cfg.decoder_widths, 2 * cfg.flows
        cin = cfg.input_channels
        levels = []
        for level, width in enumerate(enc):
            levels.append(nn.Sequential(conv3x3(cin, width, 1 if level == 0 else 2), nn.LeakyReLU(slope),
                                        conv3x3(width, width), nn.LeakyReLU(slope)))
            cin = width
        self.encoder = nn.ModuleList(levels)
        self.predict = nn.ModuleList([conv3x3(enc[-1], out)])
        self.deconv = nn.ModuleList()
        self.xconv = nn.ModuleList()
        top = enc[-1]
        for level in range(cfg.scales - 1, 0, -1):      # decoder levels, coarse to fine
            width = dec[level - 1]
            self.deconv.append(nn.Sequential(deconv2x(top, width, cfg.deconv_kernel), nn.LeakyReLU(slope)))
            self.xconv.append(nn.Sequential(conv3x3(enc[level] + width + out, width), nn.LeakyReLU(slope)))
            self.predict.append(conv3x3(width, out))
            top = width
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal weights (fan in, leaky-ReLU gain), zero biases; zero predictions when
        ``config.zero_init_flow``."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=self.config.negative_slope, mode="fan_in",
                                        nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        if self.config.zero_init_flow:
            for conv in self.predict:
                nn.init.zeros_(conv.weight)

    def check_input(self, x: torch.Tensor) -> None:
        """A ValueError unless ``x`` is (N, in_channels * frames, H, W) with H and W multiples of
        ``2 ** scales``."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.input_channels:
            raise ValueError(f"MotionNet takes (N, {cfg.input_channels}, H, W) ({cfg.frames} frames of "
                             f"{cfg.in_channels} channels stacked), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % cfg.multiple or w % cfg.multiple or h == 0 or w == 0:
            raise ValueError(f"MotionNet with {cfg.scales} scales needs H and W that are multiples of "
                             f"{cfg.multiple} (2 ** scales), got {h} x {w}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Flows coarse to fine (``[flow6, ..., flow2]`` by default), each (N, 2 (frames-1), H/s, W/s) in
        input pixels."""
        self.check_input(x)
        features = []
        h = x - 0.5
        for level in self.encoder:
            h = level(h)
            features.append(h)
        raw = self.predict[0](h)
        raws = [raw]
        for i, (deconv, xconv) in enumerate(zip(self.deconv, self.xconv)):
            skip = features[len(features) - 2 - i]
            up_flow = F.interpolate(raw, scale_factor=2, mode="bilinear", align_corners=False)
            h = xconv(torch.cat([skip, deconv(h), up_flow], dim=1))
            raw = self.predict[i + 1](h)
            raws.append(raw)
        return [r * self.config.flow_scale for r in raws]


# -- between MotionNet and the temporal stream --------------------------------------------------------------
def motionnet_input(rgb: torch.Tensor, rgb_mean: Sequence[float] = RGB_MEAN) -> torch.Tensor:
    """MotionNet's input from the data pipeline's RGB clip: (N, 3, T, H, W) float, ``q - rgb_mean`` on the
    0-255 scale (``ShardClips``' ``"rgb"``) -> (N, 3 T, H, W) float in [0, 1], frame ``k`` on channels
    ``3k .. 3k+2``. ``rgb_mean`` must be the one of the run (the ``clips`` section of the config)."""
    if rgb.dim() != 5:
        raise ValueError(f"expected an RGB clip (N, C, T, H, W), got {tuple(rgb.shape)}")
    mean = torch.as_tensor(rgb_mean, dtype=torch.float32, device=rgb.device).view(1, -1, 1, 1, 1)
    if mean.shape[1] != rgb.shape[1]:
        raise ValueError(f"rgb_mean has {mean.shape[1]} values for {rgb.shape[1]} channels")
    return stack_frames((rgb.float() + mean) / 255.0)


def stack_frames(clip: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, T C, H, W) with frame ``k`` on channels ``C k .. C k + C - 1``."""
    if clip.dim() != 5:
        raise ValueError(f"expected a clip (N, C, T, H, W), got {tuple(clip.shape)}")
    n, c, t, h, w = clip.shape
    return clip.transpose(1, 2).reshape(n, t * c, h, w)


def flows_to_clip(flow: torch.Tensor, frames: int | None = None) -> torch.Tensor:
    """MotionNet's stacked flows (N, 2 K, H, W) (channels ``2k, 2k+1`` = x, y of flow ``k``) -> the 3D
    networks' layout (N, 2, K, H, W), channel 0 = x, 1 = y, as ``ShardClips`` gives TV-L1 flow. ``frames``
    (optional): the input frames, K + 1, checked against the channels."""
    if flow.dim() != 4 or flow.shape[1] % 2:
        raise ValueError(f"expected stacked flows (N, 2K, H, W), got {tuple(flow.shape)}")
    n, c, h, w = flow.shape
    if frames is not None and c != 2 * (frames - 1):
        raise ValueError(f"{frames} frames give {2 * (frames - 1)} flow channels, got {c}")
    return flow.reshape(n, c // 2, 2, h, w).transpose(1, 2)


def clip_to_flows(clip: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`flows_to_clip`: (N, 2, K, H, W) -> (N, 2 K, H, W)."""
    if clip.dim() != 5 or clip.shape[1] != 2:
        raise ValueError(f"expected a flow clip (N, 2, K, H, W), got {tuple(clip.shape)}")
    n, _, k, h, w = clip.shape
    return clip.transpose(1, 2).reshape(n, 2 * k, h, w)


def upsample_flow(flow: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of (N, 2K, h, w) flow in **input pixels** to (N, 2K, H, W); the values are kept, since
    MotionNet's flows are in input pixels at every scale (``align_corners=False``: pixel centres)."""
    size = tuple(int(s) for s in size)
    if tuple(flow.shape[-2:]) == size:
        return flow
    return F.interpolate(flow, size=size, mode="bilinear", align_corners=False)


class FlowNormalization(nn.Module):
    """The stacked temporal stream's flow normalization (Hidden Two-Stream §3.2): flow in pixels ->
    exactly the values the temporal stream sees for TV-L1 flow in this package, differentiably.

    The flow stage clips each component to ``±bound`` (20 px) and stores ``q = 255 (v + bound) / (2 bound)``
    rounded to uint8 (:mod:`pipeline.flow.quantize`, then JPEG); the data pipeline hands out ``q - mean``
    (127.5, the ``clips`` config) as float32 (N, 2, T, H, W), channels (x, y). This layer computes
    ``255 (clamp(v, -bound, bound) + bound) / (2 bound) - mean`` without the rounding (which has no
    gradient), so it equals the pipeline's value of the same flow to within half a quantization step (0.5)
    plus the JPEG error; values beyond ±bound give ±127.5 and no gradient.

    Input: MotionNet's stacked flows (N, 2K, H, W) (turned into (N, 2, K, H, W) by :func:`flows_to_clip`) or
    a flow clip (N, 2, T, H, W) already; output float (N, 2, T, H, W), same dtype and device. ``bound`` and
    ``mean`` must be those of the run (the ``extract_flow`` and ``clips`` sections of the config).
    """

    def __init__(self, bound: float = FLOW_BOUND, mean: float = FLOW_MEAN) -> None:
        super().__init__()
        if not float(bound) > 0:
            raise ValueError(f"flow bound must be positive, got {bound!r}")
        self.bound = float(bound)
        self.mean = float(mean)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        clip = flows_to_clip(flow) if flow.dim() == 4 else flow
        if clip.dim() != 5 or clip.shape[1] != 2:
            raise ValueError(f"FlowNormalization takes (N, 2K, H, W) or (N, 2, T, H, W) flow, got "
                             f"{tuple(flow.shape)}")
        b = self.bound
        return (clip.clamp(-b, b) + b) * (255.0 / (2.0 * b)) - self.mean

    def extra_repr(self) -> str:
        return f"bound={self.bound}, mean={self.mean}"


@dataclass(frozen=True)
class HiddenTwoStreamConfig:
    """The stacked temporal stream (Hidden Two-Stream §3.2): MotionNet on the RGB clip, its finest flow
    upsampled to the clip's size and normalized like TV-L1 flow (:class:`FlowNormalization`), then a 3D
    network on the (N, 2, T - 1, H, W) flow clip."""

    temporal: str = "resnet3d-18"            # the flow network: a 3D classifier on the 2-channel flow clip, or a
                                             # 2D one (VGG-16, the paper's) on the T - 1 flows stacked as
                                             # 2 (T - 1) channels x1, y1, x2, y2, ... (TSN's stacking)
    num_classes: int = 400
    in_channels: int = 3                     # RGB
    frames: int = 16                         # clip length T (the paper: 11); MotionNet gives T - 1 flows
    motionnet_width: int = 64                # MotionNet's conv1 channels (the paper's: 64)
    scales: int = 4                          # MotionNet's flow scales: H, W multiples of 2**scales
    width: int | None = None                 # the temporal network's first-stage channels (None: its own)
    layers: tuple[int, ...] | None = None    # the temporal network's blocks per stage
    flow_bound: float = FLOW_BOUND           # the flow quantization of the TV-L1 streams (extract_flow.bound)
    flow_mean: float = FLOW_MEAN             # the zero level of flow samples (clips.flow_mean)
    rgb_mean: tuple[float, ...] = tuple(RGB_MEAN)

    def __post_init__(self) -> None:
        if self.in_channels != 3:
            raise ValueError(f"the stacked temporal stream takes RGB clips (3 channels), not {self.in_channels}")


class HiddenTwoStream(nn.Module):
    """MotionNet + flow normalization + a 3D temporal network, with the classifier interface
    (``forward_features``, ``classify``, ``fc``, ``last_block``); :meth:`forward_parts` also returns
    MotionNet's flows (coarse to fine, input pixels) and its input, for the unsupervised losses.

    Input: the data pipeline's RGB clip (N, 3, T, H, W), ``q - rgb_mean`` on the 0-255 scale."""

    input_dims = 3

    def __init__(self, config: HiddenTwoStreamConfig | None = None) -> None:
        super().__init__()
        from . import build                       # the registry imports this module

        self.config = c = config or HiddenTwoStreamConfig()
        self.motionnet = MotionNet(MotionNetConfig(frames=c.frames, scales=c.scales, width=c.motionnet_width))
        self.normalize = FlowNormalization(c.flow_bound, c.flow_mean)
        from . import input_dims_of
        self.stacked = input_dims_of(c.temporal) == 2    # a 2D temporal network: flows stacked as channels
        channels = 2 * (c.frames - 1) if self.stacked else 2
        if c.frames < 2:
            raise ValueError(f"the stacked temporal stream needs clips of at least 2 frames, got {c.frames}")
        extra = {"layers": c.layers} if c.layers is not None else {}
        self.temporal = build(c.temporal, in_channels=channels, num_classes=c.num_classes, width=c.width, **extra)
        self.feature_dim = self.temporal.feature_dim

    @property
    def fc(self) -> nn.Linear:
        return self.temporal.fc

    @property
    def last_block(self) -> nn.Module:
        return self.temporal.last_block

    def flow(self, rgb: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """(MotionNet's flows, its input (N, 3T, H, W) in [0, 1], the finest flow upsampled to (H, W) as a
        clip (N, 2, T - 1, H, W) in pixels)."""
        frames = motionnet_input(rgb, self.config.rgb_mean)
        flows = self.motionnet(frames)
        return flows, frames, flows_to_clip(upsample_flow(flows[-1], rgb.shape[-2:]))

    def forward_parts(self, rgb: torch.Tensor):
        """(features (N, feature_dim), (MotionNet's flows, its input)) of an RGB clip."""
        flows, frames, clip = self.flow(rgb)
        x = self.normalize(clip)                                  # (N, 2, T - 1, H, W)
        if self.stacked:                                          # -> (N, 2 (T - 1), H, W): x1, y1, x2, y2 ...
            x = x.transpose(1, 2).flatten(1, 2)
        return self.temporal.forward_features(x), (flows, frames)

    def forward_features(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.forward_parts(rgb)[0]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.temporal.classify(features)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(rgb))


__all__ = ["HiddenTwoStream", "HiddenTwoStreamConfig", "MotionNet", "MotionNetConfig", "FlowNormalization", "flows_to_clip", "clip_to_flows",
           "motionnet_input", "stack_frames", "upsample_flow", "FLOW_BOUND", "FLOW_MEAN", "RGB_MEAN"]
