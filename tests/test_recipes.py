"""The methods' recipes: configuration (defaults, overrides and their precedence), the optimisers and
schedules they build, the views ShardClips takes from them, and the test protocols' score averaging."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
import yaml

from pipeline.core.config import (ClipsConfig, ConfigError, TrainConfig, effective_recipe, recipe_defaults,
                                  resolve)
from pipeline.data import ShardClips
from pipeline.data import clips as C
from pipeline.evaluate import metrics as M
from pipeline.models import build
from pipeline.train import optim as O

from .shard_fixtures import write_shards

RECIPES = recipe_defaults()


# -- configuration -----------------------------------------------------------------------------------------


def test_every_method_has_a_recipe_with_its_authors_values():
    from pipeline.train import METHODS
    assert set(RECIPES) == set(METHODS)
    mars = RECIPES["mars"]
    assert (mars.size, mars.length, mars.train_view, mars.test_view, mars.test_resize, mars.test_clips) == \
        (112, 16, "corner", "short_center", 1.0, 0)
    assert mars.scales == pytest.approx([1, 2 ** -0.25, 2 ** -0.5, 2 ** -0.75, 0.5])
    assert (mars.optimizer, mars.lr, mars.momentum, mars.dampening, mars.weight_decay) == ("sgd", 0.1, 0.9, 0.9, 1e-3)
    assert mars.average == "logits" and RECIPES["d3d"].average == "softmax" == RECIPES["resframe"].average
    for m in ("iframe", "mv", "residual"):
        r = RECIPES[m]
        assert (r.size, r.test_view, r.test_clips, r.optimizer, r.adam_eps, r.weight_decay, r.slow_layers) == \
            (224, "squash_ten_crop", 25, "adam", 1e-3, 1e-4, "backbone")
        assert round(r.test_resize * r.size) == 256 and r.crop_positions == "random"
        assert r.accumulated == (m != "iframe") and r.lr_steps == (150, 270, 390) and r.batch_size == 80
    dmc = RECIPES["dmc"]
    assert (dmc.test_view, dmc.test_clips, dmc.slow_layers, round(dmc.test_resize * dmc.size)) == \
        ("squash_center", 25, "all", 256)
    assert RECIPES["hidden"].length == 11 and RECIPES["hidden"].test_view == "ten_crop"
    sp = RECIPES["spatial"]                    # Hidden Two-Stream's spatial stream: TSN's VGG-16 recipe
    assert (sp.size, sp.length, sp.test_view, sp.test_clips, sp.dampening, sp.lr, sp.batch_size) == \
        (224, 1, "ten_crop", 25, 0.0, 0.001, 256)


def test_overrides_take_precedence_over_recipes():
    """recipe < a config file's recipes entry (key by key) < dataset overrides < non-null train/clips keys."""
    cfg = {"recipes": {"mars": {"lr": 0.05}},
           "datasets": {"x": {"format": "folder", "root": "/r", "overrides": {
               "recipes": {"mars": {"epochs": 7}, "dmc": {"test_clips": 5}}}}}}
    s = resolve(cfg, "x")
    mars = s.recipe("mars")
    assert (mars.lr, mars.epochs, mars.dampening, mars.train_view) == (0.05, 7, 0.9, "corner")  # the rest kept
    assert s.recipe("dmc").test_clips == 5 and s.recipe("dmc").optimizer == "adam"
    s = resolve({**cfg, "train": {"lr": 0.2, "batch_size": 8}, "clips": {"crop": 40, "length": 8}}, "x")
    mars, iframe = s.recipe("mars"), s.recipe("iframe")
    assert (mars.lr, mars.batch_size, mars.size, mars.length) == (0.2, 8, 40, 8)
    assert (iframe.lr, iframe.size) == (0.2, 40) and iframe.weight_decay == 1e-4      # only what was set
    with pytest.raises(ConfigError, match="no method"):
        resolve({"datasets": {"x": {"format": "folder", "root": "/r", "overrides": {"recipes": {"nope": {}}}}}},
                "x")
    with pytest.raises(ConfigError, match="test_view"):
        resolve({"recipes": {"mars": {"test_view": "three_crop"}}}, "demo")


