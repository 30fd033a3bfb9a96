"""DMC-Net (Shou et al. 2019): the generator's layers against Table 2, its cost against Table 1, the MV
shortcut, the discriminator's output on several sizes, the losses of eq. 1-4 on hand-built tensors, the
learning-rate split of §7.2, and a short fit of the generator to a synthetic flow."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pipeline.models import build
from pipeline.models.dmc import (FAKE, REAL, DMCDiscriminator, DMCDiscriminatorConfig, DMCGenerator,
                                 DMCGeneratorConfig, stack_input)
from pipeline.models.summary import summarize
from pipeline.train.dmc import (discriminator_loss, dmc_loss, flow_mse, generator_adversarial_loss,
                                param_groups)

#: DMC-Net Table 2: (input channels, filters) of conv0 .. conv5; every conv 3x3, stride 1, padding 1
TABLE2 = [(5, 8), (13, 8), (21, 6), (27, 4), (31, 2), (33, 2)]
#: DMC-Net Table 1: the generator's cost at 224 x 224, in multiply-adds (the paper's "GFLOPs")
TABLE1_MACS = 0.23e9


def generator(**kw) -> DMCGenerator:
    torch.manual_seed(0)
    return DMCGenerator(DMCGeneratorConfig(**kw))


def randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# --- generator: architecture -------------------------------------------------------------------------------


def test_generator_layers_are_table_2():
    g = DMCGenerator()
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and list(g.convs) == convs
    for conv, (cin, cout) in zip(convs, TABLE2):
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
        assert conv.groups == 1 and conv.dilation == (1, 1) and conv.bias is not None
    assert g.config.layer_in_channels == tuple(c for c, _ in TABLE2)
    assert sum(p.numel() for p in g.parameters()) == sum(9 * c * f + f for c, f in TABLE2) == 4584


def test_leaky_relu_after_all_but_the_last_conv():
    g = DMCGenerator()
    acts = [m for m in g.modules() if not isinstance(m, (nn.Conv2d, nn.ModuleList, DMCGenerator))]
    assert len(acts) == 5 and all(type(a) is nn.LeakyReLU and a.negative_slope == 0.1 for a in acts)


@pytest.mark.parametrize("shape", [(1, 7, 9), (2, 16, 16), (3, 33, 17), (1, 1, 1)])
def test_generator_output_shape(shape):
    n, h, w = shape
    g = generator()
    out = g(randn(n, 5, h, w))
    assert out.shape == (n, 2, h, w) and out.dtype == torch.float32
    assert g.double()(randn(n, 5, h, w).double()).dtype == torch.float64


def test_generator_default_construction_and_bad_input():
    g = DMCGenerator()
    assert g.config == DMCGeneratorConfig() and g.config.filters == (8, 8, 6, 4, 2, 2)
    with pytest.raises(ValueError, match=r"\(N, 5, H, W\)"):
        g(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 5, H, W\)"):
        g(torch.zeros(5, 8, 8))
    with pytest.raises(ValueError, match="in_mv"):
        DMCGeneratorConfig(filters=(8, 8, 6, 4, 2, 3))
    with pytest.raises(ValueError, match="odd"):
        DMCGeneratorConfig(kernel_size=4)


def test_every_layer_sees_the_input_and_all_earlier_outputs():
    """Dense connection: conv i's input is cat(x, act0(conv0), .., act{i-1}(conv{i-1})), in that order."""
    g = generator(zero_init_last=False)
    seen_in, seen_out = [], []

    def record(_module, inputs, output):
        seen_in.append(inputs[0])
        seen_out.append(output)

    hooks = [c.register_forward_hook(record) for c in g.convs]
    x = randn(2, 5, 9, 11)
    out = g(x)
    for h in hooks:
        h.remove()
    expected = x
    for i in range(6):
        torch.testing.assert_close(seen_in[i], expected, rtol=0, atol=0)
        if i < 5:
            expected = torch.cat([expected, F.leaky_relu(seen_out[i], 0.1)], dim=1)
    torch.testing.assert_close(out, x[:, :2] + seen_out[5], rtol=0, atol=0)


