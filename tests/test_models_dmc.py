"""DMC-Net (Shou et al. 2019): the generator's layers against Table 2, its cost against Table 1, the MV
shortcut, the discriminator against the authors' Discriminator3 (layers, parameters, dropout, sizes), the
losses of eq. 1-4 on hand-built tensors, the learning-rate split of §7.2, and a short fit of the generator to
a synthetic flow."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pipeline.models import build
from pipeline.models.dmc import (AUTHORS_FLOW_UNIT_PX, FAKE, REAL, DMCDiscriminator, DMCDiscriminatorConfig,
                                 DMCGenerator, DMCGeneratorConfig, stack_input)
from pipeline.models.summary import summarize
from pipeline.train.dmc import discriminator_loss, dmc_loss, flow_mse, generator_adversarial_loss

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


# --- discriminator: the authors' Discriminator3 ------------------------------------------------------------
# facebookresearch/dmc-net @ 323d160, code/dmcnet_GAN/model.py:254-279 (blocks) and 332-366 (Discriminator3)

#: output channels of the 12 convs: four stages of three (model.py:336-347)
D3_FILTERS = [16, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128]
#: their strides: the first conv of each stage halves the map (discriminator_block), the others keep it
D3_STRIDES = [2, 1, 1] * 4
#: Discriminator3's parameters, by hand (3x3 kernels, every conv with a bias):
#:   convs   2*16*9 + 16 = 304;  2 x (16*16*9 + 16) = 2 x 2,320 = 4,640;  16*32*9 + 32 = 4,640;
#:           2 x (32*32*9 + 32) = 2 x 9,248 = 18,496;  32*64*9 + 64 = 18,496;  2 x (64*64*9 + 64) = 73,856;
#:           64*128*9 + 128 = 73,856;  2 x (128*128*9 + 128) = 2 x 147,584 = 295,168      -> 489,456
#:   BN      weight + bias on every conv but the first: 2 x (2*16 + 3*32 + 3*64 + 3*128) = 2 x 704 -> 1,408
#:   linear  128*14*14 = 25,088 inputs -> 2: 25,088*2 + 2                                  -> 50,178
#:   total   489,456 + 1,408 + 50,178 = 541,042
D3_PARAMS = 541_042


def discriminator(**kw) -> DMCDiscriminator:
    torch.manual_seed(0)
    return DMCDiscriminator(DMCDiscriminatorConfig(**kw))


def test_discriminator_has_the_twelve_convs_of_discriminator3():
    d = DMCDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 12 == d.config.num_convs
    assert [c.out_channels for c in convs] == D3_FILTERS == list(d.config.conv_filters)
    assert [c.in_channels for c in convs] == [2] + D3_FILTERS[:-1]
    assert [c.stride for c in convs] == [(s, s) for s in D3_STRIDES]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)
    assert all(c.groups == 1 and c.dilation == (1, 1) for c in convs)
    assert d.fc.in_features == 128 * 14 * 14 and d.fc.out_features == 2
    assert d.config.out_size(224) == 14 and d.config.out_size(40) == 3 and d.config.min_size == 1


def test_each_block_is_conv_leaky_relu_dropout2d_then_batch_norm():
    """model.py:254-279: Conv2d -> LeakyReLU(0.2) -> Dropout2d(0.25) [-> BatchNorm2d(out, eps=0.8)], the first
    block without batch norm."""
    d = DMCDiscriminator()
    assert len(d.blocks) == 12
    for i, block in enumerate(d.blocks):
        kinds = [type(m) for m in block]
        assert kinds == [nn.Conv2d, nn.LeakyReLU, nn.Dropout2d] + ([nn.BatchNorm2d] if i > 0 else [])
        assert block[1].negative_slope == 0.2 and block[2].p == 0.25
        if i > 0:
            bn = block[3]
            assert bn.num_features == D3_FILTERS[i] and bn.eps == 0.8 and bn.momentum == 0.1 and bn.affine
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 11
    assert sum(isinstance(m, nn.Dropout2d) for m in d.modules()) == 12
    # no sigmoid or other layer after the two-way linear layer
    assert not any(isinstance(m, (nn.Sigmoid, nn.Softmax)) for m in d.modules())


def test_discriminator_parameter_count_by_hand():
    d = DMCDiscriminator()
    count = lambda ms: sum(p.numel() for m in ms for p in m.parameters())            # noqa: E731
    assert count(m for m in d.modules() if isinstance(m, nn.Conv2d)) == 489_456
    assert count(m for m in d.modules() if isinstance(m, nn.BatchNorm2d)) == 1_408
    assert count([d.fc]) == 50_178
    assert sum(p.numel() for p in d.parameters()) == D3_PARAMS


def test_discriminator_cost_at_224():
    # multiply-adds a pixel of each stage's map x the map: 112^2 (288 + 2 x 2,304), 56^2 (4,608 + 2 x 9,216),
    # 28^2 (18,432 + 2 x 36,864), 14^2 (73,728 + 2 x 147,456), then the linear layer's 25,088 x 2
    convs = 112**2 * 4_896 + 56**2 * 23_040 + 28**2 * 92_160 + 14**2 * 368_640
    assert convs == 278_175_744
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            DMCDiscriminator().eval()(torch.zeros(1, 2, 224, 224))
    assert counter.get_total_flops() / 2 == convs + 25_088 * 2


@pytest.mark.parametrize("shape", [(2, 224, 224), (3, 40, 40), (2, 17, 23), (2, 1, 1)])
def test_discriminator_gives_two_logits_and_gradients(shape):
    n, h, w = shape
    d = discriminator()
    x = (randn(n, 2, h, w, seed=3) * 5).requires_grad_()
    out = d(x)
    assert out.shape == (n, 2) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out[:, REAL].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # every parameter gets a gradient (the first conv's too, through the eleven blocks above it)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    assert d.eval()(x.detach()).shape == (n, 2)


def test_the_pooling_is_the_identity_at_224():
    """At 224 x 224 the last map is 14 x 14, so the network is the authors' exactly: flatten + linear."""
    d = discriminator().eval()
    x = randn(2, 2, 224, 224, seed=4) * 5
    feats = x * d.config.input_scale
    for block in d.blocks:
        feats = block(feats)
    assert feats.shape == (2, 128, 14, 14)
    torch.testing.assert_close(d(x), d.fc(feats.reshape(2, -1)))


