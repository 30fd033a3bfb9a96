"""D3D's motion probe run on trained networks (pipeline.evaluate.probe) and its report view
(pipeline.report.probe_plot): real shards whose flow the RGB determines, real tiny trained networks."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.config import ClipsConfig, TrainConfig
from pipeline.data import ShardClips
from pipeline.evaluate.probe import flow_scale, pass_seed, probe_networks
from pipeline.flow.quantize import quantization_attrs
from pipeline.media import jpeg
from pipeline.report.probe_plot import below_zero, plot_probe, probe_lines, zero_baselines
from pipeline.shards import ShardWriter, Stream
from pipeline.train.trainer import TrainRun, Trainer
from .shard_fixtures import tagged

CLIPS = dataclasses.replace(ClipsConfig(), length=4, crop=16, flip=False)
BOUND = 10.0                      # not the default 20: the probe must read it off the shards
Q_X = {0: 89, 1: 166}             # stored flow x per class: about -3.0 px and +3.0 px at bound 10
Q_Y = 128                         # stored zero flow (+0.04 px)
PROBE = dict(kind="pwc", steps=60, batch_size=4, width_scale=0.25, seed=3)


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(arch="resnet3d-18", width=4, layers=(1, 1, 1, 1), epochs=2, batch_size=4, workers=0,
                schedule="cosine", lr=0.01, device="cpu", precision="fp32", seed=0)
    return dataclasses.replace(TrainConfig(), **{**base, **kw})


def write_moving_shards(root: Path, quantized: bool = True, train_per_class: int = 6, test_per_class: int = 3,
                        frames: int = 9, size: int = 24) -> dict[str, list[Path]]:
    """Class "right": bright frames and flow x of +3 px; class "left": dark frames and -3 px. The flow
    streams carry the flow stage's quantization attributes (bound 10) when ``quantized``."""
    rng = np.random.default_rng(7)
    classes = ["left", "right"]
    videos = [(f"{split}-{classes[c]}-{k}", c, split) for split, n in (("train", train_per_class),
                                                                        ("test", test_per_class))
              for c in (0, 1) for k in range(n)]
    rng.shuffle(videos)
    common = dict(dataset="moving", shard=0, num_shards=1, classes=classes, manifest_sha256="0" * 64, params={},
                  encoding="jpeg")
    rgb, flow = root / "rgb" / "shard-00000.h5", root / "flow" / "shard-00000.h5"
    with ShardWriter(rgb, modality="rgb", streams=[Stream("rgb")], **common) as wr:
        for vid, c, split in videos:
            base = 180 if c else 70
            imgs = [np.clip(base + rng.integers(-30, 31, (size, size, 3)), 0, 255).astype(np.uint8)
                    for _ in range(frames)]
            wr.add_video(vid, c, split, 25.0, size, size,
                         {"rgb": [tagged(jpeg.encode(im, 90), i) for i, im in enumerate(imgs)]})
    attrs = quantization_attrs(BOUND, 95) if quantized else None
    streams = [Stream("x", color="gray", attrs=attrs), Stream("y", color="gray", attrs=attrs)]
    with ShardWriter(flow, modality="flow", streams=streams, **common) as wr:
        for vid, c, split in videos:
            fx = jpeg.encode(np.full((size, size), Q_X[c], np.uint8), 95)
            fy = jpeg.encode(np.full((size, size), Q_Y, np.uint8), 95)
            wr.add_video(vid, c, split, 25.0, size, size, {"x": [tagged(fx, i) for i in range(frames - 1)],
                                                           "y": [tagged(fy, i) for i in range(frames - 1)]})
    return {"rgb": [rgb], "flow": [flow]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: tiny networks run several times faster so on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_moving_shards(tmp_path_factory.mktemp("moving"))


def _train(method: str, shards, out: Path, cfg: TrainConfig) -> Path:
    t = Trainer(TrainRun(method=method, train=cfg, clips=CLIPS, shards=shards, out_dir=out, progress=False))
    t.fit()
    t.close()
    return out / "model.pt"


@pytest.fixture(scope="module")
def networks(shards, tmp_path_factory):
    """Two RGB streams (trained 2 epochs, and 1 epoch from another seed) and a flow stream."""
    root = tmp_path_factory.mktemp("nets")
    return {"rgb": _train("rgb", shards, root / "rgb", tiny_cfg()),
            "other": _train("rgb", shards, root / "other", tiny_cfg(epochs=1, seed=5)),
            "flow": _train("flow", shards, root / "flow", tiny_cfg(epochs=1))}


@pytest.fixture(scope="module")
def probed(networks, shards):
    models = {"rgb": networks["rgb"], "other": networks["other"]}
    return probe_networks(models, shards, CLIPS, ["layer2", "stem"], **PROBE), models


def _expected_zero_epe() -> float:
    """The mean flow magnitude of every test clip: JPEG-decoded stored values back to pixels at bound 10."""
    mags = []
    for q in Q_X.values():
        qx = float(jpeg.decode(jpeg.encode(np.full((24, 24), q, np.uint8), 95)).mean())
        qy = float(jpeg.decode(jpeg.encode(np.full((24, 24), Q_Y, np.uint8), 95)).mean())
        mags.append(math.hypot(qx - 127.5, qy - 127.5) * 2 * BOUND / 255)
    return float(np.mean(mags))          # as many test videos of each class, one clip each


def test_probe_result_structure_and_values(probed):
    result, models = probed
    assert result["kind"] == "pwc" and result["steps"] == PROBE["steps"]
    assert result["layers"] == ["stem", "layer2"]                  # input side first, whatever the order asked
    assert list(result["networks"]) == list(models)
    assert result["flow_bound"] == pytest.approx(BOUND)
    assert result["clips"] == {"length": 4, "crop": 16, "train_videos": 12, "test_clips": 6 * 2}
    assert result["seconds"] > 0
    expected = _expected_zero_epe()
    for name, scores in result["networks"].items():
        assert list(scores) == ["stem", "layer2"]
        for layer, s in scores.items():
            assert set(s) == {"epe", "zero_epe"}
            assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in s.values())
            # constant flow per clip: the zero baseline is the stored flow's magnitude in pixels at bound 10
            assert s["zero_epe"] == pytest.approx(expected, abs=0.02), (name, layer)
    for layer in result["layers"]:                                  # the same test clips for every network
        assert result["networks"]["rgb"][layer]["zero_epe"] == result["networks"]["other"][layer]["zero_epe"]
    assert result["networks"]["rgb"] != result["networks"]["other"]
    for name in models:                  # the flow is plain in the features (it follows the brightness)
        for layer in result["layers"]:
            s = result["networks"][name][layer]
            assert s["epe"] < 0.6 * s["zero_epe"], (name, layer, s)
    import json
    assert json.loads(json.dumps(result)) == result                 # JSON-ready


