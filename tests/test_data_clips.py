"""Clip sampling (pure functions) and the shard clip dataset: bounds, crops, mirroring, test-mode clips."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pipeline.data import clips as C
from pipeline.data import ShardClips, group_scores
from .shard_fixtures import write_shards


def test_train_clip_start_bounds():
    rng = np.random.default_rng(0)
    starts = {C.train_clip_start(20, 16, rng) for _ in range(500)}
    assert starts == set(range(0, 5))
    assert {C.train_clip_start(7, 16, rng) for _ in range(50)} == {0}


def test_test_clip_starts_and_looping():
    assert C.test_clip_starts(5, 16) == [0]
    assert C.test_clip_starts(16, 16) == [0]
    assert C.test_clip_starts(47, 16) == [0, 16]
    assert C.test_clip_starts(48, 16) == [0, 16, 32]
    assert C.clip_indices(0, 8, 5).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert C.clip_indices(3, 4, 10).tolist() == [3, 4, 5, 6]


def test_crop_box_bounds_and_padding():
    assert C.crop_box(128, 170, 112, 0.5, 0.5) == (8, 29)
    assert C.crop_box(128, 170, 112, 0.0, 1.0) == (0, 58)
    frames = np.zeros((2, 50, 40, 3), np.uint8)
    out = C.crop(frames, 64, *C.crop_box(50, 40, 64))
    assert out.shape == (2, 64, 64, 3)
    rng = np.random.default_rng(1)
    for _ in range(200):
        y0, x0 = C.crop_box(256, 340, 112, *C.random_crop_fraction(rng))
        assert 0 <= y0 <= 144 and 0 <= x0 <= 228


def test_flip_flow_and_normalize():
    q = np.array([0, 128, 255, 200], np.uint8)
    assert C.flip_flow_x(q).tolist() == [255, 127, 0, 55]
    assert C.flip_mv_x(np.array([0, 128, 255], np.uint8)).tolist() == [255, 128, 1]
    x = C.to_cthw(np.full((4, 3, 3, 3), 120, np.uint8), C.RGB_MEAN)
    assert x.shape == (3, 4, 3, 3) and x.dtype == np.float32
    assert np.allclose(x[:, 0, 0, 0], 120 - np.array(C.RGB_MEAN))
    assert group_scores(np.array([[1.0, 0], [3, 2], [5, 5]]), [0, 0, 1])[0].tolist() == [2.0, 1.0]


@pytest.fixture()
def shards(tmp_path):
    return write_shards(tmp_path, [20, 6, 33, 9], skip_flow=("v3",))


def _frame_ids(rgb: torch.Tensor) -> np.ndarray:
    g = rgb[1].mean(dim=(1, 2)).numpy() + C.RGB_MEAN[1]       # channel G carries 7 * i + 5
    return np.round((g - 5) / 7).astype(int)


def test_train_clips_bounds_crop_and_flip_consistency(shards):
    ds = ShardClips({"rgb": [shards["rgb"]], "flow": [shards["flow"]]}, "rgb+flow", mode="train",
                    length=4, crop=32, seed=3, train_view="window")
    assert [v.video_id for v in ds.videos] == ["v0", "v1", "v2"]          # v3 has no flow: skipped
    assert [v.num_frames for v in ds.videos] == [19, 5, 32]               # flow has N - 1
    flips = set()
    for i in range(60):
        s = ds[i % len(ds)]
        v = ds.videos[int(s["video"])]
        assert s["rgb"].shape == (3, 4, 32, 32) and s["flow"].shape == (2, 4, 32, 32)
        ids = _frame_ids(s["rgb"])
        start = int(s["start"])
        assert 0 <= start <= v.num_frames - 4
        assert ids.tolist() == list(range(start, start + 4))
        ramp = s["rgb"][0, 0].numpy() + C.RGB_MEAN[0]                      # x * 2 before the crop
        mirrored = ramp[:, 0].mean() > ramp[:, -1].mean()
        x0 = (min(ramp[:, 0].mean(), ramp[:, -1].mean())) / 2
        assert -1.5 <= x0 <= 64 - 32 + 1.5
        fx = s["flow"][0].mean().item() + 127.5
        fy = s["flow"][1].mean().item() + 127.5
        assert abs(fx - (55 if mirrored else 200)) < 2 and abs(fy - 60) < 2
        flips.add(mirrored)
    assert flips == {True, False}


def test_test_mode_clips_grouped_by_video(shards):
    ds = ShardClips([shards["rgb"]], "rgb", mode="test", length=8, crop=32, test_view="window")
    # 20 frames -> 2 clips, 6 -> 1 (looped), 33 -> 4, 9 -> 1
    assert np.bincount(ds.item_video).tolist() == [2, 1, 4, 1]
    s = ds[2]                                                            # the 6-frame video, looped
    assert _frame_ids(s["rgb"]).tolist() == [0, 1, 2, 3, 4, 5, 0, 1]
    ramp = s["rgb"][0, 0].numpy() + C.RGB_MEAN[0]
    assert abs(ramp[:, 0].mean() / 2 - 16) < 1.5                         # centre crop of 64 -> x0 = 16
    assert [int(ds[i]["start"]) for i in range(3, 7)] == [0, 8, 16, 24]
    only_test = ShardClips([shards["rgb"]], "rgb", mode="test", length=8, crop=32, split="test")
    assert [v.video_id for v in only_test.videos] == ["v1", "v3"]


def test_frame_plus_clip_and_pickle(shards, tmp_path):
    ds = ShardClips({"rgb": [shards["rgb"]], "flow": [shards["flow"]]}, "frame+flow", mode="test",
                    length=4, crop=32)
    s = ds[0]
    assert s["frame"].shape == (3, 32, 32)
    assert _frame_ids(s["frame"][:, None]).tolist() == [2]                # middle of frames 0..3
    _ = ds[1]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._handles == {}
    assert torch.equal(clone[1]["flow"], ds[1]["flow"])
    ds.close()


def test_dmcnet_and_two_path_modalities_align(tmp_path):
    from .shard_fixtures import write_mv_and_resframes
    flow = write_shards(tmp_path, [20, 9], h=48, w=64)
    comp = write_mv_and_resframes(tmp_path, [20, 9], h=48, w=64)
    ds = ShardClips({"mv": [comp["mv"]], "flow": [flow["flow"]]}, "mv+residual+flow", mode="train",
                    length=4, crop=16, seed=5, train_view="window")
    assert [v.num_frames for v in ds.videos] == [19, 8]
    flips = set()
    for i in range(40):
        s = ds[i % 2]
        assert s["mv"].shape == (2, 4, 16, 16) and s["residual"].shape == (3, 4, 16, 16)
        ramp = s["residual"][0, 0].numpy() + 128
        mirrored = bool(ramp[:, 0].mean() > ramp[:, -1].mean())
        assert abs(ramp[0, 0] - ramp[0, -1]) == 30                       # 15 px of a 2-per-px ramp
        ids = (s["residual"][1, :, 0, 0].numpy() + 128 - 5) / 7
        assert ids.tolist() == list(range(int(s["start"]), int(s["start"]) + 4))
        assert s["mv"][0].unique().tolist() == [(96 if mirrored else 160) - 128]
        assert s["mv"][1].unique().tolist() == [100 - 128]
        assert abs(s["flow"][0].mean().item() + 127.5 - (55 if mirrored else 200)) < 2
        flips.add(mirrored)
    assert flips == {True, False}
    two = ShardClips({"rgb": [flow["rgb"]], "resframe": [comp["resframe"]]}, "frame+resframe", mode="train",
                     length=4, crop=16, seed=1, train_view="window")
    for i in range(20):
        s = two[i % 2]
        assert s["frame"].shape == (3, 16, 16) and s["resframe"].shape == (3, 4, 16, 16)
        ids = (s["resframe"][1, :, 0, 0].numpy() + 128 - 5) / 7          # signed: 128 subtracted
        assert ids.tolist() == list(range(int(s["start"]), int(s["start"]) + 4))
        assert round((s["frame"][1].mean().item() + C.RGB_MEAN[1] - 5) / 7) == int(s["start"]) + 2
        fr = s["frame"][0].numpy() + C.RGB_MEAN[0]                       # RGB ramp x * 2 on 64 px
        rf = s["resframe"][0, 0].numpy() + 128                           # ramp x * 4 on 32 px
        assert (fr[:, 0].mean() > fr[:, -1].mean()) == (rf[:, 0].mean() > rf[:, -1].mean())
