"""reencode and extract-mv end to end: awkward inputs, failure policy, shards, CLI, PNGs."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import resolve
from pipeline.compressed.encoding import dense_mv
from pipeline.compressed.mpeg4 import ReencodeError, picture_types, reencode_file
from pipeline.core.manifest import make_manifest, read_manifest
from pipeline.core.paths import output_name, video_filename
from pipeline.steps import run_shard
from pipeline.shards import ShardReader, verify
from pipeline.media.videoio import write_video

from .compressed_fixtures import H, W, small_cfg, translation_frames, write_translation
from .conftest import write_timed_video


def frame_count(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_reencode_removes_b_frames_and_keeps_gop(tmp_path):
    src = write_video(tmp_path / "b.mp4", translation_frames(30, 1, 0), 25, "libx264",
                      {"crf": "20", "bf": "3"})
    with av.open(str(src)) as c:
        c.streams.video[0].codec_context.options = {}
        types = [f.pict_type for f in c.decode(video=0)]
    assert any(int(t) == 3 for t in types)                         # the source has B-frames
    info = reencode_file(src, tmp_path / "b.avi", small_cfg())
    assert info == {"frames": 30, "gops": 3}
    assert picture_types(tmp_path / "b.avi") == ("I" + "P" * 11) * 2 + "IPPPPP"


def test_reencode_variable_frame_rate_to_25fps(tmp_path):
    src = tmp_path / "vfr.mkv"
    frames = translation_frames(12, 1, 0)
    times_ms = [0, 40, 50, 60, 160, 200, 330, 340, 400, 520, 560, 600]   # irregular, 0.64 s in all
    write_timed_video(src, frames, times_ms)
    dst = tmp_path / "vfr.avi"
    info = reencode_file(src, dst, small_cfg())
    with av.open(str(dst)) as c:
        assert c.streams.video[0].average_rate == 25
    assert 15 <= info["frames"] <= 17 and frame_count(dst) == info["frames"]


def test_reencode_odd_size_short_video(tmp_path):
    src = write_video(tmp_path / "odd.avi", translation_frames(5, 1, 0, height=27, width=33), 25, "ffv1")
    info = reencode_file(src, tmp_path / "odd_out.avi", small_cfg())   # scaled to 96x64
    assert info == {"frames": 5, "gops": 1}
    with av.open(str(tmp_path / "odd_out.avi")) as c:
        s = c.streams.video[0]
        assert (s.width, s.height, s.codec_context.name) == (W, H, "mpeg4")
    with pytest.raises(ReencodeError, match="even"):
        reencode_file(src, tmp_path / "x.avi", small_cfg(width=33, height=27))
    with pytest.raises(ReencodeError, match="cannot open junk.mp4"):
        (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
        reencode_file(tmp_path / "junk.mp4", tmp_path / "junk.avi", small_cfg())
    assert not (tmp_path / "junk.avi").exists()


def test_extract_file_wants_mpeg4_part2(tmp_path):
    from pipeline.compressed.extract import extract_file
    from pipeline.core.errors import InputError
    h264 = write_video(tmp_path / "x.mp4", translation_frames(6, 1, 0), 25, "libx264", {"bf": "0"})
    with pytest.raises(InputError, match="not MPEG-4 Part 2.*prep-cli reencode"):
        extract_file(h264, 20.0)
    with pytest.raises(InputError, match="no such file.*prep-cli reencode"):
        extract_file(tmp_path / "missing.avi", 20.0)


def toy(tmp_path):
    root = tmp_path / "videos"
    write_translation(root / "right" / "a.avi", 14, 2, 0)
    write_translation(root / "left" / "b.avi", 5, -1.5, 0, seed=1)                    # shorter than a GOP
    write_translation(root / "left" / "c.avi", 13, -1, 1, seed=2)                 # replaced by an ffv1 file
    (root / "right" / "d.avi").write_bytes(b"garbage")                                  # cannot be re-encoded
    rows = [("a", "right/a.avi", "right", "train"), ("b", "left/b.avi", "left", "train"),
            ("c", "left/c.avi", "left", "test"), ("d", "right/d.avi", "right", "test")]
    m = make_manifest("toy", "csv", root, ["left", "right"], rows)
    m.write(tmp_path / "toy.tsv")
    cfg = {"results": str(tmp_path / "results"), "videos_per_shard": 10, "dataset": "toy",
           "datasets": {"toy": {"format": "csv", "root": str(root)}},
           "reencode": {"size": [W, H]}, "extract_mv": {"storage": "arrays"}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return resolve(cfg), read_manifest(tmp_path / "toy.tsv")


def test_stages_end_to_end_with_failures(tmp_path, monkeypatch, caplog):
    settings, m = toy(tmp_path)
    re_dir = tmp_path / "results" / "reencode" / "toy"
    s = run_shard("reencode", settings, 0, manifest=m, out_dir=re_dir, strict=False, progress=False)
    assert s["videos"] == 3 and s["failures"] == 1
    done = json.loads((re_dir / "shard-00000.done.json").read_text())
    assert {v["video_id"] for v in done["videos"]} == {"a", "b", "c"}
    assert done["params"]["reencode"]["gop"] == 12
    fails = json.loads((re_dir / "shard-00000.failures.json").read_text())
    assert fails[0]["video_id"] == "d" and fails[0]["stage"] == "reencode"
    assert "cannot open d.avi" in fails[0]["error"]
    # a file whose codec exports no motion vectors
    write_video(re_dir / output_name("folder", 0) / video_filename("c"), translation_frames(4, 1, 0), 25, "ffv1")
    out = tmp_path / "results" / "extract_mv" / "toy"
    s = run_shard("extract_mv", settings, 0, manifest=m, input_dir=re_dir, out_dir=out, strict=False, progress=False)
    assert s["videos"] == 2 and s["failures"] == 2
    shard = out / "shard-00000.h5"
    assert verify(shard) == []
    with ShardReader(shard) as r:
        assert r.attrs["modality"] == "mv" and r.attrs["encoding"] == "coviar-uint8"
        assert set(r.streams) == {"frame_type", "gop_index", "gop_pos", "mv", "mv_acc", "residual",
                                  "residual_acc"}
        t = r.table()
        frames = dict(zip(r.video_ids(), t["num_frames"]))
        assert frames == {"a": 14, "b": 5}
        assert dict(zip(r.video_ids(), t["num_gops"])) == {"a": 2, "b": 1}
        b = r.video_ids().index("b")
        assert r.raw(b, "frame_type").tolist() == [0, 1, 1, 1, 1]
        mv = r.raw(b, "mv")                                   # one vector per 8x8 cell, attribute grid
        assert mv.shape == (5, 2, H // 8, W // 8) and r.file["frames/mv"].attrs["grid"] == 8
        assert dense_mv(mv, 8, H, W).shape == (5, 2, H, W) and r.raw(b, "residual").shape == (5, H, W, 3)
        assert r.raw(b, "mv_acc").shape == (5, 2, H, W)
        assert r.file["frames/mv"].attrs["bound"] == 20.0 and "src-dst" in r.file["frames/mv"].attrs["sign"]
        failed = {f["video_id"]: f for f in r.failures}
        ids = r.video_ids()
    iframes = out / "shard-00000.iframes.h5"
    assert verify(iframes) == []
    with ShardReader(iframes) as ri:
        assert ri.attrs["modality"] == "rgb" and ri.video_ids() == ids
        assert dict(zip(ri.video_ids(), ri.table()["num_frames"])) == {"a": 2, "b": 1}
        img = ri.decode(ids.index("a"), "iframe", 1, 2)[0]
        assert img.shape == (H, W, 3)
        assert {f["video_id"] for f in ri.failures} == {"c", "d"}
    assert failed["d"]["stage"] == "reencode"
    assert failed["c"]["stage"] == "extract_mv" and "exports no motion vectors" in failed["c"]["error"]
    report = json.loads((out / "shard-00000.failures.json").read_text())
    assert {f["video_id"] for f in report} == {"c", "d"}
    # the same shard without the fused kernel (a warning says so): every stored array is identical
    monkeypatch.setenv("MOTIONPREP_FUSED", "0")
    slow = tmp_path / "slow"
    run_shard("extract_mv", settings, 0, manifest=m, input_dir=re_dir, out_dir=slow, strict=False, progress=False)
    assert "fused kernel is not used (turned off by MOTIONPREP_FUSED=0)" in caplog.text
    with ShardReader(shard) as r, ShardReader(slow / "shard-00000.h5") as q:
        assert r.video_ids() == q.video_ids()
        for name in r.streams:
            np.testing.assert_array_equal(r.file["frames"][name][:], q.file["frames"][name][:], err_msg=name)


def test_cli_single_file_shards_and_pngs(tmp_path):
    settings, m = toy(tmp_path)
    runner = CliRunner()
    cfg = str(tmp_path / "cfg.yaml")
    src = tmp_path / "videos" / "right" / "a.avi"
    res = runner.invoke(cli, ["reencode", "--config", cfg, str(src), str(tmp_path / "one.avi")])
    assert res.exit_code == 0, res.output
    assert "14 frames, 2 GOPs" in res.output and f"{W}x{H}" in res.output
    res = runner.invoke(cli, ["extract-mv", "--config", cfg, "--manifest", str(tmp_path / "toy.tsv"),
                              "--no-progress"])
    assert res.exit_code != 0 and "run `prep-cli reencode` first" in str(res.exception)
    for args in (["reencode"], ["extract-mv", "--backend", "pyav"]):
        res = runner.invoke(cli, [*args, "--config", cfg, "--manifest", str(tmp_path / "toy.tsv"),
                                  "--shard", "0", "--no-progress"])
        assert res.exit_code == 0, (res.output, res.exception)
    shard = tmp_path / "results" / "extract_mv" / "toy" / "shard-00000.h5"
    res = runner.invoke(cli, ["visualize-mv", str(shard), "--video", "a", "--frames", "4", "--out",
                              str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    pngs = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert pngs == ["a-frame0001.png", "a-frame0002.png", "a-frame0003.png", "a-overview.png"]


def test_reencode_reads_frame_folders(tmp_path):
    """Something-Something v1 style folders (00001.jpg ... at 12 fps) are re-encoded like video files."""
    import numpy as np

    from pipeline.core.config import ReencodeConfig
    from pipeline.media import jpeg

    folder = tmp_path / "100218"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i + 1:05d}.jpg").write_bytes(jpeg.encode(np.full((100, 132, 3), 8 * i, np.uint8)))
    info = reencode_file(folder, tmp_path / "100218.avi", ReencodeConfig(), folder_fps=12.0)
    assert info == {"frames": 63, "gops": 6}  # 30 frames at 12 fps = 2.5 s -> 62.5 -> 63 at 25 fps
    types = picture_types(tmp_path / "100218.avi")
    assert types[0] == "I" and types[12] == "I" and set(types[1:12]) == {"P"}


def _live_frames() -> int:
    import gc
    return sum(issubclass(type(o), av.VideoFrame) for o in gc.get_objects())    # type(): no __class__ lookups


def test_decoded_frames_are_freed_without_the_garbage_collector(tmp_path):
    """Every PyAV frame extract_mv decodes is freed by reference counting once it is dropped. It used to
    stay in a reference cycle with its side-data container that the per-frame ``gc.collect(0)`` could not
    free (PyAV allocates a frame one decode call ahead, so it is always older than its container): the
    stage kept every frame of every video of a shard, ~0.26 MB a frame at 340x256 (~66 MB per 10 s
    video). Checked here with the collector off, on every decode path of the stage and of the readers."""
    import dataclasses
    import gc

    from pipeline.compressed.extract import extract_file
    from pipeline.compressed.gop import decode_packets, scan_file

    src = write_translation(tmp_path / "t.avi", 30, 1.5, -1)
    path = tmp_path / "t_mpeg4.avi"
    reencode_file(src, path, small_cfg())
    settings, m = toy(tmp_path)
    re_dir = tmp_path / "results" / "reencode" / "toy"
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        before = _live_frames()        # (a frame's RGB array refers to the RGB frame it was converted to)
        index, packets, iframes = scan_file(path)                        # storage: bitstream
        assert len(packets) == 30 and len(iframes) == 3
        del iframes
        assert _live_frames() == before
        assert len(list(decode_packets(packets[12:24], index.extradata))) == 12     # MvShard reads
        assert _live_frames() == before
        assert extract_file(path, 20.0).num_frames == 30                 # storage: arrays
        assert _live_frames() == before
        run_shard("reencode", settings, 0, manifest=m, out_dir=re_dir, strict=False, progress=False)
        for storage in ("bitstream", "arrays"):
            s = run_shard("extract_mv", settings, 0, manifest=m, input_dir=re_dir, out_dir=tmp_path / storage,
                          config=dataclasses.replace(settings.extract_mv, storage=storage), progress=False)
            assert s["videos"] == 3 and _live_frames() == before, storage
    finally:
        if was:
            gc.enable()