def test_shortcut_returns_the_motion_vectors_when_the_last_conv_is_zero():
    g = generator(zero_init_last=False)
    x = randn(2, 5, 13, 10) * 7
    assert not torch.equal(g(x), x[:, :2])                       # the random last conv changes the MV
    with torch.no_grad():
        g.last_conv.weight.zero_()
        g.last_conv.bias.zero_()
    assert torch.equal(g(x), x[:, :2])
    # no activation after the last conv: a negative refinement passes unchanged (a leaky ReLU would give -0.5)
    with torch.no_grad():
        g.last_conv.bias.fill_(-5.0)
    assert torch.equal(g(x), x[:, :2] - 5.0)
    # the default initialisation starts there: DMC = MV
    assert torch.equal(DMCGenerator()(x), x[:, :2])


def test_stack_input():
    mv, res = randn(2, 2, 6, 8), randn(2, 3, 6, 8, seed=2)
    x = stack_input(mv, res)
    assert x.shape == (2, 5, 6, 8) and torch.equal(x[:, :2], mv) and torch.equal(x[:, 2:], res)
    with pytest.raises(ValueError, match="same N, H and W"):
        stack_input(mv, res[:, :, :5])


# --- generator: cost (Table 1) -----------------------------------------------------------------------------


def test_generator_costs_0_23_g_multiply_adds_at_224():
    g = DMCGenerator()
    exact = sum(9 * c * f for c, f in TABLE2) * 224 * 224      # 4554 MACs per pixel, biases left out
    assert exact == 228_501_504
    # torch's own counter reports FLOPs = 2 x multiply-adds for a convolution
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            g(torch.zeros(1, 5, 224, 224))
    macs = counter.get_total_flops() / 2
    assert macs == exact
    assert abs(macs / TABLE1_MACS - 1) < 0.05
    # the package's hook counter applies to any module with convolutions
    summary = summarize(g, (1, 5, 224, 224))
    assert summary["macs"] == summary["conv_macs"] == exact and summary["linear_macs"] == 0
    assert summary["output_shape"] == [1, 2, 224, 224] and summary["parameters"] == 4584


# --- discriminator -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 17, 23), (1, 48, 64), (1, 224, 224)])
def test_discriminator_gives_two_logits(shape):
    n, h, w = shape
    torch.manual_seed(0)
    d = DMCDiscriminator()
    x = randn(n, 2, h, w, seed=3).requires_grad_()
    out = d(x)
    assert out.shape == (n, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_discriminator_layers_and_limits():
    d = DMCDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512] and convs[0].in_channels == 2
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    assert d.fc.out_features == 2 and d.fc.in_features == 512
    assert d.config.min_size == 16 and d.config.out_size(224) == 14
    with pytest.raises(ValueError, match=">= 16"):
        d(torch.zeros(1, 2, 15, 40))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        d(torch.zeros(1, 3, 32, 32))
    small = DMCDiscriminator(DMCDiscriminatorConfig(filters=(4, 8), batch_norm=False))
    assert small(torch.zeros(2, 2, 4, 4)).shape == (2, 2) and small.config.min_size == 4


# --- losses ------------------------------------------------------------------------------------------------


def test_class_indices():
    assert (FAKE, REAL) == (0, 1)


def test_flow_mse_exact_and_shape_check():
    dmc = torch.tensor([[[[0.0, 1.0]], [[2.0, -1.0]]]])                      # (1, 2, 1, 2)
    flow = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]], requires_grad=True)
    loss = flow_mse(dmc.requires_grad_(), flow)
    assert loss.item() == pytest.approx((1 + 4 + 0 + 9) / 4)
    loss.backward()
    assert flow.grad is None and dmc.grad is not None
    with pytest.raises(ValueError, match="same"):
        flow_mse(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))


def test_discriminator_loss():
    real_says_real = torch.tensor([[-20.0, 20.0], [-15.0, 15.0]])
    fake_says_fake = torch.tensor([[20.0, -20.0]])
    assert discriminator_loss(real_says_real, fake_says_fake).item() < 1e-6
    assert discriminator_loss(fake_says_fake, real_says_real[:1]).item() == pytest.approx(80.0, rel=1e-5)
    unsure = torch.zeros(3, 2)
    assert discriminator_loss(unsure, unsure).item() == pytest.approx(2 * math.log(2))
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        discriminator_loss(torch.zeros(3), unsure)


