"""Feature extraction (stage extract_features, pipeline.features), the npy export, ShardFeatures and the linear
probe: features equal the network's forward_features on the same clip (batching across videos, padding,
stride), clip times against frame indices, a video shorter than one clip, a bad video recorded, a killed run
resumed."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pipeline.core import paths
from pipeline.core.config import recipe_defaults, resolve, section_values
from pipeline.core.manifest import make_manifest
from pipeline.data.dataset import ShardClips
from pipeline.features.extract import clip_frame_ranges, clip_times, model_features, run_items
from pipeline.features.sets import resolve_sets, view_name
from pipeline.media import jpeg
from pipeline.models import build
from pipeline.shards import ShardReader, ShardWriter, Stream
from pipeline.steps import get, run_shard
from pipeline.train.checkpoint import save
from pipeline.train.methods import get as get_method
from tests.shard_fixtures import rgb_frame, tagged

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["a", "b", "c"]
LENGTHS = {"v0": 20, "v1": 9, "short": 3, "v3": 13, "v4": 16}
SPEC = {"arch": "resnet3d-18", "in_channels": 3, "num_classes": 3, "width": 4, "layers": [1, 1, 1, 1]}


def _recipe(length: int = 8, size: int = 16) -> dict:
    r = dataclasses.replace(recipe_defaults()["rgb"], length=length, size=size)
    return section_values(r)


def toy(tmp_path: Path, bad: tuple[str, ...] = (), extra: dict | None = None):
    """A manifest of 5 videos (one shard), its decode shard (JPEG frames, one broken frame in each video of
    ``bad``) and a trained-looking rgb checkpoint; the settings of a config of results under tmp_path."""
    root = tmp_path / "videos"
    root.mkdir()
    m = make_manifest("toy", "csv", root, CLASSES,
                      [(v, f"{v}.mkv", CLASSES[i % 3], "train" if i % 2 == 0 else "test")
                       for i, v in enumerate(LENGTHS)])
    m.write(tmp_path / "toy.tsv")
    s = resolve({"results": str(tmp_path / "results"), "dataset": "toy",
                 "datasets": {"toy": {"format": "csv", "root": str(root)}},
                 "extract_features": {"sets": ["rgb"], "batch_size": 3, "workers": 0, **(extra or {})}})
    out = s.stage_dir("decode") / paths.shard_name(0)
    with ShardWriter(out, dataset="toy", modality="rgb", encoding="jpeg", shard=0, num_shards=1, classes=CLASSES,
                     manifest_sha256=m.sha256, params={"decode": {"short_side": 24}}, streams=[Stream("rgb")]) as w:
        for v, e in enumerate(m.entries):
            n = LENGTHS[e.video_id]
            frames = [tagged(jpeg.encode(rgb_frame(v, i, 24, 32), 95), i) for i in range(n)]
            if e.video_id in bad:
                frames[2] = b"\xff\xd8 not a jpeg" + bytes(i % 5 for i in range(30))
            w.add_video(e.video_id, m.classes.index(e.label), e.split, 25.0, 24, 32, {"rgb": frames})
    torch.manual_seed(0)
    model = build(SPEC["arch"], **{k: (tuple(v) if isinstance(v, list) else v) for k, v in SPEC.items() if k != "arch"})
    ck = paths.train_dir(s.results, "toy", "rgb") / paths.TRAIN_FILES["model"]
    save(ck, {"method": "rgb", "model_spec": SPEC, "model": model.eval().state_dict(), "classes": CLASSES,
              "input": "rgb", "settings": {"recipe": _recipe()}})
    return s, m, model.eval(), ck


def _features(path: Path) -> dict[str, dict[str, np.ndarray]]:
    with ShardReader(path) as r:
        t = r.table()
        out = {}
        for v, vid in enumerate(t["video_id"]):
            out[vid] = {k: np.asarray(r.decode(v, k)) for k in r.streams}
            out[vid]["fps"] = float(t["fps"][v])
            out[vid]["source_frames"] = int(t["source_frames"][v])
        return out


# --------------------------------------------------------------------------------------------- pure parts


def test_clip_ranges_and_times():
    r = clip_frame_ranges([0, 8, 16], 16, 30)
    assert r.tolist() == [[0, 15], [8, 23], [16, 29]] and r.dtype == np.int32
    assert clip_frame_ranges([0], 16, 5).tolist() == [[0, 4]]             # shorter than a clip: looped
    t = clip_times(r, 25.0)
    assert np.allclose(t, [[0, 16 / 25], [8 / 25, 24 / 25], [16 / 25, 30 / 25]])


def test_sets_take_the_sections_defaults(tmp_path):
    s = resolve({"extract_features": {"sets": ["mars", {"name": "l3", "method": "rgb", "layer": "layer3",
                                                         "stride": 4}], "dtype": "float16"}})
    mars, l3 = resolve_sets(s.extract_features)
    assert (mars.method, mars.layer, mars.dtype, mars.stride) == ("mars", "pooled", "float16", None)
    assert (l3.method, l3.layer, l3.stride, l3.dtype) == ("rgb", "layer3", 4, "float16")
    ad_hoc = resolve_sets(s.extract_features, method="d3d")
    assert [x.name for x in ad_hoc] == ["d3d"]
    assert view_name("center", "ten_crop") == "short_center"
    assert view_name("ten_crop", "squash_center") == "squash_ten_crop"
    assert view_name("test", "squash_ten_crop") == "squash_ten_crop"


def test_named_layers_pooled_or_not():
    torch.manual_seed(0)
    model = build("resnet3d-18", in_channels=3, num_classes=3, width=4, layers=(1, 1, 1, 1)).eval()
    x = torch.randn(2, 3, 8, 16, 16)
    with torch.no_grad():
        f, s, shape = model_features(model, x, "pooled", logits=True)
        assert torch.allclose(f, model.forward_features(x)) and torch.allclose(s, model(x)) and shape == (32,)
        f3, _, shape3 = model_features(model, x, "layer3", "none")
        m3, _, _ = model_features(model, x, "layer3", "mean")
    assert f3.shape == (2, int(np.prod(shape3))) and shape3[0] == 16
    assert torch.allclose(m3, f3.reshape(2, 16, -1).mean(2), atol=1e-6)
    with torch.no_grad():                                  # spatially pooled, time kept: (C, T')
        s3, _, sshape = model_features(model, x, "layer3", "space")
    c, t = shape3[:2]
    assert sshape == (c, t) and s3.shape == (2, c * t)
    assert torch.allclose(s3.reshape(2, c, t), f3.reshape(2, c, t, -1).mean(3), atol=1e-6)
    assert torch.allclose(s3.reshape(2, c, t).mean(2), m3, atol=1e-6)


# ------------------------------------------------------------------------------------------------ the stage


@pytest.mark.parametrize("length,stride", [(8, 8), (8, 3)])
def test_features_are_forward_features_of_each_clip(tmp_path, length, stride):
    s, m, model, _ = toy(tmp_path, extra={"length": length, "stride": stride, "logits": True})
    summary = run_shard("extract_features", s, 0, manifest=m, progress=False)
    out = s.stage_dir("extract_features") / "rgb" / paths.shard_name(0)
    assert summary["shard"] == str(out) and summary["failures"] == 0
    got = _features(out)
    assert set(got) == set(LENGTHS)
    data = ShardClips.from_config({"rgb": [s.stage_dir("decode") / paths.shard_name(0)]}, "rgb", s.clips,
                                  dataclasses.replace(recipe_defaults()["rgb"], length=length, size=16,
                                                      test_view="short_center"), mode="test", length=length,
                                  test_stride=1)                          # every clip start, one at a time
    by_id = {e.video_id: v for v, e in enumerate(data.videos)}
    for vid, f in got.items():
        n = LENGTHS[vid]
        starts = list(range(0, max(n - length, 0) + 1, stride))
        assert f["frame_range"][:, 0].tolist() == starts                    # the stride, the short video
        assert f["frame_range"][:, 1].tolist() == [min(a + length, n) - 1 for a in starts]
        assert np.allclose(f["time"], np.stack([f["frame_range"][:, 0] / 25, (f["frame_range"][:, 1] + 1) / 25], 1))
        assert f["feature"].shape == (len(starts), 32) and f["feature"].dtype == np.float32
        assert f["source_frames"] == n
        for k, a in enumerate(starts):       # the same clip, alone, through the network
            clip = _clip(data, by_id[vid], a)
            with torch.no_grad():
                want = model.forward_features(clip[None])[0].numpy()
                logits = model(clip[None])[0].numpy()
            assert np.allclose(f["feature"][k], want, atol=1e-5), (vid, k)
            assert np.allclose(f["logits"][k], logits, atol=1e-5)
    with ShardReader(out) as r:
        a = r.attrs
        assert a["modality"] == "feature" and a["extract_features.network"] == "resnet3d-18"
        assert a["extract_features.length"] == length and a["extract_features.stride"] == stride
        assert a["extract_features.layer"] == "pooled" and a["extract_features.test_view"] == "short_center"
        assert len(a["extract_features.checkpoint_sha256"]) == 64
        assert r.params["decode"] == {"short_side": 24}                     # provenance: the upstream's too
    assert json.loads(out.with_name("shard-00000.failures.json").read_text()) == []


def _clip(data: ShardClips, video: int, start: int) -> torch.Tensor:
    """The network input of one clip of ``data`` (its first test view), read on its own."""
    i = next(j for j, (v, st, k) in enumerate(data.items) if v == video and st == start and k == 0)
    return data[i]["rgb"]


def test_padding_the_last_batch_changes_nothing(tmp_path):
    s, m, model, _ = toy(tmp_path)
    data = ShardClips.from_config({"rgb": [s.stage_dir("decode") / paths.shard_name(0)]}, "rgb", s.clips,
                                  dataclasses.replace(recipe_defaults()["rgb"], length=4, size=16,
                                                      test_view="short_center"), mode="test", test_stride=4,
                                  length=4)
    method = get_method("rgb")
    plain = run_items(model, method, data, batch_size=len(data))
    padded = run_items(model, method, data, batch_size=4, pad=True)          # batches across videos, padded
    assert len(data) % 4 and padded.clips == plain.clips == len(data)
    assert np.allclose(plain.features, padded.features, atol=1e-5)


def test_a_bad_video_is_recorded_and_the_others_go_on(tmp_path):
    s, m, _, _ = toy(tmp_path, bad=("v1",))
    summary = run_shard("extract_features", s, 0, manifest=m, progress=False)
    assert summary["videos"] == 4 and summary["failures"] == 1
    out = s.stage_dir("extract_features") / "rgb" / paths.shard_name(0)
    report = json.loads(out.with_name("shard-00000.failures.json").read_text())
    assert [(f["video_id"], f["stage"]) for f in report] == [("v1", "extract_features")]
    assert "does not decode" in report[0]["error"] and "v1" in report[0]["error"]
    assert set(_features(out)) == set(LENGTHS) - {"v1"}


def test_missing_model_names_the_command(tmp_path):
    s, m, _, ck = toy(tmp_path)
    ck.unlink()
    with pytest.raises(Exception, match="prep-cli train --method rgb"):
        run_shard("extract_features", s, 0, manifest=m, progress=False)


def test_a_killed_run_is_resumed_and_a_finished_shard_kept(tmp_path):
    s, m, _, _ = toy(tmp_path)
    out = s.stage_dir("extract_features") / "rgb" / paths.shard_name(0)
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import pickle; from pipeline.steps import run_shard; "
              f"s, m = pickle.load(open({str(tmp_path / 'job.pkl')!r}, 'rb')); "
              "run_shard('extract_features', s, 0, manifest=m, progress=False)")
    import pickle
    (tmp_path / "job.pkl").write_bytes(pickle.dumps((s, m)))
    env = {**os.environ, "MOTIONPREP_FAULT": "shard.video@3"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]                        # SIGKILL mid-shard
    assert not out.exists() and list(out.parent.glob(".shard-00000.h5.*.tmp"))
    first = run_shard("extract_features", s, 0, manifest=m, progress=False)
    assert first["videos"] == 5 and out.exists() and not list(out.parent.glob("*.tmp"))
    mtime = out.stat().st_mtime_ns
    again = run_shard("extract_features", s, 0, manifest=m, progress=False)
    assert "up to date" in again["message"] and out.stat().st_mtime_ns == mtime
    changed = resolve({**s.raw, "extract_features": {**s.raw["extract_features"], "stride": 2}}, "toy")
    third = run_shard("extract_features", changed, 0, manifest=m, progress=False)
    assert "up to date" not in third["message"]                            # other settings: extracted anew


# ----------------------------------------------------------------------------- export, ShardFeatures, probe


def test_npy_export_round_trip(tmp_path):
    from pipeline.layouts.convert import export_shards
    from pipeline.layouts.npy import read_video
    s, m, _, _ = toy(tmp_path, extra={"length": 4, "stride": 2, "dtype": "float16", "logits": True})
    run_shard("extract_features", s, 0, manifest=m, progress=False)
    shard = s.stage_dir("extract_features") / "rgb" / paths.shard_name(0)
    files = export_shards([shard], tmp_path / "npy", "npy")
    assert (tmp_path / "npy" / "v0_rgb.npy") in files and (tmp_path / "npy" / "classes.txt").exists()
    for vid, f in _features(shard).items():
        back = read_video(tmp_path / "npy", vid, "rgb")
        assert back["features"].dtype == np.float16 and np.array_equal(back["features"], f["feature"])
        assert np.array_equal(back["frame_range"], f["frame_range"]) and float(back["fps"]) == 25.0
        assert np.allclose(back["timestamps_ms"], (f["frame_range"][:, 1]) / 25 * 1000)
        assert np.array_equal(back["logits"], f["logits"])
    with h5py.File(shard, "r") as h:                                   # plain h5py reads a feature shard
        off = h["videos/offset"][()]
        assert h["frames/feature"][off[0]:off[1]].shape[1] == 32


def test_shard_features_and_the_linear_probe(tmp_path):
    from pipeline.data.features import ShardFeatures
    from pipeline.train.linear import fit_linear, train_probe
    s, m, _, _ = toy(tmp_path, extra={"length": 4, "stride": 4})
    run_shard("extract_features", s, 0, manifest=m, progress=False)
    shard = s.stage_dir("extract_features") / "rgb" / paths.shard_name(0)
    videos = ShardFeatures([shard], split="train")
    clips = ShardFeatures([shard], split="train", unit="clip")
    assert [v.split for v in videos.videos] == ["train"] * 3 and len(clips) == sum(v.clips for v in clips.videos)
    f = _features(shard)[videos.videos[0].video_id]["feature"]
    assert np.allclose(videos[0]["feature"].numpy(), f.mean(0)) and videos.dim == 32
    probe, metrics = train_probe(videos, ShardFeatures([shard], split="test"), epochs=5, lr=0.01,
                                 weight_decay=0.0)
    assert metrics["test_videos"] == 2 and metrics["train_videos"] == 3
    # separable features: the probe beats chance, and the same features give the same probe
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    x = (rng.normal(size=(80, 16)) + 3 * np.eye(4, 16)[y]).astype(np.float32)
    a, _ = fit_linear(x, y, 4, epochs=50, lr=0.05, weight_decay=1e-4)
    b, _ = fit_linear(x, y, 4, epochs=50, lr=0.05, weight_decay=1e-4)
    assert np.array_equal(a.weight, b.weight) and (a.scores(x).argmax(1) == y).mean() > 0.9


def test_train_linear_writes_model_and_metrics(tmp_path):
    s, m, _, _ = toy(tmp_path, extra={"length": 4, "stride": 4})
    run_shard("extract_features", s, 0, manifest=m, progress=False)
    from pipeline.steps.contract import DatasetJob
    st = get("train")
    out = st.run(DatasetJob(st, s, s.train, None, {"method": "linear", "features": "rgb"}))
    d = paths.linear_dir(s.results, "toy", "rgb")
    metrics = json.loads((d / "metrics.json").read_text())
    assert out["model"] == str(d / "model.pt") and metrics["feature_set"] == "rgb" and metrics["method"] == "rgb"
    assert 0 <= metrics["top1"] <= 1 and metrics["chance"] == pytest.approx(1 / 3)


DEMO = Path(os.environ.get("MOTIONPREP_DEMO", REPO))        # a folder where `make demo` ran (results/, manifests/)


@pytest.mark.skipif(not (DEMO / "results" / "train" / "demo" / "mars" / "model.pt").exists()
                    or not (DEMO / "results" / "train" / "demo" / "flow" / "model.pt").exists(),
                    reason="needs the demo's trained MARS and flow teacher (make demo; or MOTIONPREP_DEMO=<folder>)")
@pytest.mark.parametrize("method", ["mars", "flow"])
def test_the_linear_probe_on_the_demo_beats_chance(tmp_path, method, monkeypatch):
    from pipeline.core.manifest import read_manifest
    from pipeline.data.features import ShardFeatures
    from pipeline.train.linear import train_probe
    monkeypatch.chdir(DEMO)
    s = resolve({"results": str(DEMO / "results"), "manifests": str(DEMO / "manifests")}, "demo")
    m = read_manifest(s.manifest_path)
    out = tmp_path / "features"
    for k in range(2):
        run_shard("extract_features", s, k, manifest=m, out_dir=out, progress=False, options={"set": method})
    shards = sorted((out / method).glob("shard-*.h5"))
    _, metrics = train_probe(ShardFeatures(shards, split="train"), ShardFeatures(shards, split="test"),
                             epochs=s.train.linear_epochs, lr=s.train.linear_lr,
                             weight_decay=s.train.linear_weight_decay)
    assert metrics["test_videos"] == 56 and metrics["top1"] > 2 * metrics["chance"], metrics


def test_published_weights_extract_through_the_sets_method(tmp_path):
    """A set of published weights (Hara's 2020 layout, converted on the fly) names the method whose input and
    recipe its network takes; its features are the converted network's forward_features."""
    from pipeline.models.weights import load_pretrained
    from pipeline.train.trainer import build_model
    hara = REPO / "tests" / "data" / "weights" / "kenshohara2020_r3d10_B.pth"
    s, m, _, _ = toy(tmp_path, extra={"sets": [{"name": "hara", "method": "rgb", "checkpoint": str(hara)}],
                                      "length": 8})
    summary = run_shard("extract_features", s, 0, manifest=m, progress=False)
    assert summary["failures"] == 0
    out = s.stage_dir("extract_features") / "hara" / paths.shard_name(0)
    got = _features(out)
    state, spec, _ = load_pretrained(hara)
    net = build_model(spec)
    net.load_state_dict(state)
    net.eval()
    data = ShardClips.from_config({"rgb": [s.stage_dir("decode") / paths.shard_name(0)]}, "rgb", s.clips,
                                  dataclasses.replace(recipe_defaults()["rgb"], length=8), mode="test",
                                  length=8, test_stride=1)
    v = next(i for i, e in enumerate(data.videos) if e.video_id == "v0")
    with torch.no_grad():
        want = net.forward_features(_clip(data, v, 0)[None])[0].numpy()
    assert got["v0"]["feature"].shape == (2, 32) and np.allclose(got["v0"]["feature"][0], want, atol=1e-5)
    with ShardReader(out) as r:
        assert r.attrs["extract_features.network"] == "resnet3d-18" and r.attrs["extract_features.trained_method"] == "rgb"
    (tmp_path / "b").mkdir()
    s2, m2, _, _ = toy(tmp_path / "b", extra={"sets": [{"name": "hara", "checkpoint": str(hara)}]})
    with pytest.raises(Exception, match="give the set a method"):
        run_shard("extract_features", s2, 0, manifest=m2, progress=False)


def test_a_spatially_pooled_layer_keeps_time_in_the_shard(tmp_path):
    s, m, model, _ = toy(tmp_path, extra={"layer": "layer2", "pool": "space", "length": 8})
    assert run_shard("extract_features", s, 0, manifest=m, progress=False)["failures"] == 0
    out = s.stage_dir("extract_features") / "rgb" / paths.shard_name(0)
    with h5py.File(out, "r") as f:                       # plain h5py: the shape of one clip's feature
        c, t = f["frames/feature"].attrs["feature_shape"].tolist()
        assert f["frames/feature"].attrs["pool"] == "space" and f["frames/feature"].shape[1] == c * t
    assert (c, t) == (8, 2)            # layer2 of width 4: 8 channels; 8 frames / 2 (max-pool) / 2 (layer2)
