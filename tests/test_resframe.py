"""Residual frames |F_i - F_i+1|: the pure function, the stage, and stage == on-the-fly as tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.media import jpeg
from pipeline.resframe import (decode_signed, resframes, resframes_from_jpeg, resframes_from_rgb,
                                          resize_frames)
from pipeline.core.config import resolve
from pipeline.core.manifest import make_manifest
from pipeline.steps import run_shard
from pipeline.core.paths import shard_name
from pipeline.shards import ShardReader, ShardWriter, Stream, verify
from pipeline.steps.contract import StageError

from .compressed_fixtures import translation_frames


def test_absolute_and_signed_encodings():
    a = np.array([[[[0, 10, 255]]], [[[255, 0, 250]]], [[[5, 5, 5]]]], np.uint8)   # (3, 1, 1, 3)
    r = resframes(a)
    assert r.shape == (2, 1, 1, 3) and r.dtype == np.uint8
    assert r[:, 0, 0].tolist() == [[255, 10, 5], [250, 5, 245]]
    s = resframes(a, signed=True)
    assert s[:, 0, 0].tolist() == [[0, 133, 130], [253, 125, 250]]      # (F_i - F_i+1 + 256) >> 1
    d = a[:-1].astype(int) - a[1:]
    assert np.all(np.abs(decode_signed(s) - d) <= 1)
    assert resframes(a[:1]).shape == (0, 1, 1, 3)
    assert resframes(np.zeros((2, 4, 4, 3), np.uint8)).sum() == 0


def test_resize_then_difference():
    frames = np.stack(translation_frames(5, 2, 0, height=256, width=340))
    out = resframes_from_rgb(frames, (170, 128))
    assert out.shape == (4, 128, 170, 3)
    assert out.mean() > 3


@pytest.mark.parametrize("signed", [False, True])
def test_chunked_path_equals_resize_then_difference(signed):
    frames = translation_frames(21, 1.5, -1, height=96, width=130, seed=4)   # not a multiple of the target
    for n in (0, 1, 2, 4, 5, 6, 9, 21):
        got = resframes_from_rgb(frames[:n], (64, 48), signed, chunk=4)
        want = resframes(resize_frames(frames[:n], (64, 48)), signed) if n else np.zeros((0, 48, 64, 3))
        assert got.shape == want.shape and np.array_equal(got, want), n


def rgb_shard(path, videos, classes=("a", "b")):
    w = ShardWriter(path, dataset="toy", modality="rgb", encoding="jpeg", shard=0, num_shards=1,
                    classes=classes, manifest_sha256="0" * 64, params={},
                    streams=[Stream("rgb", kind="jpeg")])
    for vid, label, frames in videos:
        h, wd = frames[0].shape[:2]
        w.add_video(vid, label, "train", 25.0, h, wd, {"rgb": [jpeg.encode(f, 95) for f in frames]})
    w.add_failure("lost", "decode", "ValueError: cannot decode")
    w.close()


def test_stage_matches_on_the_fly_tensors(tmp_path):
    vids = [("v0", 0, translation_frames(20, 2, 0, height=256, width=340)),
            ("v1", 1, translation_frames(7, -1, 1, height=192, width=256, seed=3)),
            ("single", 1, translation_frames(1, 0, 0, height=256, width=340))]
    rgb_dir = tmp_path / "decode"
    rgb_shard(rgb_dir / shard_name(0), vids)
    s = resolve({"videos_per_shard": 10, "dataset": "toy",
                 "datasets": {"toy": {"format": "csv", "root": "."}}})
    out = tmp_path / "resframe"       # no manifest: the RGB shard's own attributes and failure list
    summary = run_shard("resframe", s, 0, input_dir=rgb_dir, out_dir=out, strict=False, progress=False)
    assert summary["videos"] == 2 and summary["failures"] == 2
    shard = out / shard_name(0)
    assert verify(shard) == []
    with ShardReader(shard) as r, ShardReader(rgb_dir / shard_name(0)) as rgb:
        assert r.attrs["modality"] == "resframe"
        ds = r.file["frames/resframe"]
        assert ds.dtype == np.uint8 and ds.shape[1:] == (128, 170, 3)
        assert ds.chunks == (16, 128, 170, 3) and "32015" in ds._filters     # Zstandard, the default
        for vid in ("v0", "v1"):
            i, j = r.video_ids().index(vid), rgb.video_ids().index(vid)
            stored = torch.from_numpy(r.decode(i, "resframe"))
            # a loader computing a 16-frame clip on the fly from the RGB shard: frames k .. k+16
            k = 2 if vid == "v0" else 0
            n = min(17, rgb.frame_range(j)[1] - rgb.frame_range(j)[0] - k)
            live = torch.from_numpy(resframes_from_jpeg(rgb.raw(j, "rgb", k, k + n), (170, 128)))
            assert torch.equal(stored[k:k + n - 1], live)
        assert dict(zip(r.video_ids(), r.table()["num_frames"])) == {"v0": 19, "v1": 6}
        failed = {f["video_id"]: f for f in r.failures}
    assert failed["lost"]["stage"] == "decode"
    assert failed["single"]["stage"] == "resframe" and "at least 2" in failed["single"]["error"]
    assert len(json.loads((out / "shard-00000.failures.json").read_text())) == 2


def test_stage_needs_the_rgb_shard(tmp_path):
    m = make_manifest("toy", "csv", tmp_path, ["a"], [("v", "v.mp4", "a", "train")])
    s = resolve({"dataset": "toy", "datasets": {"toy": {"format": "csv", "root": "."}}})
    with pytest.raises(StageError, match="prep-cli decode"):
        run_shard("resframe", s, 0, manifest=m, input_dir=tmp_path / "none", out_dir=tmp_path / "out",
                  progress=False)


@pytest.mark.parametrize("signed", [False, True])
def test_jpeg_path_decodes_at_half_size_or_falls_back_to_area(signed):
    import cv2
    frames = translation_frames(11, 1.5, -1, height=96, width=128, seed=5)
    jpegs = [jpeg.encode(f, 95) for f in frames]
    half = np.stack([cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_REDUCED_COLOR_2),
                                  cv2.COLOR_BGR2RGB) for b in jpegs])              # libjpeg at 1/2 scale
    for n in (0, 1, 2, 5, 6, 11):
        got = resframes_from_jpeg(jpegs[:n], (64, 48), signed, chunk=4)
        want = resframes(half[:n], signed) if n else np.zeros((0, 48, 64, 3))
        assert got.shape == want.shape and np.array_equal(got, want), n
    decoded = [jpeg.decode(b) for b in jpegs]
    area = resframes_from_rgb(decoded, (64, 48), signed)
    assert np.abs(resframes_from_jpeg(jpegs, (64, 48), signed).astype(int) - area).mean() < 4   # close
    # not an exact fraction of the stored size: full decode + INTER_AREA, the same as resframes_from_rgb
    np.testing.assert_array_equal(resframes_from_jpeg(jpegs, (50, 40), signed, chunk=4),
                                  resframes_from_rgb(decoded, (50, 40), signed))


@pytest.mark.parametrize("compression", [0, 1, "lzf", "zstd"])
def test_every_storage_setting_stores_the_same_arrays(tmp_path, compression):
    """none, gzip, LZF and Zstandard are lossless: the stored residual frames are the same; h5py reads all
    of them (zstd once hdf5plugin is imported, as pipeline.shards does)."""
    import h5py
    vids = [("v0", 0, translation_frames(9, 2, 0, height=256, width=340))]
    rgb_shard(tmp_path / "decode" / shard_name(0), vids)
    s = resolve({"dataset": "toy", "datasets": {"toy": {"format": "csv", "root": "."}},
                 "resframe": {"compression": compression}})
    run_shard("resframe", s, 0, input_dir=tmp_path / "decode", out_dir=tmp_path / "out", progress=False)
    with h5py.File(tmp_path / "out" / shard_name(0), "r") as f:
        ds = f["frames/resframe"]
        if compression == "zstd":
            assert "32015" in ds._filters                  # the registered Zstandard filter id
        else:
            assert ds.compression == {0: None, 1: "gzip", "lzf": "lzf"}[compression]
        stored = ds[()]
    with ShardReader(tmp_path / "decode" / shard_name(0)) as r:
        expected = resframes_from_jpeg(r.raw(0, "rgb"), (170, 128))
    np.testing.assert_array_equal(stored, expected)
    with ShardReader(tmp_path / "out" / shard_name(0)) as r:
        assert r.params["resframe"]["compression"] == compression         # recorded with the shard


def test_an_unknown_compression_is_refused():
    from pipeline.core.config import ConfigError
    with pytest.raises(ConfigError, match="resframe.compression"):
        resolve({"resframe": {"compression": "zip"}})
