"""MotionNet (Hidden Two-Stream §3.1), its flow normalization (§3.2) and its unsupervised losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.data.clips import FLOW_MEAN, to_cthw
from pipeline.flow import quantize, tvl1
from pipeline.models import build
from pipeline.models.motionnet import (RGB_MEAN, FlowNormalization, MotionNet, MotionNetConfig, clip_to_flows,
                                       flows_to_clip, motionnet_input, stack_frames, upsample_flow)
from pipeline.train import unsupervised as U


def textures(n: int, size: int, shift: tuple[float, float], frames: int, seed: int,
             period: float = 6.0) -> torch.Tensor:
    """``n`` random RGB textures (sums of six sinusoids per channel, periods ``period`` to ``period + 10``
    px, values in [0, 1]),
    each seen in ``frames`` frames translated by ``shift = (dx, dy)`` px per frame: (n, 3 frames, size, size).
    The texture is analytic, so frame k is exactly T(p - k shift) and the true flow is ``shift`` everywhere,
    with content (not padding) coming in at the borders."""
    gen = torch.Generator().manual_seed(seed)
    direction = torch.rand(n, 3, 6, 2, generator=gen) * 2 - 1
    omega = 2 * math.pi / (period + 10 * torch.rand(n, 3, 6, 1, generator=gen))
    freq = direction / direction.norm(dim=-1, keepdim=True) * omega
    phase = torch.rand(n, 3, 6, 1, 1, generator=gen) * 2 * math.pi
    ys = torch.arange(size, dtype=torch.float32).view(size, 1)
    xs = torch.arange(size, dtype=torch.float32).view(1, size)
    out = []
    for k in range(frames):
        x, y = xs - k * shift[0], ys - k * shift[1]
        arg = freq[..., 0, None, None] * x + freq[..., 1, None, None] * y + phase
        out.append(0.5 + 0.5 * torch.sin(arg).mean(dim=2))
    return torch.cat(out, dim=1)


def constant_flow(n: int, flows: int, size: int, shift: tuple[float, float]) -> torch.Tensor:
    """(n, 2 flows, size, size) with x = shift[0] and y = shift[1] everywhere."""
    f = torch.zeros(n, 2 * flows, size, size)
    f[:, 0::2], f[:, 1::2] = shift
    return f


# -- the network --------------------------------------------------------------------------------------------
def test_default_config_gives_five_flows_coarse_to_fine_in_input_pixels_shapes():
    cfg = MotionNetConfig()
    assert (cfg.frames, cfg.flows, cfg.scales, cfg.input_channels) == (11, 10, 5, 33)
    assert cfg.encoder_widths == (64, 128, 256, 512, 512, 1024)
    assert cfg.decoder_widths == (64, 128, 256, 512)
    assert cfg.factors == (32, 16, 8, 4, 2) and cfg.multiple == 32
    with torch.device("meta"):
        net = MotionNet(cfg)
        flows = net(torch.empty(2, 33, 64, 96))
    assert [tuple(f.shape) for f in flows] == [(2, 20, 64 // s, 96 // s) for s in (32, 16, 8, 4, 2)]
    params = sum(p.numel() for p in net.parameters())
    assert 42.0e6 < params < 42.6e6       # 169 MB in float32: the paper's "170M" (§3.1)


def test_structure_follows_the_paper():
    with torch.device("meta"):
        net = MotionNet()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) for c in convs)            # 3x3 throughout (§3.1)
    first_two = [m for m in net.encoder[0] if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in first_two] == [(1, 1), (1, 1)]       # the first two convs are not strided
    for level in net.encoder[1:]:                                  # strided convs do the downsampling
        strides = [m.stride for m in level if isinstance(m, nn.Conv2d)]
        assert strides == [(2, 2), (1, 1)]
    assert not [m for m in net.modules() if "Pool" in type(m).__name__]     # no pooling
    deconvs = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 4 and all(d.stride == (2, 2) for d in deconvs)
    assert len(net.xconv) == 4 and len(net.predict) == 5           # a conv after each deconv; 5 predictions
    assert net.encoder[0][0].in_channels == 33 and all(p.out_channels == 20 for p in net.predict)
    assert [x[0].in_channels for x in net.xconv] == [512 + 512 + 20, 512 + 256 + 20, 256 + 128 + 20,
                                                     128 + 64 + 20]     # skip + deconv + upsampled flow


def test_input_size_and_channels_are_checked():
    with torch.device("meta"):
        net = MotionNet()
        with pytest.raises(ValueError, match="multiples of 32"):
            net(torch.empty(1, 33, 48, 64))
        with pytest.raises(ValueError, match=r"\(N, 33, H, W\)"):
            net(torch.empty(1, 30, 64, 64))
    tiny = MotionNet(MotionNetConfig(frames=3, scales=2, width=2))
    assert len(tiny(torch.rand(1, 9, 4, 12))) == 2                   # multiples of 2 ** scales = 4
    with pytest.raises(ValueError, match="frames"):
        MotionNetConfig(frames=1)
    with pytest.raises(ValueError, match="encoder_mults"):
        MotionNetConfig(scales=6)


def test_tiny_network_starts_at_zero_flow_and_is_trainable():
    torch.manual_seed(0)
    net = MotionNet(MotionNetConfig(frames=3, scales=3, width=2))
    x = torch.rand(2, 9, 16, 16)
    flows = net(x)
    assert [tuple(f.shape) for f in flows] == [(2, 4, 2, 2), (2, 4, 4, 4), (2, 4, 8, 8)]
    assert all(float(f.detach().abs().max()) == 0 for f in flows)    # zero_init_flow: identity warp
    loss, _ = U.motionnet_loss(x, flows, weights=(0.04, 0.02, 0.01))
    loss.backward()
    # every prediction learns, the coarsest (2 x 2, every pixel on the border) too
    assert all(float(p.grad.abs().max()) > 0 for p in net.predict.parameters())


# -- between MotionNet and the temporal stream --------------------------------------------------------------
def test_flows_to_clip_orders_channels_x_y_and_time():
    flow = torch.arange(2 * 6 * 2 * 3, dtype=torch.float32).reshape(2, 6, 2, 3)   # 3 flows
    clip = flows_to_clip(flow, frames=4)
    assert clip.shape == (2, 2, 3, 2, 3)
    for k in range(3):
        assert torch.equal(clip[:, 0, k], flow[:, 2 * k]) and torch.equal(clip[:, 1, k], flow[:, 2 * k + 1])
    assert torch.equal(clip_to_flows(clip), flow)
    with pytest.raises(ValueError):
        flows_to_clip(flow, frames=3)


def test_flow_normalization_matches_the_data_pipeline_on_tvl1_jpeg_values():
    rng = np.random.default_rng(0)
    flows_hw2 = rng.uniform(-30, 30, size=(3, 5, 7, 2)).astype(np.float32)    # 3 flows (T, H, W, 2) px
    # the flow stage stores quantize(v) per component, the dataset hands out to_cthw(q, FLOW_MEAN)
    pipeline = torch.from_numpy(to_cthw(quantize(flows_hw2), FLOW_MEAN))       # (2, T, H, W)
    stacked = torch.from_numpy(flows_hw2).permute(0, 3, 1, 2).reshape(1, 6, 5, 7)   # (1, 2T, H, W)
    ours = FlowNormalization()(stacked)
    assert ours.shape == (1, 2, 3, 5, 7)
    assert float((ours[0] - pipeline).abs().max()) <= 0.5 + 1e-4    # only the rounding to uint8 differs
    # exactly equal on values that quantize without rounding (bin edges of q = 0..255)
    q = torch.arange(256, dtype=torch.float32)
    v = q * 40.0 / 255.0 - 20.0
    exact = torch.from_numpy(to_cthw(quantize(v.numpy().reshape(1, 16, 16, 1).repeat(2, -1)), FLOW_MEAN))
    ours = FlowNormalization()(v.reshape(1, 1, 16, 16).repeat(1, 2, 1, 1))
    assert torch.allclose(ours[0], exact, atol=1e-4)
    # clipping at ±20 px: ±127.5 beyond, no gradient there
    v = torch.tensor([-25.0, -20.0, 0.0, 20.0, 25.0]).view(1, 1, 1, 5).repeat(1, 2, 1, 1).requires_grad_()
    out = FlowNormalization()(v)
    assert out[0, 0, 0, 0].tolist() == [-127.5, -127.5, 0.0, 127.5, 127.5]
    out.sum().backward()
    assert v.grad[0, 0, 0].tolist() == [0.0, 255 / 40, 255 / 40, 255 / 40, 0.0]


def test_stacked_temporal_stream_runs_end_to_end():
    torch.manual_seed(0)
    motionnet = MotionNet(MotionNetConfig(frames=5, scales=2, width=2, zero_init_flow=False))
    temporal = build("resnet3d-18", in_channels=2, num_classes=3, width=4, layers=(1, 1, 1, 1))
    mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1, 1)
    assert RGB_MEAN == pytest.approx((114.7748, 107.7354, 99.4750))   # the data pipeline's (config) mean
    rgb = torch.rand(2, 3, 5, 16, 16) * 255 - mean                  # as ShardClips hands RGB out
    x = motionnet_input(rgb)
    assert x.shape == (2, 15, 16, 16) and -1e-6 <= float(x.min()) and float(x.max()) <= 1 + 1e-6
    assert torch.allclose(x[:, 3:6], (rgb[:, :, 1] + mean[:, :, 0]) / 255)
    flows = motionnet(x)
    clip = FlowNormalization()(upsample_flow(flows[-1], x.shape[-2:]))
    assert clip.shape == (2, 2, 4, 16, 16)
    logits = temporal(clip)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert float(motionnet.encoder[0][0].weight.grad.abs().sum()) > 0
    assert torch.equal(stack_frames(rgb)[:, 3:6], rgb[:, :, 1])


def test_upsample_flow_keeps_values():
    f = constant_flow(1, 2, 4, (1.5, -2.0))
    up = upsample_flow(f, (16, 16))
    assert up.shape == (1, 4, 16, 16) and torch.allclose(up, constant_flow(1, 2, 16, (1.5, -2.0)))


# -- the losses ---------------------------------------------------------------------------------------------
def test_backward_warp_integer_shift_and_identity():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 12, 14)
    assert torch.equal(U.backward_warp(image, torch.zeros(2, 2, 12, 14)), image)
    flow = torch.zeros(2, 2, 12, 14)
    flow[:, 0], flow[:, 1] = 2.0, -1.0                             # sample at (x + 2, y - 1)
    warped = U.backward_warp(image, flow)
    assert torch.equal(warped[..., 1:, :-2], image[..., :-1, 2:])
    assert torch.equal(warped[..., 0, :-2], image[..., 0, 2:])     # outside: the nearest border pixel
    assert torch.equal(warped[..., 1:, -2:], image[..., :-1, -1:].expand(-1, -1, -1, 2))


def test_backward_warp_is_bilinear_with_border_values():
    torch.manual_seed(0)
    image, flow = torch.rand(2, 3, 9, 11), 3 * torch.randn(2, 2, 9, 11)
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    grid = torch.stack([(xs + flow[:, 0]) / 5 - 1, (ys + flow[:, 1]) / 4 - 1], dim=-1)
    expected = torch.nn.functional.grid_sample(image, grid, padding_mode="border", align_corners=True)
    assert torch.allclose(U.backward_warp(image, flow), expected, atol=1e-5)
    half = torch.zeros(1, 2, 1, 3)
    half[:, 0] = 0.5                                               # halfway to the right neighbour
    row = torch.tensor([0.0, 2.0, 6.0]).view(1, 1, 1, 3)
    assert U.backward_warp(row, half).flatten().tolist() == [1.0, 4.0, 6.0]


def test_photometric_loss_prefers_the_true_flow_and_the_sign_convention():
    frames = textures(2, 32, (1.5, 0.5), 2, seed=1)                # frame 1 = frame 0 moved by (1.5, 0.5)
    first, after = frames[:, :3], frames[:, 3:]
    mask = U.border_mask(32, 32)
    true = U.photometric_loss(first, U.backward_warp(after, constant_flow(2, 1, 32, (1.5, 0.5))), mask)
    zero = U.photometric_loss(first, U.backward_warp(after, torch.zeros(2, 2, 32, 32)), mask)
    wrong = U.photometric_loss(first, U.backward_warp(after, constant_flow(2, 1, 32, (-1.5, -0.5))), mask)
    assert float(true) < 0.5 * float(zero) < float(wrong)
    # the whole loss, every scale given the true flow in input pixels, against the negated flow
    frames = textures(1, 64, (1.5, 0.0), 3, seed=2)
    good = [constant_flow(1, 2, 64 // s, (1.5, 0.0)) for s in (32, 16, 8, 4, 2)]
    bad = [constant_flow(1, 2, 64 // s, (-1.5, 0.0)) for s in (32, 16, 8, 4, 2)]
    total_good, parts = U.motionnet_loss(frames, good)
    total_bad, _ = U.motionnet_loss(frames, bad)
    assert float(total_good) < float(total_bad)
    assert set(parts) == {"pixel", "smooth", "ssim", "pixel_fine", "ssim_fine", "total"}
    assert parts["smooth"] == 0.0 and parts["total"] == pytest.approx(float(total_good))
    with pytest.raises(ValueError, match="scale weights"):
        U.motionnet_loss(frames, good[1:])


def test_each_scale_warps_with_its_flow_divided_by_the_factor():
    frames = textures(2, 64, (4.0, -2.0), 2, seed=3, period=24.0)      # smooth enough for the 1/4 grid
    for factor in (2, 4, 8):
        true = constant_flow(2, 1, 64 // factor, (4.0, -2.0))        # input pixels, at every scale
        losses = [float(U.motionnet_loss(frames, [f], weights=(1.0,))[0])
                  for f in (true, true * factor, true / factor, torch.zeros_like(true))]
        assert losses[0] < min(losses[1:]), (factor, losses)


def test_charbonnier_formula_and_the_smoothness_betas():
    x = torch.tensor([0.0, 0.01, -0.2, 3.0])
    expected = ((x * 255) ** 2 + 1e-6) ** 0.4 - 1e-3 ** 0.8
    assert torch.allclose(U.charbonnier(x, 0.4, 255.0), expected)
    assert torch.allclose(U.charbonnier(x, 0.4, 255.0, zero_at_zero=False), ((x * 255) ** 2 + 1e-6) ** 0.4)
    assert float(U.charbonnier(torch.zeros(()), 0.3)) == 0.0
    assert U.SMOOTH_BETAS == tuple(U.FLOW_UNIT / s for s in MotionNetConfig().factors)


def test_smoothness_loss_zero_for_constant_flow_positive_for_noise():
    assert float(U.smoothness_loss(constant_flow(2, 3, 16, (3.0, -1.0)))) == 0.0
    torch.manual_seed(0)
    noisy = constant_flow(2, 3, 16, (3.0, -1.0)) + 0.3 * torch.randn(2, 6, 16, 16)
    assert float(U.smoothness_loss(noisy)) > 0.1
    ramp = torch.zeros(1, 2, 4, 5)
    ramp[0, 0] = torch.arange(5.0)                                # dVx/dx = 1, the other three 0
    assert float(U.smoothness_loss(ramp, alpha=0.5, eps=0.0)) == pytest.approx(1.0)


def test_ssim_loss_zero_for_identical_images():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 32, 32)
    assert float(U.ssim_loss(a, a.clone())) == pytest.approx(0.0, abs=1e-5)
    assert float(U.ssim_loss(a, torch.rand(2, 3, 32, 32))) > 0.5
    assert U.ssim(a, a).shape == (2, 3, 4, 4)                       # 8x8 patches at stride 8
    assert U.ssim(a[..., :5, :6], a[..., :5, :6]).shape == (2, 3, 1, 1)    # smaller than a patch: one


def test_border_mask_leaves_the_border_out():
    assert [U.border_width(s) for s in (64, 32, 16, 8, 2)] == [6, 3, 1, 0, 0]
    mask = U.border_mask(40, 40)
    assert mask.shape == (1, 1, 40, 40) and float(mask.sum()) == 32 * 32
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40)
    changed = b.clone()
    changed[..., :4, :] = 1.0                                      # only the 10% border rows and columns
    changed[..., :, -4:] = 0.0
    assert float(U.photometric_loss(a, changed, mask)) == float(U.photometric_loss(a, b, mask))
    assert float(U.ssim_loss(a, changed)) == float(U.ssim_loss(a, b))
    inside = b.clone()
    inside[..., 4, 4] += 0.5
    assert float(U.photometric_loss(a, inside, mask)) != float(U.photometric_loss(a, b, mask))
    assert float(U.ssim_loss(a, inside)) != float(U.ssim_loss(a, b))
    # motionnet_loss leaves the border out at every scale (a 1-px flow samples the interior from inside)
    frames = torch.cat([a, b], dim=1)
    flows = [torch.ones(1, 2, 40 // s, 40 // s) for s in (4, 2)]
    edited = frames.clone()
    edited[:, :3, :4] = 1.0                                        # frame 0's top border rows
    total, parts = U.motionnet_loss(frames, flows, weights=(0.5, 0.5))
    total_edited, parts_edited = U.motionnet_loss(edited, flows, weights=(0.5, 0.5))
    assert parts_edited == parts
    edited[:, :3, 20, 20] = 1.0
    assert U.motionnet_loss(edited, flows, weights=(0.5, 0.5))[1]["pixel"] != parts["pixel"]


def test_end_point_error_hand_values():
    flow = torch.tensor([[3.0, 0.0], [4.0, 0.0]]).view(1, 2, 1, 2)      # vectors (3, 4) and (0, 0)
    zero = torch.zeros_like(flow)
    assert float(U.end_point_error(flow, zero)) == pytest.approx(2.5)
    assert float(U.end_point_error(flow, zero, mask=torch.tensor([1.0, 0.0]).view(1, 1, 1, 2))) == 5.0
    stacked = torch.cat([flow, flow + torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)], dim=1)   # 2 flows
    ref = torch.cat([zero, flow], dim=1)
    assert float(U.end_point_error(stacked, ref)) == pytest.approx((5 + 0 + 1 + 1) / 4)
    assert float(U.end_point_error(flows_to_clip(stacked), flows_to_clip(ref))) == pytest.approx(7 / 4)


@pytest.mark.slow
def test_tiny_motionnet_learns_a_translation_without_supervision():
    """Unsupervised training only (the five-scale loss with its default weights): random textures moving
    by (1.5, -1) px per frame; the finest flow's EPE on unseen textures falls far below that of zero flow
    (1.80 px). Seen: 0.05-0.09 px after 150 Adam steps, about 3.5 s."""
    torch.manual_seed(0)
    shift = (1.5, -1.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # one thread is steadier on a shared machine
    try:
        net = MotionNet(MotionNetConfig(frames=3, scales=5, width=4))
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        test = textures(4, 64, shift, 3, seed=1000)
        truth = constant_flow(4, 2, 32, shift)                    # the finest flow is at H/2
        with torch.no_grad():
            before = float(U.end_point_error(net(test)[-1], truth))
        for step in range(150):
            x = textures(4, 64, shift, 3, seed=step)
            loss, _ = U.motionnet_loss(x, net(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            finest = net(test)[-1]
    finally:
        torch.set_num_threads(threads)
    after = float(U.end_point_error(finest, truth))
    zero = float(U.end_point_error(torch.zeros_like(truth), truth))
    assert zero == pytest.approx(math.hypot(*shift)) and before == pytest.approx(zero)
    assert after < 0.2 * zero, (before, after)
    # the same sign convention as the package's TV-L1: compare on frame 0 -> 1, at full resolution
    gray = test[0].reshape(3, 3, 64, 64).mean(dim=1).numpy()
    flow = torch.from_numpy(tvl1(gray[0], gray[1])).permute(2, 0, 1)[None]     # (1, 2, 64, 64) px
    ours = upsample_flow(finest[:1, :2], (64, 64))
    inner = U.border_mask(64, 64)
    assert float(U.end_point_error(flow, constant_flow(1, 1, 64, shift), inner)) < 0.1
    assert float(U.end_point_error(ours, flow, inner)) < 0.2 * zero
