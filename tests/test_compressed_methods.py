"""CoViAR's streams and DMC-Net as methods of the trainer, on real shards of tiny translation videos: the
decode, extract_flow, reencode and extract_mv stages run on them, then the methods train and test."""

from __future__ import annotations

import dataclasses

from pipeline.core.config import effective_recipe, recipe_defaults

import numpy as np
import pytest
import torch

from pipeline.compressed.encoding import decode_mv
from pipeline.core.config import ClipsConfig, EvaluateConfig, TrainConfig, resolve
from pipeline.core.manifest import make_manifest, read_manifest
from pipeline.data import ShardClips
from pipeline.data.clips import anchored_starts, anchored_test_starts
from pipeline.evaluate.run import test_stream as run_test_stream   # not collected as a test
from pipeline.steps import run_shard
from pipeline.train import checkpoint as ckpt
from pipeline.train.inputs import dmc_target, network_input, scales_of
from pipeline.train.methods import get as get_method
from pipeline.train.trainer import TrainRun, Trainer, trainable_names, method_clips
from pipeline.models import build

from .compressed_fixtures import write_translation

S = 32
CLIPS = dataclasses.replace(ClipsConfig(), length=4, crop=24, flip=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two classes (texture moving right / left by 1.5 px a frame), 4 training and 2 test videos each, 14
    frames at 32x32 (two GOPs: 12 + 2), through the real stages."""
    tmp = tmp_path_factory.mktemp("cd")
    root = tmp / "videos"
    rows = []
    for label, dx in (("right", 1.5), ("left", -1.5)):
        for k in range(6):
            rel = f"{label}/{label}{k}.avi"
            write_translation(root / rel, 14, dx, 0.5 * (k % 3 - 1), height=S, width=S, seed=10 * k + (dx > 0))
            rows.append((f"{label}{k}", rel, label, "train" if k < 4 else "test"))
    make_manifest("toy", "csv", root, ["left", "right"], rows).write(tmp / "toy.tsv")
    m = read_manifest(tmp / "toy.tsv")
    s = resolve({"results": str(tmp / "results"), "videos_per_shard": 20, "dataset": "toy",
                 "datasets": {"toy": {"format": "csv", "root": str(root)}},
                 "decode": {"short_side": None}, "reencode": {"size": [S, S]}})
    out = {}
    for stage, inp in (("decode", None), ("extract_flow", "decode"), ("reencode", None), ("extract_mv", "reencode")):
        d = tmp / "results" / stage
        run_shard(stage, s, 0, manifest=m, input_dir=tmp / "results" / inp if inp else None, out_dir=d,
                  progress=False)
        out[stage] = d / "shard-00000.h5"
    return {"rgb": [out["decode"]], "flow": [out["extract_flow"]], "mv": [out["extract_mv"]]}


def cfg(**kw) -> TrainConfig:
    base = dict(coviar_arch="resnet2d-18", iframe_arch="resnet2d-18", hts_arch="resnet3d-18", width=4, layers=(1, 1, 1, 1), epochs=2,
                batch_size=4, workers=0, schedule="constant", lr=0.01, device="cpu", precision="fp32", seed=0,
                val_fraction=0.25, dmc_generator_epochs=1, dmc_adversarial_epochs=1)
    return dataclasses.replace(TrainConfig(), **{**base, **kw})


def state_of(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_anchored_clips_end_on_their_picture_type():
    assert anchored_starts(14, 2, "p", 12) == [s for s in range(13) if (s + 1) % 12]
    assert anchored_starts(14, 1, "i", 12) == [0, 12]
    assert anchored_starts(1, 2, "p", 12) == []
    assert anchored_test_starts(1, 2, "p", 12) == [0]                # too short: looped, as other clips
    starts = anchored_test_starts(300, 2, "p", 12, count=25)
    assert len(starts) == 25 and starts[0] == 0 and all((s + 1) % 12 for s in starts)


def test_network_inputs_and_the_dmc_target_are_in_pixels(shards):
    data = ShardClips.from_config(shards, "mv+residual+flow", CLIPS, mode="train", seed=0, length=2, anchor="p")
    scales = scales_of(data)
    assert scales["mv"] == pytest.approx(20 / 127.5) and scales["flow"] == pytest.approx(40 / 255)
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    x = network_input(get_method("dmc"), batch, scales)
    assert x.shape == (4, 5, 24, 24)
    q = (batch["mv"][:, :, 1] + 128).numpy().astype(np.uint8)     # the stored uint8 of the anchor frame
    np.testing.assert_allclose(x[:, :2].numpy(), decode_mv(q), atol=1e-5)
    np.testing.assert_allclose(x[:, 2:].numpy(), batch["residual"][:, :, 1].numpy() / 128)
    # the target: content moving right gives vectors dx < 0 (src - dst) and TV-L1 flow x > 0 from the frame
    # before: the target is the negated flow, on the side of the vectors
    target = dmc_target(batch, scales)
    labels = batch["label"].numpy()
    for i in range(4):
        right = data.classes[labels[i]] == "right"
        inner = (slice(None), slice(6, 18), slice(6, 18))
        assert (target[i][inner][0].mean() < -0.5) == right and (x[i, 0][6:18, 6:18].mean() < -0.5) == right
    assert get_method("mv").loads == ("mv",) and get_method("dmc").loads == ("mv", "residual", "flow")


def test_dmc_phases_train_what_section_7_2_says(shards, tmp_path):
    run = TrainRun(method="dmc", train=cfg(epochs=1), clips=CLIPS, shards=shards, out_dir=tmp_path, progress=False)
    t = Trainer(run)
    assert type(t.model).__name__ == "DMCNet" and t.spec["classifier"] == "resnet2d-18"
    gen = {n for n in trainable_names(t.model, "generator", "none")}
    assert gen and all(n.startswith("generator.") for n in gen)
    states = [state_of(t.model)]
    disc = [state_of(t.disc_module)]
    for stop in (1, 2, 3):                     # generator alone; CE + alpha MSE; + adversarial
        t.fit(resume=stop > 1, stop_after=stop) if stop < 3 else t.fit(resume=True)
        states.append(state_of(t.model))
        disc.append(state_of(t.disc_module))
    t.close()
    moved = [{k for k in a if not torch.equal(a[k], b[k])} for a, b in zip(states, states[1:])]
    assert moved[0] and all(k.startswith("generator.") for k in moved[0])        # step 1: the generator only
    assert any(k.startswith("classifier.") for k in moved[1])                       # step 2: end to end
    d_moved = [{k for k in a if not torch.equal(a[k], b[k])} for a, b in zip(disc, disc[1:])]
    assert not d_moved[0] and not d_moved[1] and d_moved[2]                         # D trains in step 3 only
    rows = [dict(r) for r in t.history]
    assert [r["phase"] for r in rows] == ["generator", "joint", "adversarial"]
    assert {"train_mse"} <= set(rows[0]) and {"train_ce", "train_mse", "train_adv", "train_disc"} <= set(rows[2])
    last = ckpt.load(tmp_path / "last.pt")
    assert "discriminator" in last and "discriminator_optimizer" in last
    groups = t.optimizer.param_groups
    lrs = sorted({g["lr"] for g in groups})
    assert lrs == pytest.approx([0.01])     # from scratch: the x 0.01 of the slow layers guards pretrained weights only


@pytest.mark.parametrize("method", ["mv", "residual", "iframe", "dmc"])
def test_compressed_streams_train_and_test(shards, tmp_path, method):
    run = TrainRun(method=method, train=cfg(), clips=CLIPS, shards=shards, out_dir=tmp_path, progress=False)
    t = Trainer(run)
    summary = t.fit()
    t.close()
    assert summary["epochs"] == (4 if method == "dmc" else 2)
    inputs = {"iframe": ("frame",), "dmc": ("mv", "residual")}.get(method, (method,))
    assert get_method(method).inputs == inputs
    r = run_test_stream(method, tmp_path / "model.pt", {k: v for k, v in shards.items() if k in ("rgb", "mv")},
                        CLIPS, dataclasses.replace(EvaluateConfig(), device="cpu", batch_size=8))
    assert r.scores.shape == (4, 2) and np.isfinite(r.scores).all()
    # test items: the anchored frames of each test video (I-frames 0 and 12 for iframe; P-frames otherwise),
    # each in every view of the method's test protocol (CoViAR: 10 crops; DMC-Net: one squashed centre)
    recipe = effective_recipe(recipe_defaults()[method], clips=CLIPS)
    ds = ShardClips.from_config(shards, "+".join(inputs), CLIPS, recipe, mode="test", split="test",
                                **method_clips(get_method(method), 12))
    views = 1 if method == "dmc" else 10
    assert r.views == views and len(ds.test_view_list) == views
    frames = 2 if method == "iframe" else 12
    assert r.clips == len(ds.items) == 4 * frames * views


def test_dmcnet_is_a_classifier_on_the_generated_cue():
    torch.manual_seed(0)
    m = build("dmcnet", num_classes=3, width=4, layers=(1, 1, 1, 1)).eval()
    x = torch.randn(2, 5, 24, 24)
    feats, cue = m.forward_parts(x)
    assert cue.shape == (2, 2, 24, 24) and torch.allclose(m(x), m.classifier(cue))
    assert torch.equal(cue, x[:, :2])          # the last generator layer starts at zero: DMC = MV at first
    with pytest.raises(ValueError, match="5 input channels"):
        build("dmcnet", in_channels=3)


# ----------------------------------------------------------------------------------------------------------
# Hidden Two-Stream: MotionNet, then the stacked temporal stream three ways


def hts_cfg(**kw) -> TrainConfig:
    return cfg(**{**dict(arch="resnet3d-18", hts_motionnet_epochs=2, hts_motionnet_width=4, hts_scales=3,
                         hts_lr=0.002, epochs=1), **kw})


def test_hidden_trains_motionnet_then_the_temporal_stream(shards, tmp_path):
    run = TrainRun(method="hidden", train=hts_cfg(), clips=CLIPS, shards=shards, out_dir=tmp_path, progress=False)
    t = Trainer(run)
    assert type(t.model).__name__ == "HiddenTwoStream" and t.spec["temporal"] == "resnet3d-18"
    assert t.spec["frames"] == CLIPS.length and t.spec["scales"] == 3
    before = state_of(t.model)
    t.fit(stop_after=2)
    mid = state_of(t.model)
    t.fit(resume=True)
    after = state_of(t.model)
    t.close()
    moved1 = {k for k in before if not torch.equal(before[k], mid[k])}
    moved2 = {k for k in mid if not torch.equal(mid[k], after[k])}
    assert moved1 and all(k.startswith("motionnet.") for k in moved1)       # step 1: MotionNet alone
    assert moved2 and all(k.startswith("temporal.") for k in moved2)        # step 2: MotionNet frozen
    rows = t.history
    assert [r["phase"] for r in rows] == ["motionnet", "motionnet", "temporal"]
    assert {"train_unsup", "train_pixel", "train_smooth", "train_ssim"} <= set(rows[0])
    assert isinstance(t.optimizer, torch.optim.SGD)                         # step 2: SGD as the others
    # end to end, from the trained hidden: everything moves; with the unsupervised losses beside the CE
    for method, parts in (("hidden_e2e", {"train_ce"}), ("hidden_e2e_unsup", {"train_ce", "train_unsup"})):
        out = tmp_path / method
        e2e = Trainer(TrainRun(method=method, train=hts_cfg(), clips=CLIPS, shards=shards, out_dir=out,
                               progress=False, init=tmp_path / "model.pt"))
        start = state_of(e2e.model)
        assert all(torch.equal(start[k], after[k]) for k in after)          # starts from hidden's model.pt
        e2e.fit()
        e2e.close()
        moved = {k for k in start if not torch.equal(start[k], state_of(e2e.model)[k])}
        assert any(k.startswith("motionnet.") for k in moved) and any(k.startswith("temporal.") for k in moved)
        assert parts <= set(e2e.history[-1])
    r = run_test_stream("hidden_e2e_unsup", tmp_path / "hidden_e2e_unsup" / "model.pt", {"rgb": shards["rgb"]}, CLIPS,
                        dataclasses.replace(EvaluateConfig(), device="cpu", batch_size=8))
    assert r.scores.shape == (4, 2) and r.input == "rgb"


def test_hidden_refuses_a_crop_motionnet_cannot_stride(shards, tmp_path):
    from pipeline.core.errors import ConfigError
    with pytest.raises(ConfigError, match="not a multiple of 2\\*\\*hts_scales"):
        Trainer(TrainRun(method="hidden", train=hts_cfg(hts_scales=4), clips=CLIPS, shards=shards, out_dir=tmp_path,
                         progress=False))
    with pytest.raises(ConfigError, match="starts from the trained hidden"):
        Trainer(TrainRun(method="hidden_e2e", train=hts_cfg(), clips=CLIPS, shards=shards, out_dir=tmp_path,
                         progress=False))


def test_weighted_fusion_and_its_config_syntax():
    from pipeline.evaluate.metrics import fuse
    from pipeline.steps.evaluate import parse_fusion
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(fuse([a, b], [1, 1.5]), [[0.4, 0.6]])        # spatial : temporal = 1 : 1.5
    np.testing.assert_allclose(fuse([a, b]), [[0.5, 0.5]])
    f = parse_fusion(["rgb", "hidden:1.5"])
    assert (f.names, f.weights, f.average, f.normalize) == (["rgb", "hidden"], [1.0, 1.5], None, "none")
    f = parse_fusion(["rgb", "flow"])
    assert (f.names, f.weights) == (["rgb", "flow"], None)
    f = parse_fusion({"streams": ["rgb", "hidden:1.5"], "normalize": "relu_l1", "average": "softmax"})
    assert (f.names, f.weights, f.average, f.normalize) == (["rgb", "hidden"], [1.0, 1.5], "softmax", "relu_l1")


def test_dmc_refuses_flow_of_another_frame_size(shards, tmp_path):
    from pipeline.core.errors import StageError
    from pipeline.steps.train import check_same_geometry

    from .shard_fixtures import write_shards
    check_same_geometry(shards)                                   # 32x32 flow, 32x32 re-encoded frames
    other = write_shards(tmp_path, [5, 5], h=48, w=64)            # flow at 64x48
    with pytest.raises(StageError, match="flow is 64x48 and the re-encoded frames 32x32.*decode.size"):
        check_same_geometry({"flow": [other["flow"]], "mv": shards["mv"]})
