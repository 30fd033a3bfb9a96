"""Published weights in (pipeline.models.weights, `prep-cli models import`): each source layout reproduces
the original code's output (fixtures made by running that code: tests/data/weights/README.md), wrappers and
``module.`` prefixes, the shortcut and classifier handling, and every refusal (never a partial load)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from pipeline.models import build
from pipeline.models.weights import (WeightsError, convert, detect_format, import_weights, load_pretrained,
                                     read_file, strip_module, unwrap)

DATA = Path(__file__).resolve().parent / "data" / "weights"
#: fixture -> (format auto-detected, arch of the spec)
FIXTURES = {
    "torchvision_resnet18": ("torchvision", "resnet2d-18"),
    "torchvision_resnet50_l1111": ("torchvision", "resnet2d-50"),
    "kenshohara2018_resnet10_A": ("kenshohara", "resnet3d-18"),
    "kenshohara2020_r3d10_B": ("kenshohara", "resnet3d-18"),
    "kenshohara2020_r3d50_l1111_flow": ("kenshohara", "resnet3d-50"),
    "mars_resnext_flow": ("kenshohara", "resnext3d-101"),
    "coviar_iframe_resnet18": ("coviar", "resnet2d-18"),
    "dmcnet_densenettiny_resnet18": ("dmcnet", "dmcnet"),
    "torchvision_r3d_l1111": ("torchvision", "r3d-18"),
    "torchvision_s3d_w4": ("torchvision", "s3d"),
    "torchvision_vgg16_w2": ("torchvision", "vgg16"),
    "torchvision_vgg16_bn_w2": ("torchvision", "vgg16"),
    "torchvision_resnext_g4_l1111": ("torchvision", "resnext2d-101"),
}
#: torchvision hook -> its fixture (every hook has one)
HOOK_FIXTURES = {"resnet": ["torchvision_resnet18", "torchvision_resnet50_l1111", "torchvision_resnext_g4_l1111"],
                 "video.r3d_18": ["torchvision_r3d_l1111"], "video.s3d": ["torchvision_s3d_w4"],
                 "vgg": ["torchvision_vgg16_w2", "torchvision_vgg16_bn_w2"]}


def fixture(name: str) -> tuple[Path, dict]:
    return DATA / f"{name}.pth", torch.load(DATA / f"{name}.io.pt", weights_only=True)


def run(spec: dict, state: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    model = build(**spec).eval()
    model.load_state_dict(state)
    with torch.no_grad():
        if spec["arch"] == "dmcnet":
            feat, cue = model.forward_parts(x)
            return model.classify(feat), cue
        return model(x), None


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_converted_network_reproduces_the_original_code(name):
    path, io = fixture(name)
    state, spec, info = load_pretrained(path)
    assert (info["format"], spec["arch"]) == FIXTURES[name] and info["detected"]
    y, cue = run(spec, state, io["input"])
    assert (y - io["output"]).abs().max().item() <= 1e-4
    if "dmc" in io:                                     # DMC-Net: the generated cue too
        assert (cue - io["dmc"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name, fmt", [("mars_resnext_flow", "mars"), ("kenshohara2020_r3d10_B", "kenshohara"),
                                       ("torchvision_resnet18", "torchvision")])
def test_named_format_gives_the_same_weights(name, fmt):
    path, io = fixture(name)
    state, spec, info = load_pretrained(path, format=fmt)
    assert not info["detected"] and info["format"] == fmt
    assert (run(spec, state, io["input"])[0] - io["output"]).abs().max().item() <= 1e-4


def test_mars_format_refuses_a_plain_resnet():
    with pytest.raises(WeightsError, match="not a MARS ResNeXt"):
        load_pretrained(DATA / "kenshohara2020_r3d10_B.pth", format="mars")


def tiny_state() -> dict:
    torch.manual_seed(0)
    return build("resnet3d-18", width=4, layers=(1, 1, 1, 1), num_classes=3).state_dict()


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s, "epoch": 3, "arch": "resnet-10"},
    lambda s: {"model": s},
    lambda s: {"net": s},
    lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}, "optimizer": {}},
    lambda s: {"model": {"state_dict": {f"module.module.{k}": v for k, v in s.items()}}},
], ids=["plain", "state_dict", "model", "net", "dataparallel", "nested-ddp-twice"])
def test_wrappers_and_module_prefix_are_unwrapped(wrap):
    state = tiny_state()
    out, spec, info = convert(wrap(state))
    assert set(out) == set(state) and all(torch.equal(out[k], state[k]) for k in state)
    assert spec == {"arch": "resnet3d-18", "in_channels": 3, "num_classes": 3, "depth": 10, "width": 4}


def test_strip_module_only_when_every_key_has_it():
    assert strip_module({"module.a": torch.zeros(1), "b": torch.zeros(1)})[1] is False
    assert strip_module({"module.a": torch.zeros(1)}) == ({"a": torch.zeros(1)}, True)


def test_unwrap_refuses_non_tensor_entries_and_empty_files():
    with pytest.raises(WeightsError, match="not tensors"):
        unwrap({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1), "note": "x"})
    with pytest.raises(WeightsError, match="no tensors found"):
        unwrap({"epoch": 3})


def test_classes_replaces_only_the_classifier_deterministically():
    path = DATA / "torchvision_resnet18.pth"
    original = torch.load(path, weights_only=True)
    rng = torch.get_rng_state()
    state, spec, info = load_pretrained(path, num_classes=3)
    assert torch.equal(torch.get_rng_state(), rng)               # the global generator is left alone
    assert spec["num_classes"] == 3 and info["classifier"] == "replaced"
    assert state["fc.weight"].shape == (3, 32) and state["fc.bias"].shape == (3,)
    assert all(torch.equal(state[k], original[k]) for k in original if not k.startswith("fc."))
    again, _, _ = load_pretrained(path, num_classes=3)
    assert torch.equal(again["fc.weight"], state["fc.weight"])
    kept, _, info = load_pretrained(path, num_classes=10)        # the file's own count: kept
    assert info["classifier"] == "kept" and torch.equal(kept["fc.weight"], original["fc.weight"])


def test_classes_on_dmcnet_replaces_the_classifier_fc():
    state, spec, _ = load_pretrained(DATA / "dmcnet_densenettiny_resnet18.pth", num_classes=2)
    assert state["classifier.fc.weight"].shape == (2, 32) and spec["num_classes"] == 2


def test_shortcut_a_and_b_are_read_from_the_downsample_tensors():
    _, spec_a, _ = load_pretrained(DATA / "kenshohara2018_resnet10_A.pth")
    _, spec_b, _ = load_pretrained(DATA / "kenshohara2020_r3d10_B.pth")
    assert build(**spec_a).config.shortcut_type == "A" and "shortcut" not in spec_a    # Hara's default for 18
    assert build(**spec_b).config.shortcut_type == "B" and spec_b["shortcut"] == "B"
    # a bottleneck network with type-A shortcuts (no downsample tensors) is read as A, not refused
    torch.manual_seed(0)
    state = build("resnet3d-50", width=4, layers=(1, 1, 1, 1), shortcut="A").state_dict()
    assert not any("downsample" in k for k in state)
    assert convert(state)[1]["shortcut"] == "A"


def test_old_files_without_num_batches_tracked_get_zero_counters():
    raw = torch.load(DATA / "kenshohara2018_resnet10_A.pth", weights_only=True)["state_dict"]
    assert not any(k.endswith("num_batches_tracked") for k in raw)
    state, _, _ = load_pretrained(DATA / "kenshohara2018_resnet10_A.pth")
    assert state["bn1.num_batches_tracked"].item() == 0


def test_a_mismatching_architecture_is_refused_naming_the_keys():
    with pytest.raises(WeightsError, match=r"missing \(\d+\): layer1\.0\.conv3\.weight") as exc:
        load_pretrained(DATA / "kenshohara2020_r3d10_B.pth", arch="resnet3d-50")
    assert "unexpected" in str(exc.value) or "shape mismatch" in str(exc.value)
    with pytest.raises(WeightsError, match=r"missing \(\d+\): layer1\.2\.conv1\.weight"):
        load_pretrained(DATA / "torchvision_resnet18.pth", arch="resnet2d-34")       # 18 has 2 blocks, not 3
    with pytest.raises(WeightsError, match="shape mismatch"):
        convert({**tiny_state(), "fc.weight": torch.zeros(3, 7)})


def test_a_given_matching_architecture_adapts_channels_classes_width_and_shortcut():
    state, spec, _ = load_pretrained(DATA / "torchvision_resnet18.pth", arch="resnet2d-18")
    assert spec == {"arch": "resnet2d-18", "in_channels": 3, "num_classes": 10, "width": 4}
    torch.manual_seed(0)
    b18 = build("resnet3d-18", width=4, shortcut="B", in_channels=2, num_classes=3).state_dict()
    _, spec, _ = convert(b18, arch="resnet3d-18", format="kenshohara")
    assert spec == {"arch": "resnet3d-18", "in_channels": 2, "num_classes": 3, "width": 4, "shortcut": "B"}
    with pytest.raises(WeightsError, match="missing"):          # but not the blocks per stage
        load_pretrained(DATA / "kenshohara2020_r3d50_l1111_flow.pth", arch="resnet3d-50")


def test_a_file_with_pickled_objects_is_refused_with_the_resave_hint(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(nn.Linear(2, 2), path)                          # a pickled module, as some repositories publish
    with pytest.raises(WeightsError, match="pickled Python objects") as exc:
        read_file(path)
    assert "weights_only=False" in str(exc.value) and "plain.pth" in str(exc.value)


def test_unreadable_and_missing_files_are_refused(tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="cannot be read"):
        read_file(tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="does not exist"):
        read_file(tmp_path / "none.pth")


def test_coviar_data_bn_streams_are_refused():
    raw = torch.load(DATA / "coviar_iframe_resnet18.pth", weights_only=True)["state_dict"]
    raw = {**raw, "module.data_bn.weight": torch.ones(3), "module.data_bn.bias": torch.zeros(3)}
    with pytest.raises(WeightsError, match="data_bn"):
        convert({"state_dict": raw})


def test_dmcnet_drops_unused_data_bn_and_the_gan_discriminator_and_refuses_unknown_keys():
    raw = torch.load(DATA / "dmcnet_densenettiny_resnet18.pth", weights_only=True)["state_dict"]
    extra = {"module.data_bn.weight": torch.ones(2), "module.discriminator.adv_layer.weight": torch.zeros(2, 5)}
    _, spec, info = convert({"state_dict": {**raw, **extra}})
    assert spec["arch"] == "dmcnet" and info["dropped"] == sorted(k[len("module."):] for k in extra)
    with pytest.raises(WeightsError, match="unknown keys"):
        convert({"state_dict": {**raw, "module.extra.weight": torch.zeros(1)}})


def test_dmcnet_other_generators_are_refused():
    raw = torch.load(DATA / "dmcnet_densenettiny_resnet18.pth", weights_only=True)["state_dict"]
    ctx = {k: v for k, v in raw.items() if "gen_flow_model" not in k}
    ctx["module.gen_flow_model.conv_context.0.0.weight"] = torch.zeros(32, 5, 3, 3)
    with pytest.raises(WeightsError, match="ContextNetwork"):
        convert({"state_dict": ctx})


def test_hara_stems_other_than_7x7x7_are_refused():
    raw = torch.load(DATA / "kenshohara2020_r3d10_B.pth", weights_only=True)["state_dict"]
    raw["module.conv1.weight"] = raw["module.conv1.weight"][:, :, :3]     # conv1_t_size 3
    with pytest.raises(WeightsError, match="conv1_t_size 3"):
        convert(raw)


def test_every_torchvision_hook_maps_a_fixture_to_a_registered_architecture():
    from pipeline.models import ARCHS
    from pipeline.models.weights import TORCHVISION_HOOKS

    assert sorted(HOOK_FIXTURES) == sorted(h.name for h in TORCHVISION_HOOKS)
    for hook in TORCHVISION_HOOKS:
        for name in HOOK_FIXTURES[hook.name]:
            state = torch.load(DATA / f"{name}.pth", weights_only=True)
            assert detect_format(state) == "torchvision" and hook.detect(state), name
            assert [h.name for h in TORCHVISION_HOOKS if h.detect(state)][0] == hook.name, name
            mapped = hook.map(dict(state), None)
            assert mapped.spec["arch"] in ARCHS and mapped.spec["arch"] == FIXTURES[name][1]


def test_s3d_weights_into_s3dg_are_refused_as_the_gates_have_no_weights():
    path = DATA / "torchvision_s3d_w4.pth"
    with pytest.raises(WeightsError, match=r"gates .* would have no weights.*--arch s3d") as exc:
        load_pretrained(path, arch="s3dg")
    assert "never loads partially" in str(exc.value)
    _, spec, _ = load_pretrained(path, arch="s3d")              # the default, named
    assert spec["arch"] == "s3d"
    with pytest.raises(WeightsError, match="map to 's3d'"):
        load_pretrained(path, arch="vgg16")


@pytest.mark.parametrize("gate_at", ["branches", "blocks"])
def test_s3dg_state_dicts_in_our_names_keep_their_gates(gate_at):
    torch.manual_seed(0)
    state = build("s3dg", width=4, num_classes=3, gate_at=gate_at).state_dict()
    out, spec, info = convert(state)
    assert info["format"] == "torchvision" and spec["arch"] == "s3dg" and spec["width"] == 4
    assert spec.get("gate_at", "branches") == gate_at
    assert all(torch.equal(out[k], state[k]) for k in state)
    with pytest.raises(WeightsError, match="would drop them; use --arch s3dg"):
        convert(state, arch="s3d")


def test_s3d_classes_replace_the_converted_fc():
    state, spec, info = load_pretrained(DATA / "torchvision_s3d_w4.pth", num_classes=7)
    assert info["classifier"] == "replaced" and state["fc.weight"].shape == (7, 64) and spec["num_classes"] == 7


def test_vgg_depth_and_batch_norm_are_read_from_the_feature_indices():
    torch.manual_seed(0)
    for depth, bn in ((11, False), (19, True), (16, True)):
        state = build("vgg16", depth=depth, batch_norm=bn, width=2, hidden=8, num_classes=3,
                      pool_size=2).state_dict()
        tv = {("classifier.6." + k[3:] if k.startswith("fc.") else k): v for k, v in state.items()}
        for src in (tv, state):                                 # torchvision's names and ours
            out, spec, _ = convert(src)
            assert spec["arch"] == "vgg16" and spec.get("depth", 16) == depth
            assert spec.get("batch_norm", False) == bn and spec["pool_size"] == 2 and spec["hidden"] == 8
            assert all(torch.equal(out[k], state[k]) for k in state)


def test_vgg_with_a_broken_layout_is_refused():
    raw = torch.load(DATA / "torchvision_vgg16_w2.pth", weights_only=True)
    moved = {k: v for k, v in raw.items() if not k.startswith("features.2.")}
    moved["features.1.weight"] = raw["features.2.weight"]              # two convs one index apart
    with pytest.raises(WeightsError, match="fit no VGG layout"):
        convert(moved)
    with pytest.raises(WeightsError, match="classifier"):
        convert({k: v for k, v in raw.items() if not k.startswith("classifier.6.")})


@pytest.mark.parametrize("arch", ["resnet2d-101", "resnet2d-152", "resnext2d-101"])
def test_deep_torchvision_resnets_come_out_under_their_registered_names(arch):
    torch.manual_seed(0)
    state = build(arch, width=8, num_classes=3).state_dict()
    _, spec, _ = convert(state, format="torchvision")
    assert spec == {"arch": arch, "in_channels": 3, "num_classes": 3, "width": 8}


def test_resnext_groups_and_width_per_group_are_read_and_given_arch_keeps_its_groups():
    _, spec, _ = load_pretrained(DATA / "torchvision_resnext_g4_l1111.pth")
    assert (spec["groups"], spec["width_per_group"], spec["layers"]) == (4, 32, (1, 1, 1, 1))
    with pytest.raises(WeightsError, match="shape mismatch"):             # resnext2d-101 has 32 groups
        load_pretrained(DATA / "torchvision_resnext_g4_l1111.pth", arch="resnext2d-101")
    torch.manual_seed(0)                                                   # resnext50_32x4d's layout
    state = build("resnext2d-101", depth=50, width=8, width_per_group=16, groups=4,
                  layers=(1, 1, 1, 1)).state_dict()
    assert convert(state)[1] == {"arch": "resnext2d-101", "in_channels": 3, "num_classes": 400, "depth": 50,
                                 "layers": (1, 1, 1, 1), "groups": 4, "width": 8, "width_per_group": 16}
    wide = build("resnet2d-50", width=8, width_per_group=128, layers=(1, 1, 1, 1)).state_dict()  # wide_resnet50_2
    assert convert(wide)[1]["width_per_group"] == 128


def test_unknown_layouts_are_refused():
    with pytest.raises(WeightsError, match="unknown weights layout"):
        convert({"encoder.weight": torch.zeros(2)})
    with pytest.raises(WeightsError, match="unknown format"):
        convert(tiny_state(), format="caffe")


def test_cli_import_end_to_end_and_reimport_of_the_checkpoint(tmp_path):
    from pipeline.cli import cli
    from pipeline.train import checkpoint as ckpt

    out = tmp_path / "r3d10.pt"
    src = DATA / "kenshohara2020_r3d10_B.pth"
    res = CliRunner().invoke(cli, ["models", "import", str(src), "--out", str(out), "--classes", "4"])
    assert res.exit_code == 0, res.output
    assert "format kenshohara (detected), unwrapped state_dict module." in res.output
    assert "arch resnet3d-18, 4 classes (classifier replaced)" in res.output and f"wrote {out}" in res.output
    data = ckpt.load(out)                                      # the trainer's reader (weights_only) reads it
    assert data["model_spec"]["num_classes"] == 4 and data["method"] == "import"
    model = build(**data["model_spec"])
    model.load_state_dict(data["model"])                       # strict
    state, spec, info = load_pretrained(out)                   # a motionprep checkpoint passes through
    assert info["format"] == "motionprep" and spec == data["model_spec"]
    assert all(torch.equal(state[k], data["model"][k]) for k in state)


def test_cli_refusal_writes_nothing(tmp_path):
    from pipeline.cli import cli

    out = tmp_path / "bad.pt"
    res = CliRunner().invoke(cli, ["models", "import", str(DATA / "torchvision_resnet18.pth"), "--out", str(out),
                                   "--arch", "resnet2d-50"])
    assert res.exit_code != 0 and isinstance(res.exception, WeightsError)
    assert "missing" in str(res.exception)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "out.pt"
    out.write_bytes(b"previous")

    def half_then_fail(self, data):
        with open(self, "wb") as f:
            f.write(bytes(data)[:100])
        raise OSError("device error")

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="device error"):
        import_weights(DATA / "torchvision_resnet18.pth", out)
    monkeypatch.undo()
    assert out.read_bytes() == b"previous"                     # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt"]   # no temporary left


def test_hara_resnet18_loads_into_the_residual_frames_network_key_for_key():
    torch.manual_seed(0)
    state = build("resnet3d-18", width=4, num_classes=3).state_dict()
    out, spec, _ = convert(state, arch="resnet18-3d-elu")
    assert spec == {"arch": "resnet18-3d-elu", "in_channels": 3, "num_classes": 3, "width": 4}
    build(**spec).load_state_dict(out)


def test_hara_2020_resnext_with_a_wide_stem_is_refused():
    torch.manual_seed(0)
    state = build("resnext3d-101", width=4, layers=(1, 1, 1, 1), cardinality=4).state_dict()
    state["conv1.weight"] = torch.zeros(8, 3, 7, 7, 7)          # Hara 2020: stem as wide as stage 1 (8)
    with pytest.raises(WeightsError, match="2020 ResNeXt"):
        convert(state)


def test_2d_weights_for_a_3d_architecture_are_refused():
    with pytest.raises(WeightsError, match="2D weights for the 3D architecture 'resnet3d-18'"):
        load_pretrained(DATA / "torchvision_resnet18.pth", arch="resnet3d-18")
