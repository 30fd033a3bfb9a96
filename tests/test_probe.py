"""D3D's motion probe (D3D §3.1-3.2): the decoders, the feature capture, the flow targets, the loss, the
endpoint error and a probe that must learn flow that its features plainly encode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.flow.quantize import dequantize, quantize
from pipeline.models import build
from pipeline.models.base import Classifier
from pipeline.models.probe import (LAYERS, FlowDecoder, ProbeConfig, build_probe, feature_channels,
                                   layer_features)
from pipeline.train.probe import (clip_batches, end_point_error, evaluate_probe, fit_probe, flow_pixels_from_clip,
                                  flow_to_target, probe_loss, resize_flow, resize_target, target_to_flow,
                                  time_bins, zero_flow_epe)

#: the tiny 3D ResNet-18 of the tests and the (C, T', H', W') of each layer on a (2, 3, 8, 32, 32) clip
TINY = dict(in_channels=3, num_classes=4, width=8, layers=(1, 1, 1, 1))
SHAPES = {"stem": (8, 4, 8, 8), "layer1": (8, 4, 8, 8), "layer2": (16, 2, 4, 4), "layer3": (32, 1, 2, 2),
          "layer4": (64, 1, 1, 1)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far steadier on a busy 2-core machine."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return build("resnet3d-18", **TINY)


def convs(decoder: nn.Module) -> list[nn.Conv3d]:
    return [m for m in decoder.modules() if isinstance(m, nn.Conv3d)]


# -- decoders -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, widths, kernels", [
    ("simple", [3], [(1, 1, 1)]),
    ("spatial", [40, 40, 3], [(1, 3, 3), (1, 3, 3), (1, 1, 1)]),
    ("pwc", [128, 128, 96, 64, 32, 3], [(1, 3, 3)] * 6),
])
def test_decoders_are_the_papers(kind, widths, kernels):
    dec = build_probe(kind, 40)
    cs = convs(dec)
    assert [c.out_channels for c in cs] == widths
    assert [tuple(c.kernel_size) for c in cs] == kernels
    assert [c.in_channels for c in cs] == [40] + widths[:-1]
    assert all(c.kernel_size[0] == 1 and c.padding[0] == 0 and c.stride == (1, 1, 1) for c in cs)
    assert dec.act.negative_slope == 0.1


def test_width_scale_shrinks_hidden_layers_only():
    assert build_probe("pwc", 16, width_scale=0.25).config.widths == (32, 32, 24, 16, 8, 3)
    assert build_probe("spatial", 16, width_scale=0.5).config.widths == (8, 8, 3)
    with pytest.raises(ValueError, match="simple, spatial, pwc"):
        build_probe("unet", 16)
    with pytest.raises(ValueError, match="no field"):
        build_probe("pwc", 16, depth=3)


@pytest.mark.parametrize("kind", ["simple", "spatial", "pwc"])
def test_decoders_have_no_temporal_mixing_and_no_final_activation(kind):
    torch.manual_seed(0)
    dec = build_probe(kind, 6, width_scale=0.125)
    x = torch.randn(2, 6, 5, 7, 9)
    y = dec(x)
    assert y.shape == (2, 3, 5, 7, 9)
    x2 = x.clone()
    x2[:, :, 3] += 5.0                                 # change one time step only
    y2 = dec(x2)
    same = [t for t in range(5) if torch.equal(y[:, :, t], y2[:, :, t])]
    assert same == [0, 1, 2, 4]
    assert (y < 0).any()                               # raw outputs, no ReLU at the end


# -- feature capture ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["simple", "spatial", "pwc"])
def test_features_and_decoder_shapes_at_every_layer(tiny, kind):
    x = torch.randn(2, 3, 8, 32, 32)
    feats = layer_features(tiny, x, LAYERS)
    assert list(feats) == list(LAYERS)
    for name, f in feats.items():
        assert tuple(f.shape) == (2, *SHAPES[name])
        assert feature_channels(tiny, name) == SHAPES[name][0]
        dec = build_probe(kind, f.shape[1], width_scale=0.125)
        assert tuple(dec(f).shape) == (2, 3, *SHAPES[name][1:])


def test_layer_features_are_the_networks_activations(tiny):
    x = torch.randn(2, 3, 8, 32, 32)
    tiny.eval()
    with torch.no_grad():
        stem = tiny.maxpool(tiny.act(tiny.bn1(tiny.conv1(x))))
        l3 = tiny.layer3(tiny.layer2(tiny.layer1(stem)))
    feats = layer_features(tiny, x, ["layer3", "stem"])
    assert list(feats) == ["layer3", "stem"]
    assert torch.allclose(feats["stem"], stem) and torch.allclose(feats["layer3"], l3)


def test_layer_features_leave_the_model_untouched(tiny):
    tiny.train()
    tiny.layer2.eval()                                 # a mixed state must come back as it was
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    modes = [m.training for m in tiny.modules()]
    layer_features(tiny, torch.randn(2, 3, 8, 32, 32) * 10, "layer4")
    assert [m.training for m in tiny.modules()] == modes
    assert all(torch.equal(v, before[k]) for k, v in tiny.state_dict().items())   # BN statistics included
    assert not tiny._forward_hooks and not tiny.maxpool._forward_hooks and not tiny.layer4._forward_hooks
    with pytest.raises(ValueError, match="stem, layer1, layer2, layer3, layer4"):
        layer_features(tiny, torch.randn(1, 3, 8, 32, 32), "layer5")
    with pytest.raises(ValueError, match="3D networks"):
        layer_features(build("resnet2d-18", width=8, num_classes=4), torch.randn(1, 3, 8, 32, 32), "stem")


# -- targets, loss, errors ----------------------------------------------------------------------------------
def test_flow_to_target_hand_values():
    flow = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0], [0.0, -1.5]]).T.reshape(1, 2, 4, 1, 1)
    t = flow_to_target(flow)[0, :, :, 0, 0].T
    expected = torch.tensor([[5.0, 0.8, 0.6], [0.0, 0.0, 0.0], [2.0, 0.0, -1.0], [1.5, -1.0, 0.0]])
    assert torch.allclose(t, expected, atol=1e-6)
    theta = math.atan2(4.0, 3.0)
    assert math.isclose(t[0, 1], math.sin(theta), abs_tol=1e-6) and math.isclose(t[0, 2], math.cos(theta),
                                                                                  abs_tol=1e-6)


def test_target_to_flow_inverts_flow_to_target():
    torch.manual_seed(0)
    flow = torch.randn(2, 2, 3, 5, 5) * 4
    flow[:, :, 1, 2] = 0.0
    target = flow_to_target(flow)
    assert torch.allclose(target_to_flow(target), flow, atol=1e-5)
    scaled = target.clone()
    scaled[:, 1:] *= 3.0                               # unnormalised angle channels: the same direction
    assert torch.allclose(target_to_flow(scaled), flow, atol=1e-5)
    neg = torch.tensor([-2.0, 0.6, 0.8]).reshape(1, 3, 1)
    assert torch.equal(target_to_flow(neg), torch.zeros(1, 2, 1))
    assert torch.equal(target_to_flow(torch.tensor([2.0, 0.0, 0.0]).reshape(1, 3, 1)), torch.zeros(1, 2, 1))


def test_probe_loss_weights_the_angle_by_magnitude():
    target = flow_to_target(torch.tensor([[2.0, 0.0], [0.0, 0.0]]).T.reshape(1, 2, 2, 1, 1))
    assert probe_loss(target, target).item() == 0.0
    pred = target.clone()
    pred[0, 1:, 1, 0, 0] = torch.tensor([0.5, -0.7])       # angle error where nothing moves: no loss
    assert probe_loss(pred, target).item() == 0.0
    pred[0, 0, 1] = 1.0                                # magnitude error there counts: 1^2 / 2 positions
    assert math.isclose(probe_loss(pred, target).item(), 0.5, rel_tol=1e-6)
    pred = target.clone()
    pred[0, 1:, 0, 0, 0] += torch.tensor([0.3, -0.4])      # angle error at mag 2: 2 * (0.09 + 0.16) / 2
    assert math.isclose(probe_loss(pred, target).item(), 0.25, rel_tol=1e-6)
    pred[0, 0, 0] += 1.0                               # plus a magnitude error of 1 at that position
    assert math.isclose(probe_loss(pred, target).item(), 0.75, rel_tol=1e-6)


def test_end_point_error_hand_values():
    flow = torch.tensor([[3.0, 4.0], [1.0, 1.0]]).T.reshape(1, 2, 1, 1, 2)
    pred = torch.tensor([[0.0, 0.0], [1.0, 2.0]]).T.reshape(1, 2, 1, 1, 2)
    assert math.isclose(end_point_error(pred, flow), (5.0 + 1.0) / 2, rel_tol=1e-6)
    assert math.isclose(zero_flow_epe(flow), (5.0 + math.sqrt(2)) / 2, rel_tol=1e-6)


def test_resize_averages_flow_over_time_and_space_in_input_pixels():
    flow = torch.zeros(1, 2, 4, 2, 4)
    flow[0, 0] = torch.arange(4.0).reshape(4, 1, 1)                # x = the flow's index t
    flow[0, 1] = torch.tensor([[0.0, 2, 4, 6], [8, 10, 12, 14]])  # y = a spatial ramp
    out = resize_flow(flow, (2, 1, 2))
    assert out.shape == (1, 2, 2, 1, 2)
    assert torch.allclose(out[0, 0, :, 0, 0], torch.tensor([0.5, 2.5]))      # flows (0, 1) and (2, 3)
    assert torch.allclose(out[0, 1, 0, 0], torch.tensor([5.0, 9.0]))         # means of 2x2 blocks
    assert torch.allclose(out[0, 1, 1, 0], torch.tensor([5.0, 9.0]))
    # T-1 flows of a 4-frame clip: the second time step covers frames 2, 3, of which only flow 2 exists
    out3 = resize_flow(flow[:, :, :3], (2, 1, 1), frames=4)
    assert torch.allclose(out3[0, 0, :, 0, 0], torch.tensor([0.5, 2.0]))
    assert time_bins(3, 4, 2) == [[0, 1], [2]] and time_bins(8, 8, 1) == [list(range(8))]
    # magnitudes stay in input pixels: a uniform (3, 4) px flow is (5, 0.8, 0.6) at any resolution
    uniform = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1, 1).expand(2, 2, 8, 16, 16)
    expected = torch.tensor([5.0, 0.8, 0.6]).reshape(1, 3, 1, 1, 1).expand(2, 3, 1, 2, 2)
    assert torch.allclose(resize_target(uniform, (1, 2, 2)), expected)


def test_flow_pixels_from_clip_inverts_the_data_pipeline():
    px = np.array([-25.0, -20.0, -3.3, 0.0, 0.5, 7.77, 19.9, 30.0], np.float32)
    q = quantize(px)                                               # what the flow stage stores
    clip = torch.from_numpy(q.astype(np.float32) - 127.5)          # what ShardClips gives
    back = flow_pixels_from_clip(clip)
    assert torch.allclose(back, torch.from_numpy(dequantize(q)), atol=1e-5)
    assert torch.allclose(back, torch.from_numpy(np.clip(px, -20, 20)), atol=20 / 255 + 1e-5)
    assert torch.allclose(flow_pixels_from_clip(torch.from_numpy(q)), back)         # stored uint8 too
    assert torch.allclose(flow_pixels_from_clip(clip - 0.5, mean=128.0), back)      # another centre
    assert torch.allclose(flow_pixels_from_clip(clip, bound=10.0), back / 2)
    rgb = torch.randn(1, 3, 8, 1, 1)
    sample = {"rgb": rgb, "flow": clip.reshape(1, 2, 4, 1, 1), "label": torch.zeros(1)}   # a ShardClips batch
    ((r, f),) = list(clip_batches([sample]))
    assert r is rgb and torch.allclose(f, back.reshape(1, 2, 4, 1, 1))


# -- training -----------------------------------------------------------------------------------------------
class EncodedStem(Classifier):
    """A 3D "backbone" whose stem features ARE the flow target: the clip's 3 channels hold (mag, sin, cos)
    of the flow per (2, 4, 4) block; conv1 copies them and their negatives (so the ReLU keeps both signs) and
    the (2, 4, 4) max pool gives each block's values. The Simple decoder can represent the answer exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 6, 1, bias=False)
        self.bn1 = nn.Identity()
        self.act = nn.ReLU()
        self.maxpool = nn.MaxPool3d((2, 4, 4))
        for i in range(1, 5):
            self.add_module(f"layer{i}", nn.Identity())
        self._head(6, 4, 0.0)
        with torch.no_grad():
            eye = torch.eye(3).reshape(3, 3, 1, 1, 1)
            self.conv1.weight.copy_(torch.cat([eye, -eye]))


