"""The decode stage end to end: shards, failure policy, strictness, determinism, frame folders, verify."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from pipeline.media import jpeg
from pipeline.core.config import resolve
from pipeline.steps import run_shard
from pipeline.core.manifest import make_manifest, num_shards, shard_entries
from pipeline.shards import ShardReader, inspect, verify
from pipeline.steps.contract import StageError
from tests.conftest import counter_frames
from pipeline.media.videoio import write_video


def settings(tmp_path, **decode):
    return resolve({"results": str(tmp_path / "results"), "videos_per_shard": 10,
                    "datasets": {"toy": {"format": "csv", "root": str(tmp_path / "videos")}},
                    "dataset": "toy", "decode": {"short_side": 48, **decode}})


def toy_manifest(tmp_path, bad=()):
    root = tmp_path / "videos"
    rows = []
    for i, (fps, n) in enumerate([(30, 12), (24, 10), (12.5, 5)]):
        write_video(root / f"c{i % 2}" / f"v{i}.mkv", counter_frames(n), fps, "ffv1")
        rows.append((f"v{i}", f"c{i % 2}/v{i}.mkv", f"c{i % 2}", "train"))
    for name, data in bad:
        (root / "c0" / name).write_bytes(data)
        rows.append((name.split(".")[0], f"c0/{name}", "c0", "test"))
    m = make_manifest("toy", "csv", root, ["c0", "c1"], rows)
    path = tmp_path / "toy.tsv"
    m.write(path)
    from pipeline.core.manifest import read_manifest
    return read_manifest(path)


def test_decode_writes_a_sound_shard(tmp_path):
    s = settings(tmp_path)
    m = toy_manifest(tmp_path)
    out = tmp_path / "results" / "decode" / "toy"
    summary = run_shard("decode", s, 0, manifest=m, out_dir=out, strict=False, progress=False)
    assert summary["videos"] == 3 and summary["failures"] == 0
    shard = out / "shard-00000.h5"
    assert verify(shard) == []
    with ShardReader(shard) as r:
        t = r.table()
        assert r.attrs["modality"] == "rgb" and r.attrs["manifest_sha256"] == m.sha256
        assert r.params["decode"]["short_side"] == 48 and r.params["decode"]["fps"] == 25.0
        assert r.classes == ["c0", "c1"]
        order = [e.video_id for e in shard_entries(m, 0, 10)]
        assert r.video_ids() == order
        frames = dict(zip(r.video_ids(), t["num_frames"]))
        assert frames == {"v0": 10, "v1": 10, "v2": 10}  # 12@30 -> 10, 10@24 -> 10 (rounded), 5@12.5 -> 10
        v2 = r.video_ids().index("v2")
        reds = [int(round(f[..., 0].mean())) for f in r.decode(v2, "rgb")]
        assert reds == [0, 0, 10, 10, 20, 20, 30, 30, 40, 40]  # JPEG of flat areas stays within rounding
        assert r.decode(v2, "rgb", 2, 5).shape == (3, 48, 64, 3)
        assert t["source_fps"][v2] == 12.5 and t["source_frames"][v2] == 5
    assert json.loads((out / "shard-00000.failures.json").read_text()) == []
    assert "rgb" in inspect(shard)


def test_bad_videos_are_recorded_and_skipped(tmp_path):
    m = toy_manifest(tmp_path, bad=[("broken.avi", b"RIFF" + bytes(500)), ("empty.mp4", b"")])
    out = tmp_path / "out"
    summary = run_shard("decode", settings(tmp_path), 0, manifest=m, out_dir=out, strict=False, progress=False)
    assert summary["videos"] == 3 and summary["failures"] == 2
    report = json.loads((out / "shard-00000.failures.json").read_text())
    assert sorted(r["video_id"] for r in report) == ["broken", "empty"]
    assert all(r["stage"] == "decode" and r["error"] for r in report)
    with ShardReader(out / "shard-00000.h5") as r:
        assert sorted(f["video_id"] for f in r.failures) == ["broken", "empty"]
        assert "broken" not in r.video_ids()


def test_strict_mode_fails_and_leaves_no_file(tmp_path):
    m = toy_manifest(tmp_path, bad=[("broken.avi", b"RIFF" + bytes(500))])
    out = tmp_path / "out"
    with pytest.raises(StageError, match="decode: video broken"):
        run_shard("decode", settings(tmp_path), 0, manifest=m, out_dir=out, strict=True, progress=False)
    assert not any(out.glob("*.h5")) and not any(out.glob(".*tmp"))


def test_a_failed_rerun_leaves_the_previous_shard_with_its_report(tmp_path):
    m = toy_manifest(tmp_path, bad=[("broken.avi", b"RIFF" + bytes(500))])
    out = tmp_path / "out"
    run_shard("decode", settings(tmp_path), 0, manifest=m, out_dir=out, strict=False, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["shard-00000.failures.json", "shard-00000.h5"]
    with pytest.raises(StageError, match="decode: video broken"):
        run_shard("decode", settings(tmp_path), 0, manifest=m, out_dir=out, strict=True, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_shard_without_any_readable_video_is_an_error(tmp_path):
    root = tmp_path / "videos"
    (root / "c0").mkdir(parents=True)
    (root / "c0" / "a.avi").write_bytes(b"junk")
    m = make_manifest("toy", "csv", root, ["c0"], [("a", "c0/a.avi", "c0", "train")])
    with pytest.raises(StageError, match="no video that could be processed"):
        run_shard("decode", settings(tmp_path), 0, manifest=m, out_dir=tmp_path / "out", strict=False, progress=False)
    assert not (tmp_path / "out" / "shard-00000.h5").exists()


def test_same_inputs_give_the_same_bytes(tmp_path):
    s, m = settings(tmp_path), toy_manifest(tmp_path)
    run_shard("decode", s, 0, manifest=m, out_dir=tmp_path / "a", strict=False, progress=False)
    run_shard("decode", s, 0, manifest=m, out_dir=tmp_path / "b", strict=False, progress=False, options={"workers": 2})
    assert (tmp_path / "a" / "shard-00000.h5").read_bytes() == (tmp_path / "b" / "shard-00000.h5").read_bytes()


def test_verify_catches_corruption(tmp_path):
    s, m = settings(tmp_path), toy_manifest(tmp_path)
    run_shard("decode", s, 0, manifest=m, out_dir=tmp_path / "a", strict=False, progress=False)
    shard = tmp_path / "a" / "shard-00000.h5"
    with h5py.File(shard, "r+") as f:
        ds = f["frames/rgb"]
        bad = ds[3].copy()
        bad[len(bad) // 3:] = 0  # wipe most of one JPEG's entropy-coded data and its end marker
        ds[3] = bad
    assert any("does not decode" in p or "decodes to" in p for p in verify(shard))
    with h5py.File(shard, "r+") as f:
        f["videos/offset"][1] = 9999
    assert verify(shard, decode_jpeg=False)
    shard.write_bytes(b"not hdf5")
    assert verify(shard)[0].startswith("cannot open")


def test_frame_folders_are_copied_byte_for_byte(tmp_path):
    root = tmp_path / "frames"
    blobs = []
    for i in range(4):
        img = np.full((100, 132, 3), 30 * i, np.uint8)
        data = jpeg.encode(img, 90)
        (root / "100218").mkdir(parents=True, exist_ok=True)
        (root / "100218" / f"{i + 1:05d}.jpg").write_bytes(data)
        blobs.append(data)
    m = make_manifest("sth", "sthv1", root, ["Pushing something"], [("100218", "100218", "Pushing something",
                                                                     "train")], kind="frames")
    s = resolve({"datasets": {"sth": {"format": "sthv1", "root": str(root),
                                      "overrides": {"decode": {"fps": None, "short_side": None}}}},
                 "dataset": "sth"})
    run_shard("decode", s, 0, manifest=m, out_dir=tmp_path / "out", strict=False, progress=False)
    with ShardReader(tmp_path / "out" / "shard-00000.h5") as r:
        assert [bytes(b) for b in r.raw(0, "rgb")] == blobs
        t = r.table()
        assert t["fps"][0] == 12.0 and (t["width"][0], t["height"][0]) == (132, 100)


def test_num_shards_and_assignment_cover_the_manifest(tmp_path):
    m = toy_manifest(tmp_path)
    assert num_shards(len(m), 2) == 2
    ids = [e.video_id for k in range(2) for e in shard_entries(m, k, 2)]
    assert sorted(ids) == ["v0", "v1", "v2"]


def test_an_unreadable_frame_of_a_folder_is_that_videos_failure(tmp_path):
    root = tmp_path / "frames"
    for vid in ("good", "bad"):
        for i in range(3):
            (root / vid).mkdir(parents=True, exist_ok=True)
            (root / vid / f"{i + 1:05d}.jpg").write_bytes(jpeg.encode(np.full((20, 24, 3), 40 * i, np.uint8)))
    (root / "bad" / "00002.jpg").unlink()
    (root / "bad" / "00002.jpg").mkdir()            # listed as a frame, cannot be read (an OSError)
    m = make_manifest("sth", "sthv1", root, ["x"], [(v, v, "x", "train") for v in ("good", "bad")], kind="frames")
    s = resolve({"datasets": {"sth": {"format": "sthv1", "root": str(root),
                                      "overrides": {"decode": {"fps": None, "short_side": None}}}},
                 "dataset": "sth"})
    summary = run_shard("decode", s, 0, manifest=m, out_dir=tmp_path / "out", progress=False)
    assert (summary["videos"], summary["failures"]) == (1, 1)
    report = json.loads((tmp_path / "out" / "shard-00000.failures.json").read_text())
    assert report[0]["video_id"] == "bad" and "frame 00002.jpg of bad cannot be read" in report[0]["error"]