def test_config_file_shows_the_recipes_of_the_schema():
    from pathlib import Path

    from pipeline.core.config import defaults, filled
    written = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    assert filled({"recipes": written["recipes"]})["recipes"] == defaults()["recipes"]
    assert list(written["recipes"]) == list(defaults()["recipes"])


# -- optimisers and schedules ------------------------------------------------------------------------------


def _groups(model, recipe):
    names = {n for n, _ in model.named_parameters()}
    return O.param_groups(model, names, recipe)


def test_marss_sgd_reaches_torch_with_dampening_and_weight_decay():
    model = build("resnet3d-18", num_classes=3, width=4, layers=(1, 1, 1, 1))
    opt = O.build_optimizer(_groups(model, RECIPES["mars"]), RECIPES["mars"])
    assert isinstance(opt, torch.optim.SGD)
    (g,) = opt.param_groups                                   # one group: no layer is slowed
    assert (g["lr"], g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"]) == (0.1, 0.9, 0.9, 1e-3, False)
    # dampening 0.9: the first step moves a parameter by lr * grad, later ones add (1 - 0.9) grad to the buffer
    p = torch.nn.Parameter(torch.zeros(1))
    o = O.build_optimizer([{"params": [p]}], dataclasses.replace(RECIPES["mars"], weight_decay=0.0))
    for _ in range(2):
        p.grad = torch.ones(1)
        o.step()
    assert p.item() == pytest.approx(-0.1 * (1 + (0.9 * 1 + 0.1 * 1)))
    with pytest.raises(ValueError, match="Nesterov"):
        O.build_optimizer([{"params": [p]}], dataclasses.replace(RECIPES["mars"], nesterov=True))


def test_coviar_groups_backbone_slow_first_layer_and_fc():
    model = build("resnet2d-18", in_channels=2, num_classes=5, width=8)
    r = RECIPES["mv"]
    opt = O.build_optimizer(_groups(model, r), r)
    assert isinstance(opt, torch.optim.Adam)
    by = {g["name"]: g for g in opt.param_groups}
    assert set(by) == {"fc", "first", "slow"}
    assert by["fc"]["lr"] == 0.01 and by["first"]["lr"] == pytest.approx(0.001) and by["slow"]["lr"] == pytest.approx(1e-4)
    assert all(g["eps"] == 1e-3 and g["weight_decay"] == 1e-4 for g in opt.param_groups)
    ids = lambda ps: {id(p) for p in ps}     # noqa: E731
    assert ids(by["fc"]["params"]) == ids(model.fc.parameters())
    assert ids(by["first"]["params"]) == ids([*model.conv1.parameters(), *model.bn1.parameters()])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    iframe = O.build_optimizer(_groups(model, RECIPES["iframe"]), RECIPES["iframe"])   # first layer: 0.01 too
    assert {g["name"] for g in iframe.param_groups} == {"fc", "slow"}


@pytest.mark.parametrize("arch, overrides, first", [
    ("s3dg", {"width": 8}, lambda m: m.features[0]),                     # Conv2d_1a: both separable convs
    ("vgg16", {"width": 2, "hidden": 8}, lambda m: m.features[0]),
    ("vgg16", {"width": 2, "hidden": 8, "batch_norm": True}, lambda m: m.features[:2]),   # conv + BN
    ("r3d-18", {"width": 4, "layers": (1, 1, 1, 1)}, lambda m: nn.ModuleList([m.conv1, m.bn1])),
])
def test_first_layer_group_is_the_networks_own_first_layer(arch, overrides, first):
    model = build(arch, in_channels=2, num_classes=5, **overrides)
    r = RECIPES["mv"]                                          # CoViAR: first layer x 0.1, backbone x 0.01
    by = {g["name"]: g for g in _groups(model, r)}
    assert set(by) == {"fc", "first", "slow"}
    ids = lambda ps: {id(p) for p in ps}     # noqa: E731
    assert ids(by["first"]["params"]) == ids(first(model).parameters())
    assert ids(by["first"]["params"]) == ids(model.first_layer.parameters())
    assert ids(by["fc"]["params"]) == ids(model.fc.parameters())
    assert sum(len(g["params"]) for g in by.values()) == len(list(model.parameters()))


def test_dmc_groups_the_whole_classifier_slow_the_generator_not():
    model = build("dmcnet", num_classes=3, width=4, layers=(1, 1, 1, 1))
    r = RECIPES["dmc"]
    by = {g["name"]: g for g in _groups(model, r)}
    assert set(by) == {"generator", "slow"} and by["generator"]["lr"] == 0.01 and by["slow"]["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in by["slow"]["params"]} == {id(p) for p in model.classifier.parameters()}  # fc included
    paper = dataclasses.replace(r, slow_layers="backbone")     # DMC-Net 7.2's text: all but the last layer
    by = {g["name"]: g for g in _groups(model, paper)}
    assert {id(p) for p in by["fc"]["params"]} == {id(p) for p in model.classifier.fc.parameters()}
    names = {n for n, _ in model.named_parameters()}             # from scratch: nothing to keep, all at lr
    (main,) = [g for g in O.param_groups(model, names, r, pretrained=False) if g["name"] != "generator"]
    assert main["name"] == "main" and main["lr"] == 0.01


def test_schedules():
    p = torch.nn.Parameter(torch.zeros(1))
    r = dataclasses.replace(RECIPES["iframe"], lr_steps=(2, 4), lr_factor=0.1)
    opt = O.build_optimizer([{"params": [p]}], r)
    sch = O.build_scheduler(opt, r, 6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert lrs == pytest.approx([3e-4, 3e-4, 3e-5, 3e-5, 3e-6, 3e-6])
    assert isinstance(O.build_scheduler(opt, RECIPES["mars"], 6), torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert O.build_scheduler(opt, dataclasses.replace(r, schedule="constant"), 6) is None


# -- views in the dataset ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("views"), [20, 9], h=48, w=64)


def test_default_test_view_is_marss(shards):
    """ShardClips(paths, "rgb", mode="test") with no other argument: short side -> 112, centre 112, every
    non-overlapping 16-frame clip."""
    ds = ShardClips([shards["rgb"]], "rgb", mode="test")
    assert (ds.crop, ds.length, ds.test_view, len(ds.test_view_list)) == (112, 16, "short_center", 1)
    s = ds[0]
    assert s["rgb"].shape == (3, 16, 112, 112)
    from pipeline.data import views as V
    from pipeline.shards import ShardReader
    with ShardReader(shards["rgb"]) as r:
        first = r.decode(0, "rgb", 0, 1)[0]                # (48, 64, 3) RGB
    want = V.apply(first, V.geometry(V.test_views("short_center", 112)[0], 48, 64))
    np.testing.assert_allclose(s["rgb"][:, 0].numpy().transpose(1, 2, 0) + np.array(C.RGB_MEAN), want, atol=1e-3)
    ramp = s["rgb"][0, 0].numpy() + C.RGB_MEAN[0]          # R = 2 x of the 64 x 48 frame
    # 48 -> 112: the frame is 149.3 -> int = 149 wide, centre crop x0 = round(37 / 2) = 18 (Python: 18)
    u = 18 + np.arange(112)
    x = (u + 0.5) * 64 / 149 - 0.5
    err = ramp[56, 4:-4] - 2 * x[4:-4]          # JPEG noise of a few levels; a pixel off would bias it by ~2
    assert abs(err.mean()) < 1.2 and np.abs(err).max() < 4   # (the geometry exactly: test_views.py)


def test_train_views_are_the_same_for_every_modality_and_mirror_flow(shards):
    ds = ShardClips({"rgb": [shards["rgb"]], "flow": [shards["flow"]]}, "rgb+flow", mode="train", length=4,
                    crop=16, seed=2)
    assert ds.train_view == "corner"
    flips, sizes = set(), set()
    for i in range(60):
        ds.seed = i                                          # another draw for each i
        start, view = ds.draw(i % 2)
        s = ds[i % 2]
        assert int(s["start"]) == start
        assert s["rgb"].shape == (3, 4, 16, 16) and s["flow"].shape == (2, 4, 16, 16)
        ramp = s["rgb"][0, 0].numpy() + C.RGB_MEAN[0]
        g_x = view.scale_w * 48                              # the square's side, in frame pixels
        span = abs(float(ramp[8, -1] - ramp[8, 0])) / 2      # columns covered by the output, x2 ramp
        assert span == pytest.approx(int(g_x) * 15 / 16, abs=2.5)
        mirrored = ramp[8, 0] > ramp[8, -1]
        assert mirrored == view.flip
        fx = s["flow"][0].mean().item() + 127.5
        assert abs(fx - (55 if mirrored else 200)) < 2      # x of flow negated with the mirror
        flips.add(bool(mirrored))
        sizes.add(round(view.scale_w, 3))
    assert flips == {True, False} and len(sizes) >= 4


def test_reduced_decoding_matches_full_decoding_in_the_dataset(tmp_path):
    big = write_shards(tmp_path, [6], h=96, w=128)
    a = ShardClips([big["rgb"]], "rgb", mode="test", length=4, crop=40)          # 96 -> 40: 1/2 decoding
    b = ShardClips([big["rgb"]], "rgb", mode="test", length=4, crop=40, reduced=False)
    x, y = a[0]["rgb"], b[0]["rgb"]
    assert x.shape == y.shape == (3, 4, 40, 40)
    assert float((x - y).abs().mean()) < 1.5


def test_ten_crop_items_and_their_score_average(shards):
    ds = ShardClips([shards["rgb"]], "rgb", mode="test", length=4, crop=32, test_view="ten_crop",
                    test_resize=1.0, test_clips=3)
    assert len(ds) == 2 * 3 * 10                            # videos x clips x views
    assert [ds.items[i][2] for i in range(10)] == list(range(10)) and ds.item_video[:30].tolist() == [0] * 30
    mirrored = ds[5]["rgb"].numpy()
    plain = ds[0]["rgb"].numpy()                            # centre, and the centre mirrored
    np.testing.assert_allclose(mirrored, plain[..., ::-1], atol=1e-4)
    # scores of fixed values: a video's score is the mean over its 30 items (logits) or of their softmax
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(len(ds), 4))
    v = M.video_scores(scores, ds.item_video, 2, "logits")
    np.testing.assert_allclose(v[1], scores[30:].mean(axis=0))
    s = M.video_scores(scores, ds.item_video, 2, "softmax")
    np.testing.assert_allclose(s[0], M.softmax(scores[:30]).mean(axis=0))


def test_spaced_test_clips_are_tsns():
    assert C.spaced_clip_starts(40, 16, 0) == [0, 16]                 # MARS: non-overlapping
    assert C.spaced_clip_starts(40, 16, 5) == [2, 7, 12, 17, 22]      # t = 25 / 5 = 5: int(2.5 + 5k)
    assert C.spaced_clip_starts(3, 1, 5) == [0, 0, 1, 2, 2]           # t = 0.6: int(0.3 + 0.6 k), repeats
    assert C.spaced_clip_starts(5, 16, 3) == [0, 0, 0]                # shorter than a clip: looped


def test_relu_l1_normalisation_before_a_weighted_fusion():
    a = np.array([[2.0, -1.0, 2.0], [-1.0, -2.0, -3.0]])
    n = M.normalize_scores(a, "relu_l1")
    np.testing.assert_allclose(n, [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
    b = np.array([[0.0, 4.0, 0.0], [1.0, 0.0, 0.0]])
    fused = M.fuse([n, M.normalize_scores(b, "relu_l1")], [1.0, 1.5])
    np.testing.assert_allclose(fused[0], [0.2, 0.6, 0.2])
    with pytest.raises(ValueError, match="normalize"):
        M.normalize_scores(a, "l2")


def test_effective_recipe_of_a_train_config():
    cfg = dataclasses.replace(TrainConfig(), epochs=3, lr=0.5)
    clips = dataclasses.replace(ClipsConfig(), crop=24)
    r = effective_recipe(RECIPES["dmc"], train=cfg, clips=clips)
    assert (r.epochs, r.lr, r.size, r.optimizer, r.batch_size) == (3, 0.5, 24, "adam", RECIPES["dmc"].batch_size)


def _px(rgb, offsets):
    """One RGB pixel through CoViAR's HLS jitter."""
    return C.hls_jitter(np.array(rgb, np.uint8).reshape(1, 1, 1, 3), offsets).reshape(3).tolist()


def test_hls_jitter_is_coviars_colour_augmentation():
    assert _px([128, 128, 128], (0, 50, 0)) == [178, 178, 178]       # lightness up, grey stays grey
    assert _px([255, 255, 255], (0, 50, 0)) == [255, 255, 255]       # capped at 255
    assert _px([128, 128, 128], (0, -200, 0)) == [0, 0, 0]           # floored at 0
    r, g, b = _px([255, 0, 0], (60, 0, 0))                          # hue 0 -> 60 (120 degrees): red -> green
    assert g >= 250 and r <= 5 and b <= 5
    assert max(abs(c - 128) for c in _px([255, 0, 0], (0, 0, -255))) <= 1      # no saturation left: grey
    clip = np.stack([np.full((4, 4, 3), 60, np.uint8), np.full((4, 4, 3), 200, np.uint8)])
    out = C.hls_jitter(clip, (0, 20, 0))
    assert out.shape == clip.shape and out.dtype == np.uint8 and out[0].max() == 80 and out[1].min() == 220
    rng = np.random.default_rng(0)
    draws = np.array([C.draw_hls_jitter(rng, (36, 50, 50)) for _ in range(2000)])
    assert (np.abs(draws) <= [36, 50, 50]).all() and (draws.min(0) < [-30, -45, -45]).all()
    assert (draws.max(0) > [30, 45, 45]).all() and np.abs(draws.mean(0)).max() < 3


def test_iframe_recipe_jitters_training_colours_only(shards):
    """CoViAR's I-frame stream: one HLS draw per training sample, from the item's generator; test samples
    (and methods without color_jitter) keep their colours."""
    rec = dataclasses.replace(recipe_defaults()["iframe"], size=16)
    assert rec.color_jitter == (36, 50, 50) and recipe_defaults()["mars"].color_jitter == ()
    kw = dict(mode="train", seed=3, length=1)
    plain = ShardClips.from_config({"rgb": [shards["rgb"]]}, "frame", ClipsConfig(),
                                   dataclasses.replace(rec, color_jitter=()), **kw)
    jit = ShardClips.from_config({"rgb": [shards["rgb"]]}, "frame", ClipsConfig(), rec, **kw)
    again = ShardClips.from_config({"rgb": [shards["rgb"]]}, "frame", ClipsConfig(), rec, **kw)
    a, b = plain[0]["frame"], jit[0]["frame"]
    assert a.shape == b.shape == (3, 16, 16) and not torch.equal(a, b)
    assert torch.equal(b, again[0]["frame"])                          # deterministic for a seed
    off = jit.colour_offsets(0)
    want = C.hls_jitter((a.numpy() + np.array(C.RGB_MEAN, np.float32)[:, None, None]).round().astype(np.uint8)
                        .transpose(1, 2, 0)[None], off)[0]
    assert np.abs(b.numpy() + np.array(C.RGB_MEAN, np.float32)[:, None, None] - want.transpose(2, 0, 1)).max() <= 1
    test_plain = ShardClips.from_config({"rgb": [shards["rgb"]]}, "frame", ClipsConfig(),
                                        dataclasses.replace(rec, color_jitter=()), mode="test", length=1)
    test_jit = ShardClips.from_config({"rgb": [shards["rgb"]]}, "frame", ClipsConfig(), rec, mode="test", length=1)
    assert torch.equal(test_plain[0]["frame"], test_jit[0]["frame"]) and test_jit.colour_offsets(0) is None