def test_generator_adversarial_loss_wants_real():
    assert generator_adversarial_loss(torch.tensor([[-20.0, 20.0]])).item() < 1e-6
    assert generator_adversarial_loss(torch.tensor([[20.0, -20.0]])).item() == pytest.approx(40.0, rel=1e-5)
    assert generator_adversarial_loss(torch.zeros(4, 2)).item() == pytest.approx(math.log(2))


def test_dmc_loss_is_eq_4():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    ce = ((math.log(math.exp(2) + 2) - 2) + math.log(math.exp(1) + 2)) / 2
    dmc, flow = torch.zeros(1, 2, 1, 2), torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])
    mse = (1 + 9 + 4 + 4) / 4
    d_fake = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]])    # P(real) = 1/2 and 1/4
    adv = (math.log(2) + math.log(4)) / 2

    total, parts = dmc_loss(logits, labels, dmc, flow)
    assert total.item() == pytest.approx(ce + 10 * mse) and set(parts) == {"ce", "mse"}
    assert parts["ce"] == pytest.approx(ce) and parts["mse"] == pytest.approx(mse)

    total, parts = dmc_loss(logits, labels, dmc, flow, d_fake)
    assert total.item() == pytest.approx(ce + 10 * mse + adv)
    assert parts == pytest.approx({"ce": ce, "mse": mse, "adv": adv})

    total, _ = dmc_loss(logits, labels, dmc, flow, d_fake, alpha=0.5, lam=3.0)
    assert total.item() == pytest.approx(ce + 0.5 * mse + 3 * adv)


def test_param_groups_split_the_classifier_learning_rate():
    torch.manual_seed(0)
    g = DMCGenerator()
    clf = build("resnet2d-18", in_channels=2, num_classes=5, width=8)
    groups = param_groups(g, clf, lr=0.01)
    assert [grp["name"] for grp in groups] == ["generator", "classifier.fc", "classifier"]
    lr_of: dict[int, float] = {}
    for grp in groups:
        for p in grp["params"]:
            assert id(p) not in lr_of, "a parameter is in two groups"
            lr_of[id(p)] = grp["lr"]
    everything = list(g.parameters()) + list(clf.parameters())
    assert set(lr_of) == {id(p) for p in everything}
    assert all(lr_of[id(p)] == 0.01 for p in g.parameters())
    assert all(lr_of[id(p)] == 0.01 for p in clf.fc.parameters())
    fc = {id(p) for p in clf.fc.parameters()}
    body = [p for p in clf.parameters() if id(p) not in fc]
    assert body and all(lr_of[id(p)] == pytest.approx(1e-4) for p in body)
    assert id(clf.conv1.weight) in {id(p) for p in groups[2]["params"]}
    opt = torch.optim.Adam(groups)
    assert [grp["lr"] for grp in opt.param_groups] == pytest.approx([0.01, 0.01, 1e-4])
    with pytest.raises(ValueError, match="fc"):
        param_groups(g, nn.Sequential(nn.Linear(2, 2)), lr=0.01)
    with pytest.raises(ValueError, match="share"):
        param_groups(clf, clf, lr=0.01)


# --- a short fit -------------------------------------------------------------------------------------------


def test_generator_learns_a_residual_offset():
    """Target flow = blocky MV + a smooth offset that is a fixed linear function of the residual: 30 Adam
    steps of the generator alone cut the reconstruction error by far more than 5x."""
    torch.manual_seed(0)
    mv = F.interpolate(randn(4, 2, 4, 4) * 3, scale_factor=8, mode="nearest")           # 8x8 blocks, px
    res = F.interpolate(randn(4, 3, 4, 4, seed=2), size=(32, 32), mode="bilinear", align_corners=False)
    flow = mv + 2.0 * res[:, :2] - res[:, 2:3]
    x = stack_input(mv, res)
    g = DMCGenerator()
    opt = torch.optim.Adam(g.parameters(), lr=0.01)
    with torch.no_grad():
        first = flow_mse(g(x), flow).item()
    for _ in range(30):
        opt.zero_grad()
        flow_mse(g(x), flow).backward()
        opt.step()
    with torch.no_grad():
        last = flow_mse(g(x), flow).item()
    assert first > 0.5 and last < first / 5