def test_dropout_is_active_only_in_train_mode():
    d = discriminator()
    x = randn(4, 2, 40, 40, seed=5) * 5
    d.eval()
    with torch.no_grad():
        assert torch.equal(d(x), d(x))
    d.train()
    with torch.no_grad():
        a, b = d(x), d(x)
    assert not torch.allclose(a, b)          # batch norm alone is deterministic: the difference is dropout
    # Dropout2d drops whole channels: some of the first block's 16 channels are all zero for a sample
    seen = []
    hook = d.blocks[0][2].register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        d(x)
    hook.remove()
    zero = (seen[0].abs().amax(dim=(2, 3)) == 0)                                   # (N, 16)
    assert zero.any() and not zero.all()
    # with dropout 0 two train-mode passes agree
    d0 = discriminator(dropout=0.0).train()
    with torch.no_grad():
        assert torch.equal(d0(x), d0(x))


def test_input_is_in_pixels_and_scaled_to_the_authors_units():
    """The authors' flow unit is 2 x 20 px x mean(ImageNet std) = 9.04 px (code/dmcnet_GAN/dataset.py:264)."""
    assert AUTHORS_FLOW_UNIT_PX == pytest.approx(9.04)
    d = discriminator().eval()
    assert d.config.input_scale == pytest.approx(1 / 9.04)
    unit = discriminator(input_scale=1.0).eval()
    unit.load_state_dict(d.state_dict())
    x = randn(2, 2, 40, 40, seed=6) * 9
    with torch.no_grad():
        torch.testing.assert_close(d(x), unit(x / AUTHORS_FLOW_UNIT_PX))
        assert not torch.allclose(d(x), unit(x))


