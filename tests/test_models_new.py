"""The papers' missing networks: S3D-G / S3D, R3D-18, 2D ResNet-101/152 and ResNeXt-101 32x8d, VGG-16.

Full-size parameter and multiply-add counts are checked against the published figures on the meta device (no
memory, no compute); the shared interface on tiny versions is in test_models.py. torchvision is not installed,
so its layouts are checked through its state_dict key patterns and its S3D head's arithmetic.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from pipeline.models import build, make_config
from pipeline.models.s3dg import ENDPOINTS, SelfGate, from_torchvision
from pipeline.models.summary import default_size, describe

#: published figures: (parameters, multiply-adds, classes, frames, size); torchvision's model docs
#: (num_params, "GFLOPS", which are multiply-adds) unless noted
PUBLISHED = {
    "s3d": (8_320_048, 17.98e9, 400, 16, 224),           # S3D_Weights.KINETICS400_V1
    "r3d-18": (33_371_472, 40.70e9, 400, 16, 112),       # R3D_18_Weights.KINETICS400_V1
    "resnet2d-101": (44_549_160, 7.80e9, 1000, 1, 224),  # ResNet101_Weights.IMAGENET1K_V1
    "resnet2d-152": (60_192_808, 11.51e9, 1000, 1, 224),  # ResNet152_Weights (DMC-Net Table 1: 11.3 G)
    "resnext2d-101": (88_791_336, 16.41e9, 1000, 1, 224),  # ResNeXt101_32X8D_Weights.IMAGENET1K_V1
    "vgg16": (138_357_544, 15.47e9, 1000, 1, 224),        # VGG16_Weights (Simonyan & Zisserman: 138 M)
}
#: ours exactly, at the same inputs
MACS = {"s3d": 17_978_771_456, "s3dg": 17_979_990_784, "r3d-18": 40_696_553_472,
        "resnet2d-101": 7_801_405_440, "resnet2d-152": 11_513_626_624, "resnext2d-101": 16_414_015_488,
        "vgg16": 15_470_264_320}
#: S3D-G's gates: C x C each, after Conv2d_2c (192) and on the 4 branches of the 9 Inception blocks
GATES = 192 ** 2 + sum(b0 ** 2 + b1 ** 2 + b2 ** 2 + b3 ** 2 for b0, _, b1, _, b2, b3 in (
    (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128),
    (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)))


def meta(arch: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return build(arch, **kw)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def seeded(arch: str, **kw) -> nn.Module:
    torch.manual_seed(0)
    return build(arch, **kw)


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_full_size_counts_match_the_published_figures(arch):
    params, macs, classes, frames, size = PUBLISHED[arch]
    out = describe(arch, classes=classes, frames=frames, size=size)
    assert out["parameters"] == params
    assert out["macs"] == MACS[arch] and round(out["macs"] / 1e9, 2) == pytest.approx(macs / 1e9, abs=0.006)
    assert out["output_shape"] == [1, classes]


def test_s3dg_adds_exactly_its_gates():
    assert GATES == 1_219_328
    assert count(meta("s3dg")) == count(meta("s3d")) + GATES == 9_539_376
    out = describe("s3dg")                      # 3 x 16 x 224 x 224 by default: a gate costs C^2 per clip
    assert out["input_shape"] == [1, 3, 16, 224, 224] and out["macs"] == MACS["s3dg"] == MACS["s3d"] + GATES
    # one gate on each block's output instead: sum of the blocks' C^2
    blocks = sum(c ** 2 for c in (256, 480, 512, 512, 512, 528, 832, 832, 1024))
    assert count(meta("s3dg", gate_at="blocks")) == count(meta("s3d")) + blocks == 12_114_224


def test_gating_false_is_plain_s3d_without_gate_modules():
    plain, gated = meta("s3d"), meta("s3dg")
    assert make_config("s3d") == make_config("s3dg", gating=False)
    assert not any(isinstance(m, SelfGate) for m in plain.modules())
    gates = [n for n, m in gated.named_modules() if isinstance(m, SelfGate)]
    assert len(gates) == 1 + 9 * 4 and gates[0] == "features.3.gate"
    assert "features.5.gate0" in gates and "features.15.gate3" in gates
    # the gates are the only extra state: every key of S3D is in S3D-G with the same shape
    sg = gated.state_dict()
    extra = set(sg) - set(plain.state_dict())
    assert all(k.endswith(".transform.weight") for k in extra) and len(extra) == 37
    assert all(sg[k].shape == v.shape for k, v in plain.state_dict().items())
    blocks = [n for n, m in meta("s3dg", gate_at="blocks").named_modules() if isinstance(m, SelfGate)]
    assert blocks == [f"features.{i}.gate" for i in (5, 6, 8, 9, 10, 11, 12, 14, 15)]


def test_self_gate_is_a_sigmoid_of_the_pooled_feature():
    gate = SelfGate(3)
    x = torch.randn(2, 3, 4, 5, 6)
    with torch.no_grad():
        gate.transform.weight.zero_()
        torch.testing.assert_close(gate(x), x / 2)                       # sigmoid(0) = 1/2 everywhere
        w = torch.randn(3, 3)
        gate.transform.weight.copy_(w)
        expected = torch.sigmoid(x.mean(dim=(2, 3, 4)) @ w.T)[:, :, None, None, None] * x
        torch.testing.assert_close(gate(x), expected)
    assert gate.transform.bias is None


def test_s3d_layout_is_torchvisions():
    model = meta("s3d")
    keys = set(model.state_dict())
    # torchvision's video.s3d keys (less its classifier.1, our fc)
    for key in ("features.0.0.0.weight", "features.0.0.1.running_var", "features.0.1.0.weight",
                "features.2.0.weight", "features.3.1.1.weight", "features.5.branch0.0.weight",
                "features.5.branch1.0.0.weight", "features.5.branch1.1.0.0.weight",
                "features.5.branch1.1.1.1.bias",
                "features.5.branch3.1.0.weight", "features.15.branch2.1.1.0.weight", "fc.weight", "fc.bias"):
        assert key in keys, key
    f = model.features
    spatial, temporal = f[0][0][0], f[0][1][0]
    assert (spatial.kernel_size, spatial.stride, spatial.padding) == ((1, 7, 7), (1, 2, 2), (0, 3, 3))
    assert (temporal.kernel_size, temporal.stride, temporal.padding) == ((7, 1, 1), (2, 1, 1), (3, 0, 0))
    pools = {i: (m.kernel_size, m.stride, m.padding) for i, m in enumerate(f) if isinstance(m, nn.MaxPool3d)}
    assert pools == {1: ((1, 3, 3), (1, 2, 2), (0, 1, 1)), 4: ((1, 3, 3), (1, 2, 2), (0, 1, 1)),
                     7: (3, 2, 1), 13: (2, 2, 0)}
    assert len(f) == 16 and ENDPOINTS["Mixed_5c"] == 15 and ENDPOINTS["MaxPool_4a_3x3"] == 7
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert len(bns) == 77 and all(m.eps == 1e-3 and m.momentum == 1e-3 for m in bns)
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv3d))
    out = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: out.__setitem__(k, tuple(o.shape[1:])))
             for k, m in enumerate(f)]
    model.eval()(torch.zeros(1, 3, 16, 224, 224, device="meta"))
    for h in hooks:
        h.remove()
    assert out[0] == (64, 8, 112, 112) and out[3] == (192, 8, 56, 56) and out[6] == (480, 8, 28, 28)
    assert out[12] == (832, 4, 14, 14) and out[13] == (832, 2, 7, 7) and out[15] == (1024, 2, 7, 7)


def test_from_torchvision_loads_and_reproduces_torchvisions_head():
    ours = seeded("s3d", width=8, num_classes=6).eval()
    # a state_dict in torchvision's form: the classifier a 1x1x1 conv (K, C, 1, 1, 1)
    theirs = {k: v for k, v in ours.state_dict().items() if not k.startswith("fc.")}
    theirs["classifier.1.weight"] = torch.randn(6, ours.feature_dim, 1, 1, 1)
    theirs["classifier.1.bias"] = torch.randn(6)
    converted = from_torchvision(theirs)
    assert converted["fc.weight"].shape == (6, ours.feature_dim)
    ours.load_state_dict(converted, strict=True)
    gated = seeded("s3dg", width=8, num_classes=6)
    missing, unexpected = gated.load_state_dict(converted, strict=False)
    assert not unexpected and len(missing) == 37 and all(".gate" in k for k in missing)
    # torchvision's head: AvgPool3d((2, 7, 7), stride 1), the 1x1x1 conv, then the mean of what is left
    for shape in ((1, 3, 13, 209, 209), (1, 3, 24, 209, 224)):       # Mixed_5c 2 x 7 x 7 and 3 x 7 x 7
        x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            fmap = ours.features(x)
            ref = F.conv3d(F.avg_pool3d(fmap, (2, 7, 7), stride=1), theirs["classifier.1.weight"],
                           theirs["classifier.1.bias"]).mean(dim=(2, 3, 4))
            torch.testing.assert_close(ours(x), ref, rtol=1e-5, atol=1e-6)


def test_s3d_pool_window_clips_and_global_option():
    model = seeded("s3dg", width=8, num_classes=4).eval()
    with torch.no_grad():
        for shape in ((1, 3, 5, 17, 17), (1, 3, 8, 64, 48)):    # smaller than torchvision's 2 x 7 x 7 window
            x = torch.randn(shape)
            fmap = model.features(x)
            torch.testing.assert_close(model.forward_features(x), fmap.mean(dim=(2, 3, 4)))
            torch.testing.assert_close(model(x), model.classify(model.forward_features(x)))
    glob = seeded("s3dg", width=8, num_classes=4, pool="global").eval()
    x = torch.randn(1, 3, 32, 64, 64)
    with torch.no_grad():
        fmap = glob.features(x)
        assert fmap.shape[2:] == (4, 2, 2)
        torch.testing.assert_close(glob.forward_features(x), fmap.mean(dim=(2, 3, 4)))
        big = seeded("s3dg", width=8, num_classes=4).eval()
        x = torch.randn(1, 3, 24, 209, 209)                     # Mixed_5c 3 x 7 x 7: two windows overlap
        fmap = big.features(x)
        ref = F.avg_pool3d(fmap, (2, 7, 7), stride=1).mean(dim=(2, 3, 4))
        torch.testing.assert_close(big.forward_features(x), ref)
        assert not torch.allclose(ref, fmap.mean(dim=(2, 3, 4)))
    assert model.last_block[0] is model.features[14] and len(model.last_block) == 2
    assert default_size("s3dg") == default_size("s3d") == 224 and default_size("r3d-18") == 112
    for bad in ({"gate_at": "convs"}, {"gating": 1}, {"pool": (2, 7, 7)}, {"width": 0}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            make_config("s3dg", **bad)


def test_r3d_18_is_torchvisions_r3d_18():
    model = meta("r3d-18")
    cfg = model.config
    assert cfg.stem == "torchvision" and cfg.shortcut_type == "B" and cfg.depth == 18
    assert model.conv1.kernel_size == (3, 7, 7) and model.conv1.stride == (1, 2, 2)
    assert model.conv1.padding == (1, 3, 3) and isinstance(model.maxpool, nn.Identity)
    assert all(getattr(model, f"layer{i}")[0].downsample[0].stride == (2, 2, 2) for i in (2, 3, 4))
    assert model.layer1[0].downsample is None
    # the only difference to Hara's ResNet-18 with B shortcuts is the stem's kernel: 3 x 64 x (7 - 3) x 49
    assert count(meta("resnet3d-18", shortcut="B")) - count(model) == 3 * 64 * 4 * 49
    out = {}
    hooks = [getattr(model, f"layer{i}").register_forward_hook(
        lambda m, i, o, k=i: out.__setitem__(k, tuple(o.shape[1:]))) for i in range(1, 5)]
    model.eval()(torch.zeros(1, 3, 16, 112, 112, device="meta"))
    for h in hooks:
        h.remove()
    assert out == {1: (64, 16, 56, 56), 2: (128, 8, 28, 28), 3: (256, 4, 14, 14), 4: (512, 2, 7, 7)}
    assert meta("resnet3d-18").config.stem == "hara" and isinstance(meta("resnet3d-18").maxpool, nn.MaxPool3d)
    with pytest.raises(ValueError, match="stem"):
        make_config("r3d-18", stem="c3d")


def test_resnext_and_deep_resnets_keep_torchvisions_names():
    model = meta("resnext2d-101", num_classes=1000)
    sd = model.state_dict()
    # torchvision's resnext101_32x8d: inner width int(64 * 8 / 64) * 32 = 256 in stage 1 ... 2048 in stage 4
    assert sd["layer1.0.conv1.weight"].shape == (256, 64, 1, 1)
    assert sd["layer1.0.conv2.weight"].shape == (256, 8, 3, 3) and model.layer1[0].conv2.groups == 32
    assert sd["layer1.0.conv3.weight"].shape == (256, 256, 1, 1)
    assert sd["layer4.2.conv2.weight"].shape == (2048, 64, 3, 3)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert "layer1.0.downsample.1.running_mean" in sd
    assert sd["fc.weight"].shape == (1000, 2048) and model.config.inner_widths == (256, 512, 1024, 2048)
    assert set(sd) == set(meta("resnet2d-101", num_classes=1000).state_dict())     # same names, other shapes
    assert len(meta("resnet2d-152").layer3) == 36 and len(meta("resnet2d-101").layer3) == 23
    with pytest.raises(ValueError, match="basic blocks"):
        make_config("resnet2d-18", groups=32)
    with pytest.raises(ValueError):
        make_config("resnext2d-101", width_per_group=0)


def test_vgg16_layout_features_and_head():
    model = meta("vgg16", num_classes=1000)
    keys = [k for k in model.state_dict()]
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)           # torchvision's vgg16 features indices
    expected = [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")]
    expected += ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
                 "fc.weight", "fc.bias"]
    assert keys == expected
    assert model.state_dict()["classifier.0.weight"].shape == (4096, 512 * 7 * 7)
    assert [n for n, _ in model.last_block.named_parameters()] == [f"{i}.{p}" for i in (24, 26, 28) for p in
                                                                     ("weight", "bias")]
    assert model.last_block[0] is model.features[24] and isinstance(model.last_block[-1], nn.MaxPool2d)
    bn = meta("vgg16", batch_norm=True)
    bn_convs = [int(k.split(".")[1]) for k in bn.state_dict() if k.startswith("features.") and
                k.endswith(".weight") and bn.state_dict()[k].dim() == 4]
    assert bn_convs == [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]               # vgg16_bn's indices
    # Hidden Two-Stream's temporal stream: 20 stacked flow channels
    flow = describe("vgg16", in_channels=20, classes=101)
    assert flow["input_shape"] == [1, 20, 224, 224] and flow["feature_dim"] == 4096
    assert flow["parameters"] == PUBLISHED["vgg16"][0] - 3 * 64 * 9 + 20 * 64 * 9 - 899 * 4097


def test_vgg_feature_is_fc7_after_relu_and_dropout_before_fc():
    model = seeded("vgg16", width=4, hidden=16, num_classes=3, in_channels=20)
    x = torch.randn(2, 20, 40, 36)
    model.eval()
    with torch.no_grad():
        feat = model.forward_features(x)
        assert feat.shape == (2, 16) and (feat >= 0).all()                   # after fc7's ReLU
        fc7 = model.classifier[3](model.classifier[:3](torch.flatten(model.avgpool(model.features(x)), 1)))
        torch.testing.assert_close(feat, fc7.clamp(min=0))
        torch.testing.assert_close(model(x), model.fc(feat))
    model.train()
    torch.manual_seed(3)
    a = model(x)
    torch.manual_seed(3)
    b = model.classify(model.forward_features(x))
    torch.testing.assert_close(a, b)                                       # same dropout draws: one order
    assert make_config("vgg16").dropout == 0.5 and make_config("vgg16").batch_norm is False
    for bad in ({"depth": 15}, {"hidden": 0}, {"batch_norm": "yes"}):
        with pytest.raises(ValueError):
            make_config("vgg16", **bad)


def test_cli_summary_of_the_new_networks():
    from pipeline.cli import cli

    runner = CliRunner()
    for arch, shape in (("s3dg", [1, 3, 16, 224, 224]), ("r3d-18", [1, 3, 16, 112, 112]),
                        ("vgg16", [1, 3, 224, 224]), ("resnext2d-101", [1, 3, 224, 224])):
        run = runner.invoke(cli, ["models", "summary", arch, "--json"])
        assert run.exit_code == 0, run.output
        assert json.loads(run.output)["input_shape"] == shape
    run = runner.invoke(cli, ["models", "summary", "s3d"])
    assert run.exit_code == 0 and "8.32 M" in run.output and "18.0 G" in run.output
    run = runner.invoke(cli, ["models", "list"])
    assert all(a in run.output for a in ("s3dg", "s3d", "r3d-18", "resnet2d-152", "resnext2d-101", "vgg16"))