def encoded_batch(gen: torch.Generator, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip of 8 frames, 32x32, whose flow is constant on (2, 4, 4) blocks and whose "RGB" encodes it."""
    coarse = torch.randn(n, 2, 4, 8, 8, generator=gen) * 2.0
    up = coarse.repeat_interleave(2, 2).repeat_interleave(4, 3).repeat_interleave(4, 4)
    return flow_to_target(up), up


def test_the_probe_learns_flow_its_features_encode():
    gen = torch.Generator().manual_seed(0)
    train = [encoded_batch(gen) for _ in range(4)]
    test = [encoded_batch(gen) for _ in range(2)]
    model = EncodedStem().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    untrained = evaluate_probe(model, "stem", build_probe("simple", 6), test)
    log: list[float] = []
    dec = fit_probe(model, "stem", train, kind="simple", steps=300, lr=0.05, log=log)
    epe, zero = evaluate_probe(model, "stem", dec, test)
    assert isinstance(dec, FlowDecoder) and dec.config == ProbeConfig(kind="simple", in_channels=6)
    assert zero > 2.0 and math.isclose(zero, untrained.zero_flow_epe)
    assert epe < 0.1 * zero and epe < 0.5 * untrained.epe, (epe, zero, untrained)
    assert log[-1] < 0.05 * log[0]
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fit_probe_leaves_the_backbone_bit_identical(tiny):
    tiny.train()
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    calls = []

    def batches():                                     # a callable: a fresh pass each time
        calls.append(1)
        return [(torch.randn(2, 3, 8, 32, 32, generator=gen), torch.randn(2, 2, 7, 32, 32, generator=gen))]

    dec = fit_probe(tiny, "layer2", batches, kind="pwc", steps=3, lr=1e-3, width_scale=0.125)
    first = [p.clone() for p in dec.parameters()]
    again = fit_probe(tiny, "layer2", batches, kind="pwc", steps=1, lr=0.0, width_scale=0.125)
    assert len(calls) == 4 and not dec.training
    assert all(torch.equal(v, before[k]) for k, v in tiny.state_dict().items())
    assert tiny.training and all(m.training for m in tiny.modules())
    assert all(p.grad is None for p in tiny.parameters())
    # the same seed gives the same initial decoder (lr 0 keeps it), and training moved it away from there
    assert any(not torch.equal(a, b) for a, b in zip(first, again.parameters()))
    with pytest.raises(ValueError, match="ran out"):
        fit_probe(tiny, "stem", iter([]), kind="simple", steps=1)


# -- S3D-G: probe layers by PROBE_LAYERS --------------------------------------------------------------------
#: the tiny S3D-G (width 8, gated) and the (C, T', H', W') of each probe layer on a (2, 3, 8, 32, 32) clip:
#: MaxPool_2a, MaxPool_3a (D3D's "3A"), Mixed_3c, Mixed_4f, Mixed_5c
S3DG_SHAPES = {"stem": (8, 4, 8, 8), "layer1": (24, 4, 4, 4), "layer2": (60, 4, 4, 4), "layer3": (104, 2, 2, 2),
               "layer4": (128, 1, 1, 1)}


def test_s3dg_probe_layers_are_its_inception_endpoints():
    from pipeline.models.s3dg import ENDPOINTS

    torch.manual_seed(0)
    model = build("s3dg", width=8, num_classes=4).eval()
    assert set(model.PROBE_LAYERS) == set(LAYERS)
    x = torch.randn(2, 3, 8, 32, 32)
    feats = layer_features(model, x, LAYERS)
    ends = {"stem": "MaxPool_2a_3x3", "layer1": "MaxPool_3a_3x3", "layer2": "Mixed_3c", "layer3": "Mixed_4f",
            "layer4": "Mixed_5c"}
    with torch.no_grad():
        for name, end in ends.items():
            expected = model.features[:ENDPOINTS[end] + 1](x)
            assert tuple(feats[name].shape) == (2, *S3DG_SHAPES[name])
            assert torch.allclose(feats[name], expected)
            assert feature_channels(model, name) == S3DG_SHAPES[name][0]
    assert not any(m._forward_hooks for m in model.modules())


def test_the_probe_fits_and_scores_on_s3dg():
    torch.manual_seed(0)
    model = build("s3dg", width=8, num_classes=4)
    gen = torch.Generator().manual_seed(3)
    data = [(torch.randn(2, 3, 8, 32, 32, generator=gen), torch.randn(2, 2, 7, 32, 32, generator=gen))]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dec = fit_probe(model, "layer1", lambda: data, kind="spatial", steps=2, width_scale=0.125)
    score = evaluate_probe(model, "layer1", dec, lambda: data)
    assert math.isfinite(score.epe) and math.isfinite(score.zero_flow_epe)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
