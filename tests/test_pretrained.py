"""Runs that start from published weights (pipeline.train.pretrained): the file's network with the run's
inputs and classes, cross-modality initialisation, composite networks, the fine-tuning recipe."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from pipeline.core.config import TrainConfig, effective_recipe, recipe_defaults
from pipeline.core.errors import CheckpointError
from pipeline.models import build
from pipeline.train import checkpoint as ckpt
from pipeline.train import pretrained as P
from pipeline.train.trainer import Trainer, build_model
from .test_train import CLIPS, make_run, tiny_cfg, write_easy_shards

WEIGHTS = Path(__file__).parent / "data" / "weights"
HARA_B = WEIGHTS / "kenshohara2020_r3d10_B.pth"     # Hara 2020 layout: ResNet-10, shortcut B, 3 in, 7 classes


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    return write_easy_shards(tmp_path_factory.mktemp("easy"))


def test_cross_modality_kernel_is_the_channel_mean_repeated():
    w = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    out = P.cross_modality_kernel(w, 5)
    assert out.shape == (2, 5, 2, 2)
    for c in range(5):
        assert torch.equal(out[:, c], w.mean(dim=1))
    assert out[0, 0, 0, 0] == (0 + 4 + 8) / 3


def test_run_spec_takes_the_files_network_with_the_runs_inputs_and_classes():
    weights = P.read(str(HARA_B))
    spec = {"arch": "resnet3d-18", "in_channels": 2, "num_classes": 4, "width": 8, "layers": [1, 1, 1, 1]}
    out = P.run_spec(spec, weights, "arch")
    assert out["in_channels"] == 2 and out["num_classes"] == 4
    assert out["depth"] == 10 and out["shortcut"] == "B" and out["width"] == 4       # the file's
    with pytest.raises(CheckpointError, match="set train.d3d_arch to resnet3d-18"):
        P.run_spec({"arch": "s3dg", "in_channels": 3, "num_classes": 4}, weights, "d3d_arch")


def test_flow_stream_from_rgb_weights_with_cross_modality(easy, tmp_path):
    """Hara's RGB weights (7 classes) start a 2-channel flow stream of 2 classes: conv1 averaged over RGB
    and repeated over x and y, every other layer as in the file, a fresh classifier."""
    source = torch.load(HARA_B, weights_only=True)["state_dict"]
    cfg = tiny_cfg(epochs=1, pretrained=str(HARA_B), cross_modality=True)
    t = Trainer(make_run("flow", easy, tmp_path, cfg))
    assert t.spec["depth"] == 10 and t.spec["shortcut"] == "B" and t.spec["in_channels"] == 2
    state = t.model.state_dict()
    conv1 = source["module.conv1.weight"]
    assert torch.equal(state["conv1.weight"], conv1.mean(1, keepdim=True).expand(-1, 2, -1, -1, -1))
    assert torch.equal(state["layer3.0.conv2.weight"], source["module.layer3.0.conv2.weight"])
    assert torch.equal(state["layer2.0.downsample.1.running_var"], source["module.layer2.0.downsample.1.running_var"])
    assert state["fc.weight"].shape == (2, 32)
    info = t.pretrained_info
    assert info["classifier"] == "replaced" and info["cross_modality"] == ["conv1.weight"]
    assert info["format"] == "kenshohara"
    # fine-tuning MARS's way: the last block and the classifier at the recipe's fine-tuning rate
    assert t.finetune_layers == "last"
    t.fit()
    t.close()
    saved = ckpt.load(tmp_path / "model.pt")
    assert saved["model_spec"]["depth"] == 10 and saved["settings"]["pretrained"]["source"] == str(HARA_B)
    assert torch.equal(saved["model"]["layer1.0.conv1.weight"], source["module.layer1.0.conv1.weight"])
    assert not torch.equal(saved["model"]["layer4.0.conv1.weight"], source["module.layer4.0.conv1.weight"])


def test_other_input_channels_are_refused_without_cross_modality(easy, tmp_path):
    with pytest.raises(CheckpointError, match=r"conv1.weight is \(4, 3, 7, 7, 7\).*cross_modality"):
        Trainer(make_run("flow", easy, tmp_path, tiny_cfg(pretrained=str(HARA_B))))
    with pytest.raises(CheckpointError, match="set train.arch to resnet3d-18"):
        Trainer(make_run("flow", easy, tmp_path, tiny_cfg(arch="resnext3d-101", pretrained=str(HARA_B))))


def test_dmcnet_classifier_from_an_imagenet_resnet():
    """DMC-Net starts its ResNet-18 classifier from ImageNet weights on the 2-channel cue; the generator
    keeps its initialisation."""
    spec = {"arch": "dmcnet", "classifier": "resnet2d-18", "in_channels": 5, "num_classes": 3, "width": 4}
    weights = P.read(str(WEIGHTS / "torchvision_resnet18.pth"))
    assert P.run_spec(dict(spec), weights, "coviar_arch") == spec and weights.into == "classifier"
    torch.manual_seed(0)
    model = build_model(spec)
    generator = {k: v.clone() for k, v in model.generator.state_dict().items()}
    info = P.load_into(model, weights, cross_modality=True)
    assert info["into"] == "classifier" and info["classifier"] == "replaced"
    w = weights.state["conv1.weight"]
    assert torch.equal(model.classifier.conv1.weight, w.mean(1, keepdim=True).expand(-1, 2, -1, -1))
    assert torch.equal(model.classifier.layer2[0].conv1.weight, weights.state["layer2.0.conv1.weight"])
    assert all(torch.equal(v, model.generator.state_dict()[k]) for k, v in generator.items())


def test_fine_tuning_recipe_applies_only_from_pretrained_weights():
    rec = recipe_defaults()
    scratch, tuned = TrainConfig(), dataclasses.replace(TrainConfig(), pretrained="k.pth")
    assert effective_recipe(rec["mars"], train=scratch).lr == 0.1
    mars = effective_recipe(rec["mars"], train=tuned)
    assert (mars.lr, mars.weight_decay, mars.epochs, mars.finetune_layers) == (0.001, 1e-5, 400, "last")
    resframe = effective_recipe(rec["resframe"], train=tuned)       # residual frames 4.3: 50 epochs at 0.001
    assert (resframe.lr, resframe.epochs, resframe.weight_decay, resframe.finetune_layers) == (0.001, 50, 0.001, "all")
    iframe = effective_recipe(rec["iframe"], train=tuned)           # CoViAR's recipe is already ImageNet's
    assert iframe.lr == rec["iframe"].lr and iframe.finetune_layers == "all"
    forced = effective_recipe(rec["mars"], train=dataclasses.replace(tuned, lr=0.05))
    assert forced.lr == 0.05                                        # a global train.lr wins


def test_stacked_temporal_stream_on_a_2d_network_stacks_the_flows_as_channels():
    """Hidden Two-Stream's VGG-16 temporal stream: the T - 1 flows as 2 (T - 1) channels x1, y1, x2, ..."""
    torch.manual_seed(0)
    model = build("hidden", temporal="vgg16", num_classes=3, frames=3, motionnet_width=4, scales=2, width=4)
    assert model.temporal.features[0].in_channels == 4
    clip = torch.randn(2, 3, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        _, _, flow = model.flow(clip)                                # (N, 2, T - 1, H, W)
        x = model.normalize(flow)
        stacked = torch.cat([x[:, :, 0], x[:, :, 1]], dim=1)          # x1, y1, x2, y2
        assert torch.allclose(model.forward_features(clip), model.temporal.forward_features(stacked))
