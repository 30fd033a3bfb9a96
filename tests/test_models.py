"""The networks of pipeline.models: the shared interface on tiny versions, the published sizes of the full
ones (built on the meta device: no memory, no compute), the MAC counter, and ``prep-cli models``."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from pipeline.models import ARCHS, build, config_fields, input_dims_of, make_config
from pipeline.models.resnet3d import ZeroPadShortcut
from pipeline.models.summary import conv_macs, describe, summarize

TINY = {"width": 8, "layers": (1, 1, 1, 1)}
#: ResNeXt's grouped width (2 x width = 16 at width 8) must divide into the groups; S3D-G and VGG have no
#: residual stages (``layers``)
TINY_EXTRA = {"resnext3d-101": {"cardinality": 8}, "resnext2d-101": {"groups": 4}}
TINY_OWN = {"s3dg": {"width": 8}, "s3d": {"width": 8}, "vgg16": {"width": 8, "hidden": 16}}
#: Hara et al. 2018, Table 2 (400 classes)
HARA = {"resnet3d-18": 33.2e6, "resnet3d-34": 63.5e6, "resnet3d-50": 46.4e6, "resnet3d-101": 85.3e6,
        "resnext3d-101": 48.3e6, "resnet18-3d-elu": 33.2e6}
#: ours exactly (400 classes): a change of any architecture shows here
EXACT = {"resnet3d-18": 33_235_280, "resnet3d-34": 63_544_912, "resnet3d-50": 47_018_576,
         "resnet3d-101": 86_064_720, "resnext3d-101": 48_340_816, "resnet18-3d-elu": 33_235_280,
         "resnet2d-18": 11_381_712, "resnet2d-34": 21_489_872, "resnet2d-50": 24_327_632,
         "r3d-18": 33_371_472, "s3dg": 9_539_376, "s3d": 8_320_048, "resnet2d-101": 43_319_760,
         "resnet2d-152": 58_963_408, "resnext2d-101": 87_561_936, "vgg16": 135_899_344}


#: the classifiers of one input (DMC-Net and the stacked temporal stream, a generator + classifier, have their
#: tests in test_compressed_methods.py and test_hidden_two_stream.py)
CLASSIFIERS = [a for a in ARCHS if a not in ("dmcnet", "hidden")]


def tiny(arch: str, in_channels: int = 3, num_classes: int = 5, **kw) -> nn.Module:
    torch.manual_seed(0)
    if arch in TINY_OWN:
        return build(arch, in_channels=in_channels, num_classes=num_classes, **{**TINY_OWN[arch], **kw})
    return build(arch, in_channels=in_channels, num_classes=num_classes, **TINY, **TINY_EXTRA.get(arch, {}),
                 **kw)


def clip(model: nn.Module, n: int, c: int, t: int, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    shape = (n, c, t, h, w) if model.input_dims == 3 else (n, c, h, w)
    return torch.randn(shape, generator=g)


def meta(arch: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return build(arch, **kw)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("in_channels", [2, 3])
@pytest.mark.parametrize("arch", CLASSIFIERS)
def test_tiny_models_train_and_keep_the_interface(arch, in_channels):
    model = tiny(arch, in_channels)
    x = clip(model, 2, in_channels, 5, 33, 37)          # odd sizes everywhere
    model.train()
    logits = model(x)
    assert logits.shape == (2, 5) and logits.dtype == torch.float32
    nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        feat = model.forward_features(x)
        assert feat.shape == (2, model.feature_dim)
        torch.testing.assert_close(model(x), model.classify(feat), rtol=0, atol=0)
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == model.feature_dim
    assert model.fc.out_features == 5
    if hasattr(model, "layer4"):
        assert model.last_block is model.layer4
    else:                                       # S3D-G's last Inception stage, VGG's last conv stage
        ids = {id(p) for p in model.parameters()}
        assert 0 < len(list(model.last_block.parameters())) < len(ids)
        assert all(id(p) in ids for p in model.last_block.parameters())
    two_d = arch.startswith(("resnet2d", "resnext2d", "vgg"))
    assert model.input_dims == input_dims_of(arch) == (2 if two_d else 3)
    assert dataclasses.is_dataclass(model.config) and model.config.in_channels == in_channels
    assert model.arch == arch
    assert not any(k.startswith("last_block") for k in model.state_dict())   # registered once


@pytest.mark.parametrize("arch", ["resnet3d-18", "resnet3d-50", "resnet18-3d-elu", "resnet2d-18"])
def test_smallest_inputs_run(arch):
    model = tiny(arch).eval()
    with torch.no_grad():
        assert model(clip(model, 1, 3, 1, 1, 1)).shape == (1, 5)
        assert model(clip(model, 1, 3, 2, 9, 3)).shape == (1, 5)


def test_dropout_sits_between_features_and_fc():
    model = tiny("resnet3d-18", dropout=0.5)
    x = clip(model, 2, 3, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.fc(model.forward_features(x)))
        model.train()
        feat = model.forward_features(x)
        assert not torch.equal(model.classify(feat), model.fc(feat))


@pytest.mark.parametrize("arch", ["resnet3d-18", "resnext3d-101", "resnet18-3d-elu", "resnet2d-50"])
def test_deterministic_given_the_seed_and_hara_init(arch):
    a, b = tiny(arch), tiny(arch)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    for m in a.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fan_out = m.out_channels * math.prod(m.kernel_size)        # torch: weight.size(0) x kernel
            if m.weight.numel() > 2000:
                assert abs(m.weight.std().item() / math.sqrt(2 / fan_out) - 1) < 0.15
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


@pytest.mark.parametrize("arch", list(HARA))
def test_parameter_counts_match_hara(arch):
    n = count(meta(arch, num_classes=400))
    assert n == EXACT[arch]
    # Hara's ResNet-50 (B shortcuts, as their code and pretrained model) counts 47.0 M, 1.3 % over the 46.4 M
    # of their table; the other five agree within 1 %.
    tolerance = 0.015 if arch == "resnet3d-50" else 0.01
    assert abs(n / HARA[arch] - 1) < tolerance, (arch, n)


def test_shortcut_defaults_and_counts():
    assert meta("resnet3d-18").config.shortcut_type == "A"
    assert meta("resnet3d-34").config.shortcut_type == "A"
    assert meta("resnet3d-50").config.shortcut_type == "B"
    assert meta("resnext3d-101").config.shortcut_type == "B"
    assert count(meta("resnet3d-18", shortcut="B")) == EXACT["resnet3d-18"] + 173_824  # 3 x (1x1x1 conv + BN)
    with torch.device("meta"):
        pool, stride = build("resnet18-3d-elu"), build("resnet18-3d-elu", downsample="stride")
    assert count(pool) == count(stride) == EXACT["resnet3d-18"]


def test_full_size_feature_dims_and_2d_counts():
    dims = {"resnet3d-18": 512, "resnet3d-34": 512, "resnet3d-50": 2048, "resnet3d-101": 2048,
            "resnext3d-101": 2048, "resnet18-3d-elu": 512, "resnet2d-18": 512, "resnet2d-34": 512,
            "resnet2d-50": 2048, "r3d-18": 512, "s3dg": 1024, "s3d": 1024, "resnet2d-101": 2048,
            "resnet2d-152": 2048, "resnext2d-101": 2048, "vgg16": 4096}
    assert {a: meta(a).feature_dim for a in CLASSIFIERS} == dims
    assert {a: count(meta(a)) for a in CLASSIFIERS} == EXACT
    # DMC-Net: the generator's 4,584 parameters (Table 2) + a 2D ResNet-18 on its 2-channel cue
    assert count(meta("dmcnet")) == count(meta("resnet2d-18", in_channels=2)) + 4_584
    # torchvision's ImageNet ResNets: 11,689,512 / 21,797,672 / 25,557,032 parameters
    assert [count(meta(a, num_classes=1000)) for a in ("resnet2d-18", "resnet2d-34", "resnet2d-50")] == \
        [11_689_512, 21_797_672, 25_557_032]


def test_meta_build_counts_like_a_real_one():
    torch.manual_seed(0)
    real = build("resnet3d-18")
    assert count(real) == EXACT["resnet3d-18"]
    small = tiny("resnet18-3d-elu", 2)
    assert describe("resnet18-3d-elu", 2, 5, 4, 32, **TINY) == {
        "arch": "resnet18-3d-elu", **summarize(small, (1, 2, 4, 32, 32)), "feature_dim": 64}


def test_resnet2d_18_is_1_8_g_macs_at_224():
    torch.manual_seed(0)
    out = summarize(build("resnet2d-18", num_classes=1000), (1, 3, 224, 224))
    assert 1.7e9 < out["macs"] < 1.9e9 and out["parameters"] == 11_689_512
    assert out["linear_macs"] == 512 * 1000 and out["output_shape"] == [1, 1000]
    assert describe("resnet2d-18", classes=1000)["macs"] == out["macs"]     # meta: the same count


def test_mac_counting_by_hand():
    conv = nn.Conv3d(2, 4, (3, 3, 3), padding=1, bias=False)
    grouped = nn.Conv3d(4, 6, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), groups=2)
    fc = nn.Linear(6 * 4 * 3 * 3, 7)
    model = nn.Sequential(conv, grouped, nn.Flatten(), fc)
    out = summarize(model, (1, 2, 4, 6, 6))
    # conv: 4 x 4 x 6 x 6 outputs x 2 inputs x 27; grouped: 6 x 4 x 3 x 3 outputs x 2 inputs x 9; fc: 216 x 7
    assert out["conv_macs"] == 576 * 2 * 27 + 216 * 2 * 9
    assert out["linear_macs"] == 216 * 7
    assert out["macs"] == 31_104 + 3_888 + 1_512
    assert out["parameters"] == 2 * 4 * 27 + 6 * 2 * 9 + 6 + 216 * 7 + 7
    assert summarize(model, (3, 2, 4, 6, 6))["macs"] == out["macs"]           # per sample
    assert conv_macs(conv, torch.zeros(2, 4, 4, 6, 6)) == 31_104
    assert model.training                                                    # mode restored


def test_shortcut_a_subsamples_and_zero_pads():
    x = torch.randn(2, 3, 5, 7, 6)
    y = ZeroPadShortcut(8, 2)(x)
    assert y.shape == (2, 8, 3, 4, 3)
    assert torch.equal(y[:, :3], x[:, :, ::2, ::2, ::2]) and not y[:, 3:].any()
    assert torch.equal(ZeroPadShortcut(3, 1)(x), x)


def test_resframe_variant_pools_with_elu():
    pool = tiny("resnet18-3d-elu")
    stride = tiny("resnet18-3d-elu", downsample="stride", activation="relu")
    assert any(isinstance(m, nn.ELU) for m in pool.modules())
    assert not any(isinstance(m, nn.ReLU) for m in pool.modules())
    assert not any(isinstance(m, nn.ELU) for m in stride.modules())
    assert isinstance(pool.layer2[0].pool, nn.MaxPool3d) and pool.layer2[0].conv1.stride == (1, 1, 1)
    assert stride.layer2[0].conv1.stride == (2, 2, 2)
    shapes = {}
    for name, model in (("pool", pool), ("stride", stride), ("k2", tiny("resnet18-3d-elu", pool_kernel=2))):
        seen = []
        hooks = [getattr(model, f"layer{i}").register_forward_hook(
            lambda m, i, o: seen.append(tuple(o.shape))) for i in range(1, 5)]
        with torch.no_grad():
            model.eval()(clip(model, 1, 3, 9, 35, 30))
        for h in hooks:
            h.remove()
        shapes[name] = seen
    assert shapes["pool"] == shapes["stride"] == shapes["k2"]      # same feature-map sizes in all versions


def test_build_refuses_unknown_names_and_bad_values():
    with pytest.raises(ValueError, match="unknown architecture 'resnet3d-19'.*resnet3d-18.*resnet2d-50"):
        build("resnet3d-19")
    with pytest.raises(ValueError, match="no config field 'channels'.*in_channels"):
        build("resnet3d-18", channels=2)
    with pytest.raises(ValueError, match="no config field 'cardinality'"):
        build("resnet2d-18", cardinality=32)
    for bad in ({"depth": 19}, {"shortcut": "C"}, {"width": 0}, {"layers": (1, 1, 1)}, {"dropout": 1.0},
                {"depth": 18, "cardinality": 32}):
        with pytest.raises(ValueError):
            make_config("resnext3d-101" if "cardinality" in bad else "resnet3d-18", **bad)
    with pytest.raises(ValueError, match="divisible by the cardinality 32"):
        make_config("resnext3d-101", width=8)
    with pytest.raises(ValueError, match="activation"):
        make_config("resnet18-3d-elu", activation="tanh")
    assert make_config("resnet3d-18", width=None, layers=[1, 2, 1, 1]) == make_config("resnet3d-18",
                                                                                         layers=(1, 2, 1, 1))
    assert "cardinality" in config_fields("resnext3d-101")
    assert "downsample" in config_fields("resnet18-3d-elu")
    assert make_config("resnext3d-101").cardinality == 32 and make_config("resnet3d-101").cardinality == 1


def test_cli_models_summary_json_and_text():
    from pipeline.cli import cli

    runner = CliRunner()
    run = runner.invoke(cli, ["models", "summary", "resnet3d-18", "--json"])
    assert run.exit_code == 0, run.output
    info = json.loads(run.output)
    assert info["parameters"] == EXACT["resnet3d-18"] and isinstance(info["macs"], int)
    assert info["input_shape"] == [1, 3, 16, 112, 112] and 8.2e9 < info["macs"] < 8.4e9
    run = runner.invoke(cli, ["models", "summary", "resnet2d-18", "--in-channels", "2", "--classes", "101",
                              "--json"])
    info = json.loads(run.output)
    assert info["input_shape"] == [1, 2, 224, 224] and info["output_shape"] == [1, 101]
    run = runner.invoke(cli, ["models", "summary", "resnet3d-18", "--frames", "8", "--size", "64"])
    assert run.exit_code == 0 and "33.24 M" in run.output and " G" in run.output
    assert "1 x 3 x 8 x 64 x 64" in run.output
    run = runner.invoke(cli, ["models", "summary", "resnet3d-19"])
    assert run.exit_code == 2 and "resnext3d-101" in run.output
    run = runner.invoke(cli, ["models", "list"])
    assert run.exit_code == 0 and all(a in run.output for a in ARCHS)