def test_discriminator_bad_input_and_config():
    d = DMCDiscriminator()
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        d(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        d(torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="odd"):
        DMCDiscriminatorConfig(kernel_size=4)
    with pytest.raises(ValueError, match="dropout"):
        DMCDiscriminatorConfig(dropout=1.0)
    with pytest.raises(ValueError, match="bn_eps"):
        DMCDiscriminatorConfig(bn_eps=0.0)
    with pytest.raises(ValueError, match="input_scale"):
        DMCDiscriminatorConfig(input_scale=0.0)
    with pytest.raises(ValueError, match="filters"):
        DMCDiscriminatorConfig(filters=())
    # the authors' other variants by configuration: Discriminator (4 convs), Discriminator5 (20 convs)
    one = DMCDiscriminator(DMCDiscriminatorConfig(convs_per_stage=1))
    assert sum(isinstance(m, nn.Conv2d) for m in one.modules()) == 4
    assert sum(p.numel() for p in one.parameters()) == 304 + 4_640 + 18_496 + 73_856 + 2 * (32 + 64 + 128) \
        + 50_178
    assert DMCDiscriminatorConfig(convs_per_stage=5).num_convs == 20


# --- losses ------------------------------------------------------------------------------------------------


def test_class_indices():
    assert (FAKE, REAL) == (0, 1)


def test_flow_mse_exact_and_shape_check():
    """In the authors' normalised flow units by default: (q / 255 - 0.5) / 0.226 of a +-20 px quantization is
    40 * 0.226 = 9.04 px a unit, so a 9.04 px error is 1 (alpha = 10 weighs it as the authors' code does)."""
    from pipeline.models.dmc import AUTHORS_FLOW_UNIT_PX
    assert AUTHORS_FLOW_UNIT_PX == pytest.approx(9.04, abs=1e-6)
    dmc = torch.tensor([[[[0.0, 1.0]], [[2.0, -1.0]]]])                      # (1, 2, 1, 2)
    flow = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]], requires_grad=True)
    loss = flow_mse(dmc.requires_grad_(), flow, unit=1.0)
    assert loss.item() == pytest.approx((1 + 4 + 0 + 9) / 4)
    assert flow_mse(dmc, flow).item() == pytest.approx((1 + 4 + 0 + 9) / 4 / 9.04 ** 2)
    assert flow_mse(torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), 9.04)).item() == pytest.approx(1.0)
    loss.backward()
    assert flow.grad is None and dmc.grad is not None
    with pytest.raises(ValueError, match="same"):
        flow_mse(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))


def test_discriminator_loss():
    real_says_real = torch.tensor([[-20.0, 20.0], [-15.0, 15.0]])
    fake_says_fake = torch.tensor([[20.0, -20.0]])
    assert discriminator_loss(real_says_real, fake_says_fake).item() < 1e-6
    # one mean over the concatenated batch (the authors' code): two samples wrong by 40 each -> 40
    assert discriminator_loss(fake_says_fake, real_says_real[:1]).item() == pytest.approx(40.0, rel=1e-5)
    # three reals right (0), one fake wrong by 40: 40 / 4
    assert discriminator_loss(real_says_real[:1].repeat(3, 1), real_says_real[:1]).item() == \
        pytest.approx(10.0, rel=1e-5)
    unsure = torch.zeros(3, 2)
    assert discriminator_loss(unsure, unsure).item() == pytest.approx(math.log(2))
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

    mse = mse / 9.04 ** 2                                       # in the authors' units
    total, parts = dmc_loss(logits, labels, dmc, flow)
    assert total.item() == pytest.approx(ce + 10 * mse) and set(parts) == {"ce", "mse"}
    assert parts["ce"] == pytest.approx(ce) and parts["mse"] == pytest.approx(mse)

    total, parts = dmc_loss(logits, labels, dmc, flow, d_fake)
    assert total.item() == pytest.approx(ce + 10 * mse + adv)
    assert parts == pytest.approx({"ce": ce, "mse": mse, "adv": adv})

    total, _ = dmc_loss(logits, labels, dmc, flow, d_fake, alpha=0.5, lam=3.0)
    assert total.item() == pytest.approx(ce + 0.5 * mse + 3 * adv)


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
        first = flow_mse(g(x), flow, unit=1.0).item()
    for _ in range(30):
        opt.zero_grad()
        flow_mse(g(x), flow, unit=1.0).backward()
        opt.step()
    with torch.no_grad():
        last = flow_mse(g(x), flow, unit=1.0).item()
    assert first > 0.5 and last < first / 5
