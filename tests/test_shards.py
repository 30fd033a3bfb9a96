"""ShardWriter/ShardReader edge cases: equal-length JPEGs, 1-frame videos, array streams, abort."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.media import jpeg
from pipeline.shards import ShardError, ShardReader, ShardWriter, Stream, verify


def writer(path, streams):
    return ShardWriter(path, dataset="t", modality="flow", encoding="jpeg", shard=0, num_shards=1,
                       classes=["a"], manifest_sha256="0" * 64, params={"x": {"k": 1, "none": None}},
                       streams=streams)


def test_equal_length_blobs_and_single_frame_videos(tmp_path):
    flat = jpeg.encode(np.full((8, 8), 128, np.uint8))
    other = jpeg.encode(np.full((8, 8), 128, np.uint8)[::-1].copy(), quality=94)
    assert len(flat) == len(other)  # identical byte lengths used to be read by h5py as one 2-D array
    with writer(tmp_path / "s.h5", [Stream("x", color="gray"), Stream("y", color="gray")]) as w:
        w.add_video("one", 0, "train", 25.0, 8, 8, {"x": [flat], "y": [other]})
        w.add_video("two", 0, "train", 25.0, 8, 8, {"x": [flat, other], "y": [other, flat]})
        w.add_video("empty", 0, "train", 25.0, 8, 8, {"x": [], "y": []})
    assert verify(tmp_path / "s.h5") == []
    with ShardReader(tmp_path / "s.h5") as r:
        assert [bytes(b) for b in r.raw(0, "x")] == [flat]
        assert [bytes(b) for b in r.raw(1, "y")] == [other, flat]
        assert r.table()["num_frames"].tolist() == [1, 2, 0]
        assert r.attrs["x.k"] == 1 and "x.none" not in r.attrs


def test_array_streams_and_mismatched_counts(tmp_path):
    s = Stream("mv", kind="array", shape=(2, 4, 4), compression=1)
    with writer(tmp_path / "a.h5", [s, Stream("t", kind="array", dtype="int8")]) as w:
        w.add_video("v", 0, "train", 25.0, 4, 4, {"mv": np.ones((3, 2, 4, 4), np.uint8), "t": [1, 0, 0]})
        with pytest.raises(ShardError, match="different frame counts"):
            w.add_video("w", 0, "train", 25.0, 4, 4, {"mv": np.ones((2, 2, 4, 4), np.uint8), "t": [1]})
    with ShardReader(tmp_path / "a.h5") as r:
        assert r.decode(0, "mv").shape == (3, 2, 4, 4) and r.decode(0, "t").tolist() == [1, 0, 0]


def test_an_exception_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with writer(tmp_path / "x.h5", [Stream("x", color="gray")]) as w:
            w.add_video("v", 0, "train", 25.0, 8, 8, {"x": [jpeg.encode(np.zeros((8, 8), np.uint8))]})
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_reader_refuses_foreign_and_newer_files(tmp_path):
    import h5py
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.attrs["format"] = "other"
    with pytest.raises(ShardError, match="not a vidshard"):
        ShardReader(tmp_path / "f.h5").file
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.attrs["format"] = "vidshard"
        f.attrs["format_version"] = 99
    with pytest.raises(ShardError, match="newer"):
        ShardReader(tmp_path / "g.h5").file


def test_diff_finds_every_kind_of_difference(tmp_path):
    import h5py
    from click.testing import CliRunner

    from pipeline.cli import cli
    from pipeline.shards import diff

    blob = jpeg.encode(np.full((8, 8), 100, np.uint8))
    for name in ("a.h5", "b.h5"):
        with writer(tmp_path / name, [Stream("x", color="gray")]) as w:
            w.add_video("v", 0, "train", 25.0, 8, 8, {"x": [blob, blob]})
    assert diff(tmp_path / "a.h5", tmp_path / "b.h5") == []
    assert CliRunner().invoke(cli, ["shards", "diff", str(tmp_path / "a.h5"), str(tmp_path / "b.h5")]).exit_code == 0
    with h5py.File(tmp_path / "b.h5", "r+") as f:
        f.attrs["params"] = '{"x": {"k": 2}}'
        f["videos/fps"][0] = 30.0
        f["frames/x"].attrs["color"] = "rgb"
        f.create_dataset("extra", data=[1])
    found = diff(tmp_path / "a.h5", tmp_path / "b.h5")
    assert any(p.startswith("attribute 'params'") for p in found)
    assert "dataset 'videos/fps': values differ" in found
    assert "dataset 'frames/x' attribute 'color' differs" in found
    assert "dataset 'extra' only in the second file" in found
    assert not any("params" in p for p in diff(tmp_path / "a.h5", tmp_path / "b.h5", ignore_attrs=("params",)))
    res = CliRunner().invoke(cli, ["shards", "diff", str(tmp_path / "a.h5"), str(tmp_path / "b.h5")])
    assert res.exit_code == 1 and "values differ" in res.output
