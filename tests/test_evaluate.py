"""Evaluation: video scores, fusion and accuracies on fixed numbers, the metrics of hand-made stream results,
static clips from real shards, a real stream test, and the score file."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from pipeline.core.config import ClipsConfig, EvaluateConfig
from pipeline.data import ShardClips
from pipeline.evaluate import metrics as M
from pipeline.evaluate.run import StreamResult, fusion_metrics, read_scores, stream_metrics, write_scores
from pipeline.evaluate.run import test_stream as run_test_stream     # not collected as a test
from pipeline.flow.quantize import quantize
from pipeline.models import build
from pipeline.train import checkpoint as ckpt
from .shard_fixtures import write_shards


def _softmax(row):
    e = [math.exp(x) for x in row]
    return [x / sum(e) for x in e]


# ----------------------------------------------------------------------------------------------------------
# 1. video scores


def test_video_scores_logits_and_softmax():
    # video 0: clips [6, 0], [0, 2], [0, 2] (interleaved with video 1's clips); video 1: [0, 0], [ln 3, 0]
    clip_scores = np.array([[6, 0], [0, 0], [0, 2], [math.log(3), 0], [0, 2]], np.float32)
    clip_video = [0, 1, 0, 1, 0]
    logits = M.video_scores(clip_scores, clip_video, 2, "logits")
    assert logits.dtype == np.float64 and logits.shape == (2, 2)
    np.testing.assert_allclose(logits, [[2.0, 4 / 3], [math.log(3) / 2, 0.0]], rtol=1e-6)
    soft = M.video_scores(clip_scores, clip_video, 2, "softmax")
    v0 = np.mean([_softmax([6, 0]), _softmax([0, 2]), _softmax([0, 2])], axis=0)
    np.testing.assert_allclose(soft, [v0, [0.625, 0.375]], rtol=1e-6)
    np.testing.assert_allclose(soft.sum(1), 1.0)
    # the averaging matters: the confident clip wins on logits, the two mild ones on probabilities
    assert logits[0].argmax() == 0 and soft[0].argmax() == 1
    assert M.video_scores(clip_scores, clip_video, 2).tolist() == logits.tolist()     # logits by default


def test_video_scores_refuses_videos_without_clips():
    s = np.zeros((3, 2))
    with pytest.raises(ValueError, match="at least one clip"):
        M.video_scores(s, [0, 0, 2], 3)                 # video 1 has no clip
    with pytest.raises(ValueError):
        M.video_scores(s, [0, 1, 3], 3)                 # a clip of a fourth video
    with pytest.raises(ValueError, match="average"):
        M.video_scores(s, [0, 1, 2], 3, "mean")


# ----------------------------------------------------------------------------------------------------------
# 2. fusion and accuracies


def test_fuse_averages_streams():
    a = np.array([[1.0, 0.0], [0.0, 3.0]])
    b = np.array([[0.0, 2.0], [1.0, 1.0]])
    c = np.array([[2.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(M.fuse([a, b]), [[0.5, 1.0], [0.5, 2.0]])
    np.testing.assert_allclose(M.fuse([a, b, c]), [[1.0, 1.0], [1.0, 2.0]])
    np.testing.assert_array_equal(M.fuse([a]), a)
    with pytest.raises(ValueError, match="same videos"):
        M.fuse([a, np.zeros((3, 2))])
    with pytest.raises(ValueError):
        M.fuse([a, np.zeros((2, 3))])


def test_topk_accuracy():
    scores = np.array([
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0],    # top-1 1, label 1: right
        [0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.6],   # top-1 6, top-5 {6, 0, 1, 2, 3}; label 3: top-5 only
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],    # ties by class index: top-1 0, top-5 {0..4}; label 5: wrong
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],    # label 0: right by the tie rule
    ])
    labels = [1, 3, 5, 0]
    assert M.topk_accuracy(scores, labels, 1) == 0.5
    assert M.topk_accuracy(scores, labels, 5) == 0.75
    assert M.topk_accuracy(scores, labels, 7) == 1.0
    assert M.topk_accuracy(scores[:, :3], [1, 2, 2, 0], 5) == 1.0   # k above the class count: every class
    assert M.topk_accuracy(np.zeros((0, 3)), [], 1) == 0.0


def test_mean_class_accuracy_unbalanced():
    # class 0: 4 videos, 3 right; class 1: 1 video, wrong; class 2: no video (not counted) but predicted once
    scores = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    labels = [0, 0, 0, 0, 1]
    assert M.mean_class_accuracy(scores, labels, 3) == pytest.approx((3 / 4 + 0 / 1) / 2)
    assert M.topk_accuracy(scores, labels, 1) == pytest.approx(3 / 5)
    s = M.summary(scores, labels, 3)
    assert s == {"top1": pytest.approx(0.6), "top5": 1.0, "mean_class_accuracy": pytest.approx(0.375)}


# ----------------------------------------------------------------------------------------------------------
# 3. the metrics of stream results


def _result(name, inp, ids, labels, scores, static=None, seconds=None, frames=None) -> StreamResult:
    n = len(ids)
    return StreamResult(name, inp, list(ids), np.array(labels), np.array(scores, float),
                        None if static is None else np.array(static, float),
                        np.array(seconds if seconds is not None else [0.0] * n, float), clips=2 * n,
                        frames=np.array(frames if frames is not None else [10] * n))


@pytest.fixture
def two_streams():
    # rgb has v1, v2, v3; flow has v3, v1, v4 (no v2, one video the other lacks): common v1, v3
    rgb = _result("rgb", "rgb", ["v1", "v2", "v3"], [0, 1, 1],
                  [[0.2, 0.8], [0.0, 1.0], [0.4, 0.6]],
                  static=[[0.6, 0.4], [0.5, 0.5], [0.6, 0.4]], seconds=[1.0, 100.0, 3.0], frames=[16, 99, 32])
    flow = _result("flow", "flow", ["v3", "v1", "v4"], [1, 0, 0],
                   [[0.3, 0.7], [1.0, 0.0], [0.0, 9.0]],
                   static=[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], seconds=[0.5, 0.25, 50.0],
                   frames=[31, 15, 1001])
    return rgb, flow


def test_stream_metrics(two_streams):
    rgb, flow = two_streams
    m = stream_metrics(rgb, 2, tvl1_pair_seconds=0.01)
    assert m["top1"] == pytest.approx(2 / 3) and m["videos"] == 3 and m["clips"] == 6
    assert m["chance"] == 0.5 and m["input"] == "rgb"
    assert m["static_top1"] == pytest.approx(1 / 3)
    assert m["model_seconds_per_video"] == pytest.approx(104 / 3)
    assert m["flow_seconds_per_video"] == 0.0 and m["seconds_per_video"] == pytest.approx(104 / 3)
    m = stream_metrics(dataclasses.replace(rgb, static=None), 2, 0.01)
    assert "static_top1" not in m


def test_fusion_uses_the_common_videos_aligned_by_id(two_streams):
    rgb, flow = two_streams
    m = fusion_metrics([rgb, flow], 2, tvl1_pair_seconds=None)
    assert m["videos"] == 2 and m["streams"] == ["rgb", "flow"] and m["chance"] == 0.5
    # v1: (0.2, 0.8) + (1.0, 0.0) -> (0.6, 0.4): class 0, right; v3: (0.4, 0.6) + (0.3, 0.7): class 1, right.
    # Aligned by position instead, v1 would meet v3's flow scores and be wrong.
    assert m["top1"] == 1.0 and m["mean_class_accuracy"] == 1.0
    # static: v1 (0.6, 0.4) + (0, 1) -> class 1 (wrong), v3 (0.6, 0.4) + (0, 1) -> class 1 (right)
    assert m["static_top1"] == 0.5
    # model time: each stream's mean over the common videos, summed
    assert m["model_seconds_per_video"] == pytest.approx((1.0 + 3.0) / 2 + (0.25 + 0.5) / 2)
    assert m["flow_seconds_per_video"] == 0.0
    # the order of the streams does not change the result
    m2 = fusion_metrics([flow, rgb], 2, None)
    assert (m2["top1"], m2["videos"], m2["static_top1"]) == (1.0, 2, 0.5)
    assert m2["model_seconds_per_video"] == pytest.approx(m["model_seconds_per_video"])
    # static_top1 only when every stream has static scores
    assert "static_top1" not in fusion_metrics([rgb, dataclasses.replace(flow, static=None)], 2, None)


def test_fusion_counts_flow_time_once():
    ids = ["a", "b"]
    flow = _result("flow", "flow", ids, [0, 1], [[1, 0], [0, 1]], frames=[11, 21])
    flow2 = _result("mers-flow", "flow", ids, [0, 1], [[1, 0], [0, 1]], frames=[11, 21])
    rgb = _result("rgb", "rgb", ids, [0, 1], [[1, 0], [0, 1]], frames=[12, 22])
    per_stream = stream_metrics(flow, 2, 0.1)["flow_seconds_per_video"]
    assert per_stream > 0
    assert fusion_metrics([rgb, flow], 2, 0.1)["flow_seconds_per_video"] == pytest.approx(per_stream)
    assert fusion_metrics([flow, flow2], 2, 0.1)["flow_seconds_per_video"] == pytest.approx(per_stream)
    assert fusion_metrics([rgb, flow, flow2], 2, 0.1)["seconds_per_video"] == pytest.approx(per_stream)
    assert fusion_metrics([rgb, flow], 2, None)["flow_seconds_per_video"] == 0.0


def test_fusion_flow_time_covers_only_the_common_videos(two_streams):
    # the fused flow time covers the common videos only, like accuracy and model time: the flow stream's
    # extra video v4 (1001 entries) must not count
    rgb, flow = two_streams
    m = fusion_metrics([rgb, flow], 2, tvl1_pair_seconds=0.01)
    common_only = dataclasses.replace(flow, video_ids=["v3", "v1"], labels=flow.labels[:2],
                                      scores=flow.scores[:2], static=flow.static[:2],
                                      model_seconds=flow.model_seconds[:2], frames=flow.frames[:2])
    per_entry = stream_metrics(common_only, 2, 0.01)["flow_seconds_per_video"]
    assert m["flow_seconds_per_video"] == pytest.approx(per_entry)


# ----------------------------------------------------------------------------------------------------------
# 4. static clips from real shards


@pytest.fixture
def toy(tmp_path):
    paths = write_shards(tmp_path, [12, 7, 20, 9], h=40, w=48)      # v0, v2 train; v1, v3 test
    return {"rgb": [paths["rgb"]], "flow": [paths["flow"]]}


@pytest.mark.parametrize("mode", ["test", "train"])
def test_static_clips(toy, mode):
    kw = dict(mode=mode, length=4, crop=32, seed=3, flip=True)
    moving = ShardClips(toy, "rgb+flow", **kw)
    static = ShardClips(toy, "rgb+flow", static=True, **kw)
    assert len(moving) == len(static) and static.item_video.tolist() == moving.item_video.tolist()
    zero = float(quantize(np.zeros(1))[0]) - ClipsConfig().flow_mean
    assert zero == 0.5
    for i in range(len(static)):
        m, s = moving[i], static[i]
        assert int(m["start"]) == int(s["start"]) and int(m["label"]) == int(s["label"])
        rgb = s["rgb"]
        assert rgb.shape == (3, 4, 32, 32)
        for t in range(4):
            assert torch.equal(rgb[:, t], m["rgb"][:, 2]), (i, t)     # the middle frame (index 2 of 4)
        # green holds 7 * frame + 5: the middle frame of the (looped) clip
        n = static.videos[int(s["video"])].num_frames
        middle = (int(s["start"]) + 2) % n
        assert abs(float(rgb[1].mean()) + ClipsConfig().rgb_mean[1] - (7 * middle + 5)) < 2.5
        assert s["flow"].shape == (2, 4, 32, 32)
        assert torch.all(s["flow"] == 0.5)
        assert not torch.all(m["flow"] == 0.5)          # the stored flow (200, 60) is not zero motion
    static.close()
    moving.close()


# ----------------------------------------------------------------------------------------------------------
# a real stream test on real shards


def _tiny_checkpoint(path, modality: str, in_channels: int):
    torch.manual_seed(0)
    spec = {"arch": "resnet3d-18", "in_channels": in_channels, "num_classes": 3, "width": 4,
            "layers": [1, 1, 1, 1]}
    model = build(spec["arch"], **{k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()
                                   if k != "arch"})
    with torch.no_grad():
        model.fc.bias.copy_(torch.tensor([0.0, 0.1, -0.1]))
    ckpt.save(path, {"method": modality, "model_spec": spec, "model": model.state_dict(),
                     "classes": ["a", "b", "c"], "input": modality})
    return model.eval()


def test_stream_scores_average_the_clips(toy, tmp_path):
    clips = dataclasses.replace(ClipsConfig(), length=4, crop=32)
    cfg = dataclasses.replace(EvaluateConfig(), device="cpu", batch_size=3, static=True, average="logits")
    model = _tiny_checkpoint(tmp_path / "rgb.pt", "rgb", 3)
    r = run_test_stream("rgb", tmp_path / "rgb.pt", toy, clips, cfg)
    ds = ShardClips(toy, "rgb", mode="test", length=4, crop=32, split="test")
    assert r.video_ids == ["v1", "v3"] and r.labels.tolist() == [1, 0] and r.input == "rgb"
    assert r.clips == len(ds) == 1 + 2                  # 7 frames: one clip of 4; 9 frames: two
    with torch.no_grad():
        clip_logits = np.stack([model(ds[i]["rgb"][None])[0].numpy() for i in range(len(ds))])
    expected = M.video_scores(clip_logits, ds.item_video, 2)
    np.testing.assert_allclose(r.scores, expected, rtol=1e-4, atol=1e-4)
    assert r.static is not None and r.static.shape == (2, 3)
    assert r.model_seconds.shape == (2,) and (r.model_seconds > 0).all()
    m = stream_metrics(r, 3, None)
    assert m["videos"] == 2 and m["chance"] == pytest.approx(1 / 3) and "static_top1" in m


def test_flow_stream_time_counts_every_pair(toy, tmp_path):
    # an N-frame video has N - 1 flow entries, the TV-L1 pairs: the flow stream is charged every one of
    # them (a 16-frame video 15 pairs)
    clips = dataclasses.replace(ClipsConfig(), length=4, crop=32)
    cfg = dataclasses.replace(EvaluateConfig(), device="cpu", batch_size=4, static=False)
    _tiny_checkpoint(tmp_path / "flow.pt", "flow", 2)
    r = run_test_stream("flow", tmp_path / "flow.pt", toy, clips, cfg)
    assert r.video_ids == ["v1", "v3"] and r.static is None
    pairs = np.mean([7 - 1, 9 - 1])                     # the test videos have 7 and 9 RGB frames
    assert stream_metrics(r, 3, 1.0)["flow_seconds_per_video"] == pytest.approx(pairs)
    assert fusion_metrics([r], 3, 1.0)["flow_seconds_per_video"] == pytest.approx(pairs)


# ----------------------------------------------------------------------------------------------------------
# 5. the score file


def test_scores_round_trip(tmp_path, two_streams):
    rgb, flow = two_streams
    flow = dataclasses.replace(flow, static=None)
    path = tmp_path / "out" / "scores.h5"
    write_scores(path, [rgb, flow], ["walk", "run"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["scores.h5"]     # no temporary left
    classes, data = read_scores(path)
    assert classes == ["walk", "run"]
    assert sorted(data) == ["flow", "rgb"]
    for r in (rgb, flow):
        d = data[r.name]
        assert d["video_id"].tolist() == r.video_ids
        assert d["label"].dtype == np.int64 and d["label"].tolist() == r.labels.tolist()
        assert d["scores"].dtype == np.float64 and np.array_equal(d["scores"], r.scores)
        assert np.array_equal(d["model_seconds"], r.model_seconds)
    assert np.array_equal(data["rgb"]["static"], rgb.static)
    assert "static" not in data["flow"]
    # the file's scores fuse like the results they came from
    aligned = [list(data["flow"]["video_id"]).index(v) for v in ["v1", "v3"]]
    fused = M.fuse([data["rgb"]["scores"][[0, 2]], data["flow"]["scores"][aligned]])
    assert M.topk_accuracy(fused, [0, 1]) == fusion_metrics([rgb, flow], 2, None)["top1"] == 1.0