def test_probe_is_deterministic(probed, shards):
    result, models = probed
    again = probe_networks(models, shards, CLIPS, ["stem", "layer2"], **PROBE)
    assert again["networks"] == result["networks"]
    torch.set_num_threads(2)
    try:                                  # ``threads`` holds for the run only
        other = probe_networks({"rgb": models["rgb"]}, shards, CLIPS, ["layer2"], **{**PROBE, "seed": 4},
                               threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert other["networks"]["rgb"]["layer2"]["epe"] != result["networks"]["rgb"]["layer2"]["epe"]
    assert other["networks"]["rgb"]["layer2"]["zero_epe"] == result["networks"]["rgb"]["layer2"]["zero_epe"]


def test_probe_refuses_a_flow_network_before_any_work(networks, shards):
    with pytest.raises(ValueError, match=r"'flow'.*input 'flow'"):
        probe_networks({"rgb": networks["rgb"], "flow": networks["flow"]}, shards, CLIPS, ["stem"], steps=1)
    with pytest.raises(ValueError, match="unknown probe layer"):
        probe_networks({"rgb": networks["rgb"]}, shards, CLIPS, ["fc"], steps=1)
    with pytest.raises(ValueError, match="unknown probe decoder"):
        probe_networks({"rgb": networks["rgb"]}, shards, CLIPS, ["stem"], kind="unet", steps=1)


def test_flow_bound_comes_from_the_shards(shards, tmp_path):
    ds = ShardClips.from_config(shards, "rgb+flow", CLIPS, mode="test", split="test")
    assert flow_scale(ds) == (pytest.approx(BOUND), CLIPS.flow_mean)
    assert flow_scale(ds, BOUND)[0] == pytest.approx(BOUND)
    with pytest.raises(ValueError, match="differs"):
        flow_scale(ds, 20.0)
    ds.close()
    bare = write_moving_shards(tmp_path, quantized=False, train_per_class=1, test_per_class=1)
    ds = ShardClips.from_config(bare, "rgb+flow", CLIPS, mode="test", split="test")
    with pytest.raises(ValueError, match="flow_bound"):
        flow_scale(ds)
    assert flow_scale(ds, 20.0) == (20.0, CLIPS.flow_mean)
    ds.close()
    assert pass_seed(0, 0) != pass_seed(0, 1) and pass_seed(0, 1) == pass_seed(0, 1)


def test_plot_and_lines(probed, tmp_path):
    result, _ = probed
    a = plot_probe(result, tmp_path / "a" / "probe.png")
    b = plot_probe(result, tmp_path / "b" / "probe.png")
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and a.read_bytes() == b.read_bytes()
    lines = probe_lines(result)
    assert "| layer | RGB | other | zero flow |" in lines
    zero = result["networks"]["rgb"]["stem"]["zero_epe"]
    stem = next(l for l in lines if l.startswith("| stem |"))
    assert stem == (f"| stem | {result['networks']['rgb']['stem']['epe']:.2f} "
                    f"| {result['networks']['other']['stem']['epe']:.2f} | {zero:.2f} |")
    assert any(l.startswith("| layer2 |") for l in lines)
    assert lines[-1].startswith("EPE below the zero-flow baseline: RGB at ")


def test_lines_and_plot_of_hand_made_results(tmp_path):
    probe = {"kind": "simple", "steps": 5, "layers": ["stem", "layer1", "layer4"],
             "networks": {"mars": {"stem": {"epe": 1.0, "zero_epe": 2.0}, "layer1": {"epe": 1.5, "zero_epe": 2.0},
                                   "layer4": {"epe": 2.5, "zero_epe": 1.75}},
                          "rgb": {"stem": {"epe": 2.5, "zero_epe": 2.0}, "layer4": {"epe": 1.9, "zero_epe": 1.75}}}}
    assert zero_baselines(probe) == {"zero flow": [2.0, 2.0, 1.75]}
    assert below_zero(probe, "mars") == ["stem", "layer1"] and below_zero(probe, "rgb") == []
    lines = probe_lines(probe)
    assert lines[2:7] == ["| layer | MARS | RGB | zero flow |", "|---|---:|---:|---:|",
                          "| stem | 1.00 | 2.50 | 2.00 |", "| layer1 | 1.50 | – | 2.00 |",
                          "| layer4 | 2.50 | 1.90 | 1.75 |"]
    assert lines[-1] == ("EPE below the zero-flow baseline: MARS at stem and layer1; RGB at none of the probed "
                         "layers.")
    probe["networks"]["rgb"]["stem"]["zero_epe"] = 3.0                # another geometry: one baseline each
    assert set(zero_baselines(probe)) == {"mars", "rgb"}
    assert "| layer | MARS | RGB | zero flow (MARS) | zero flow (RGB) |" in probe_lines(probe)
    assert plot_probe(probe, tmp_path / "p.png").read_bytes() == plot_probe(probe, tmp_path / "q.png").read_bytes()
    assert probe_lines({"networks": {}}) == ["No network was probed."]
