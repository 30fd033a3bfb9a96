"""The stage contract (pipeline.steps.contract): failure policy, provenance, one name per stage, the generated
command line, and settings that follow the data (pipeline.core.resolve)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.cli import cli
from pipeline.core import paths
from pipeline.core.config import ConfigError, resolve
from pipeline.core.errors import InputError, StageError, VideoError
from pipeline.core.manifest import make_manifest, read_manifest
from pipeline.steps.contract import VideoFailure, VideoResult, guarded, run_videos, shard_job, write_shard
from pipeline.media.videoio import write_video
from pipeline.shards import ShardReader, ShardWriter, Stream
from pipeline.steps import NAMES, all_stages, get, run_shard
from tests.conftest import counter_frames

REPO = Path(__file__).resolve().parents[1]


class Item:
    def __init__(self, video_id):
        self.video_id = video_id


def work(item, error=None):
    if error is not None:
        raise error
    return item.video_id


# ---------------------------------------------------------------------------------------- failure policy


@pytest.mark.parametrize("error", [InputError("bad header"), VideoError("no video stream"),
                                   av.error.InvalidDataError(1094995529, "Invalid data"),
                                   av.error.FileNotFoundError(2, "No such file or directory")])
def test_input_errors_become_the_videos_failure(error):
    out = guarded("decode", work)(Item("v1"), error)
    assert isinstance(out, VideoFailure) and (out.video_id, out.stage) == ("v1", "decode")
    assert type(error).__name__ in out.error


@pytest.mark.parametrize("error", [TypeError("unsupported operand"), KeyError("frames"), AttributeError("x"),
                                   ValueError("operands could not be broadcast"), ZeroDivisionError(),
                                   OSError(28, "No space left on device"), PermissionError(13, "out/ denied")])
def test_a_bug_is_not_recorded_as_data(error):
    with pytest.raises(type(error)):
        guarded("decode", work)(Item("v1"), error)


def test_run_videos_policy(tmp_path):
    results = [VideoFailure("a", "decode", "InputError: bad"), "ok1", "ok2"]
    kept = []
    s = run_videos(iter(results), stage="decode", strict=False, keep=lambda r: kept.append(r) or 3,
                   upstream_failures=[{"video_id": "z", "stage": "x", "error": "e"}],
                   progress=False)
    assert kept == ["ok1", "ok2"] and (s["videos"], s["frames"]) == (2, 6)
    assert [f["video_id"] for f in s["failures"]] == ["z", "a"]         # upstream first, then this stage's
    with pytest.raises(StageError, match="decode: video a: InputError: bad"):
        run_videos(iter(results), stage="decode", strict=True, keep=lambda r: 1, progress=False)
    with pytest.raises(StageError, match=r"no video that could be processed \(1 failed: a \(decode\): InputError: bad\)"):
        run_videos(iter(results[:1]), stage="decode", strict=False, keep=lambda r: 1, progress=False)
    many = [VideoFailure(f"v{i}", "decode", "InputError: bad") for i in range(7)]
    with pytest.raises(StageError, match=r"7 failed: v0 .*v4 \(decode\): InputError: bad; and 2 more"):
        run_videos(iter(many), stage="decode", strict=False, keep=lambda r: 1, progress=False)


def _writer(path, **kw):
    return ShardWriter(path, dataset="t", modality="rgb", encoding="jpeg", shard=0, num_shards=1, classes=["a"],
                       manifest_sha256="0" * 64, params={}, streams=[Stream("rgb")], **kw)


def test_write_shard_with_a_side_output_leaves_nothing_on_error(tmp_path):
    from pipeline.media import jpeg
    blob = jpeg.encode(np.zeros((8, 8, 3), np.uint8))
    good = VideoResult("v", 0, "train", 25.0, 8, 8, {"rgb": [blob]}, side={"iframes": {"rgb": [blob, blob]}})

    def results():
        yield good
        raise TypeError("a bug in the stage")

    writers = {"shard": _writer(tmp_path / "shard-00000.h5"), "iframes": _writer(tmp_path / "shard-00000.iframes.h5")}
    with pytest.raises(TypeError):
        write_shard(writers, results(), stage="x", strict=False, progress=False)
    assert list(tmp_path.iterdir()) == []                              # no shard, no side file, no temporary
    writers = {"shard": _writer(tmp_path / "shard-00000.h5"), "iframes": _writer(tmp_path / "shard-00000.iframes.h5")}
    s = write_shard(writers, iter([good, VideoFailure("w", "x", "InputError: e")]), stage="x", strict=False,
                    progress=False)
    assert s["videos"] == 1 and s["failures"] == 1
    with ShardReader(tmp_path / "shard-00000.iframes.h5") as r:
        assert r.table()["num_frames"].tolist() == [2] and r.failures[0]["video_id"] == "w"
    assert json.loads((tmp_path / "shard-00000.failures.json").read_text())[0]["video_id"] == "w"


# -------------------------------------------------------------------------------------------- a real stage


def toy(tmp_path):
    root = tmp_path / "videos"
    write_video(root / "c0" / "v0.mkv", counter_frames(6), 25, "ffv1")
    write_video(root / "c1" / "v1.mkv", counter_frames(4), 25, "ffv1")
    (root / "c1" / "bad.mkv").write_bytes(b"\x1aE\xdf\xa3" + bytes(300))         # a Matroska header, nothing else
    m = make_manifest("toy", "csv", root, ["c0", "c1"], [("v0", "c0/v0.mkv", "c0", "train"),
                                                        ("v1", "c1/v1.mkv", "c1", "test"),
                                                        ("bad", "c1/bad.mkv", "c1", "test")])
    m.write(tmp_path / "toy.tsv")
    s = resolve({"results": str(tmp_path / "results"), "dataset": "toy",
                 "datasets": {"toy": {"format": "csv", "root": str(root)}}, "decode": {"short_side": 32}})
    return s, read_manifest(tmp_path / "toy.tsv")


def test_a_bug_in_a_stage_stops_it_and_a_bad_video_does_not(tmp_path, monkeypatch):
    s, m = toy(tmp_path)
    out = tmp_path / "results" / "decode" / "toy"
    summary = run_shard("decode", s, 0, manifest=m, progress=False)
    assert (summary["videos"], summary["failures"]) == (2, 1)
    report = json.loads((out / "shard-00000.failures.json").read_text())
    assert report[0]["video_id"] == "bad" and report[0]["stage"] == "decode"
    shutil.rmtree(out)
    import pipeline.steps.decode as decode

    def buggy(entry, *args):
        return None + 1                                                     # a TypeError in our own code

    monkeypatch.setattr(decode, "decode_entry", buggy)
    with pytest.raises(TypeError):
        run_shard("decode", s, 0, manifest=m, progress=False)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_bug_gives_a_traceback_on_the_command_line(tmp_path):
    """prep-cli as a Snakemake rule runs it: a user error is one line (exit 2), a bug a traceback (exit 1)."""
    s, m = toy(tmp_path)
    code = ("import sys, pipeline.steps.decode as d\n"
            "d.decode_entry = lambda *a: None + 1\n"
            "from pipeline.cli import main\n"
            f"sys.argv = ['prep-cli', 'decode', '--manifest', {str(tmp_path / 'toy.tsv')!r}, '--no-progress']\n"
            "main()\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" in run.stderr and "TypeError" in run.stderr
    assert not list((tmp_path / "results" / "decode").rglob("*.h5"))
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "decode", "--manifest", str(tmp_path / "toy.tsv"),
                          "--shard", "4"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "out of range" in run.stderr and "Traceback" not in run.stderr


def test_provenance_every_output_records_everything_upstream(tmp_path):
    s, m = toy(tmp_path)
    run_shard("decode", s, 0, manifest=m, progress=False)
    run_shard("resframe", s, 0, manifest=m, progress=False)
    with ShardReader(tmp_path / "results" / "decode" / "toy" / "shard-00000.h5") as r:
        rgb = r.params
    with ShardReader(tmp_path / "results" / "resframe" / "toy" / "shard-00000.h5") as r:
        res = r.params
        assert r.failures[0]["video_id"] == "bad" and r.failures[0]["stage"] == "decode"
    assert set(rgb) == {"decode", "dataset", "videos_per_shard"} and rgb["decode"]["short_side"] == 32
    assert rgb["dataset"] == {"name": "toy", "format": "csv", "root": str(tmp_path / "videos"), "splits": None,
                              "split": 1}
    assert {k: v for k, v in res.items() if k != "resframe"} == rgb and res["resframe"]["size"] == [170, 128]
    job = shard_job(get("extract_mv"), s, 0, manifest=m)
    merged = job.params({"reencode": {"gop": 12}, "extract_mv": {"old": 1}})
    assert merged["reencode"] == {"gop": 12} and merged["extract_mv"]["old"] == 1
    assert merged["extract_mv"]["mv_bound"] == 20.0


# -------------------------------------------------------------------------------- one name, one CLI shape


def test_one_name_per_stage_everywhere():
    assert [st.name for st in all_stages()] == list(NAMES)
    commands = set(cli.commands)
    for st in all_stages():
        rule = (REPO / "stages" / f"{st.name}.smk").read_text()
        assert f"rule {st.name}:" in rule or f"checkpoint {st.name}:" in rule, st.name
        assert (REPO / "pipeline" / "steps" / f"{st.name}.py").exists()
        assert st.command == st.name.replace("_", "-") and st.command in commands
        if st.per_shard:
            assert f'stage_outputs("{st.name}")' in rule and f'stage_log("{st.name}")' in rule
            assert set(st.writes) <= set(paths.OUTPUT_PATTERNS) and "failures" in st.writes
        assert st.upstream is None or st.upstream in NAMES


def test_every_stage_command_has_the_same_shape():
    common = {"--config", "--dataset", "--root", "--splits", "--split"}
    per_shard = {"--manifest", "--shard", "--out", "--strict", "--progress"}
    for st in all_stages():
        flags = {o for p in cli.commands[st.command].params for o in p.opts}
        assert common <= flags, st.name
        if st.per_shard:
            assert per_shard <= flags, st.name
            assert ("--input" in flags) == (st.upstream is not None), st.name


def test_cli_reference_is_generated_from_the_commands():
    """docs/cli.md is the output of docs/make_cli_reference.py (regenerate it when a command changes)."""
    run = subprocess.run([sys.executable, str(REPO / "docs" / "make_cli_reference.py")], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (REPO / "docs" / "cli.md").read_text(), "regenerate docs/cli.md"


# ------------------------------------------------------------------------------ settings follow the data


def ucf_tree(tmp_path):
    """A UCF101 layout with two real 320x240 videos."""
    root, lists = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 YoYo\n")
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n")
    (lists / "testlist01.txt").write_text("YoYo/v_YoYo_g01_c01.avi\n")
    for rel in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "YoYo/v_YoYo_g01_c01.avi"):
        write_video(root / rel, counter_frames(3, 240, 320), 25, "ffv1")
    return root, lists


def prep(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def checkout(tmp_path):
    """A folder with the repository's config (default dataset: the demo, short side 48, 48x48 re-encode)."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    return tmp_path


def test_a_manifest_brings_its_datasets_settings(checkout):
    root, lists = ucf_tree(checkout)
    run = prep(checkout, "manifest", "--dataset", "ucf101", "--root", str(root), "--splits", str(lists),
               "--out", "m/ucf.tsv")
    assert run.returncode == 0, run.stderr
    run = prep(checkout, "decode", "--manifest", "m/ucf.tsv", "--no-progress")  # no --dataset: not the demo's
    assert run.returncode == 0, run.stderr
    with ShardReader(checkout / "results" / "decode" / "ucf101" / "shard-00000.h5") as r:
        t = r.table()
        assert (t["width"].tolist(), t["height"].tolist()) == ([342, 342], [256, 256])     # short side 256
        assert r.params["decode"]["short_side"] == 256 and r.params["dataset"]["format"] == "ucf101"
    run = prep(checkout, "decode", "--manifest", "m/ucf.tsv", "--dataset", "demo")
    assert run.returncode == 2 and "--dataset 'demo' does not match manifest m/ucf.tsv" in run.stderr


def test_single_file_reencode_ignores_the_demos_overrides(checkout):
    src = write_video(checkout / "in.mkv", counter_frames(5, 48, 64), 25, "ffv1")
    run = prep(checkout, "reencode", str(src), str(checkout / "out.avi"))
    assert run.returncode == 0, run.stderr
    assert "340x256" in run.stdout
    with av.open(str(checkout / "out.avi")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (340, 256)
    run = prep(checkout, "reencode", "--dataset", "demo", str(src), str(checkout / "demo.avi"))
    assert run.returncode == 0 and "48x48" in run.stdout                     # asked for: the demo's


def test_a_builtin_format_needs_no_config_file(tmp_path):
    root, lists = ucf_tree(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    ds = ["--dataset", "ucf101", "--root", str(root), "--splits", str(lists)]
    run = prep(work, "manifest", *ds)
    assert run.returncode == 0, run.stderr
    assert "ucf101 (ucf101): 2 videos (train 1, test 1), 2 classes -> manifests/ucf101.tsv" in run.stdout
    run = prep(work, "decode", *ds, "--no-progress")
    assert run.returncode == 0, run.stderr
    run = prep(work, "extract-flow", *ds, "--no-progress", "--nscales", "1", "--warps", "1",
               "--outer-iterations", "1", "--inner-iterations", "2")
    assert run.returncode == 0, run.stderr
    assert "2 videos, 4 frames, 0 failed" in run.stdout
    with ShardReader(work / "results" / "extract_flow" / "ucf101" / "shard-00000.h5") as r:
        assert r.table()["height"].tolist() == [256, 256] and r.params["extract_flow"]["nscales"] == 1
    run = prep(work, "decode", "--dataset", "hmdb51", "--no-progress")
    assert run.returncode == 2 and "give --root" in run.stderr


def test_unknown_dataset_without_manifest_or_root_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="'nosuch' is not in the config"):
        from pipeline.core.resolve import settings_for
        settings_for(None, "nosuch")


def test_make_demo_never_writes_into_a_real_dataset(checkout):
    cfg = (checkout / "config" / "config.yaml").read_text().replace("dataset: demo ", "dataset: ucf101 ", 1)
    (checkout / "config" / "config.yaml").write_text(cfg)
    run = prep(checkout, "make-demo")
    assert run.returncode == 2 and "dataset 'ucf101' has format 'ucf101'" in run.stderr
    run = prep(checkout, "make-demo", "--dataset", "demo")
    assert run.returncode == 0 and (checkout / "results" / "make_demo" / "demo" / "true_flow.h5").exists()


def test_a_failing_main_shard_takes_its_side_outputs_with_it(tmp_path, monkeypatch):
    from pipeline.media import jpeg
    blob = jpeg.encode(np.zeros((8, 8, 3), np.uint8))
    good = VideoResult("v", 0, "train", 25.0, 8, 8, {"rgb": [blob]}, side={"iframes": {"rgb": [blob]}})
    (tmp_path / "shard-00000.h5").write_bytes(b"an older main shard")
    writers = {"shard": _writer(tmp_path / "shard-00000.h5"), "iframes": _writer(tmp_path / "shard-00000.iframes.h5")}

    def full_disk():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers["shard"], "close", full_disk)
    with pytest.raises(OSError):
        write_shard(writers, iter([good]), stage="x", strict=False, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []    # neither the new I-frames nor the old shard


def test_upstream_shards_alone_keep_their_own_dataset(checkout):
    """`extract-flow --input DIR` on shards without a manifest (imported ones) in a folder whose config
    and manifests are the demo's: the shards' dataset is used, never the demo's manifest or overrides."""
    s, m = toy(checkout / "data")
    run_shard("decode", s, 0, manifest=m, out_dir=checkout / "imported" / "rgb", progress=False)
    (checkout / "manifests").mkdir()
    shutil.copy(checkout / "data" / "toy.tsv", checkout / "manifests" / "demo.tsv")   # a stray demo manifest
    run = prep(checkout, "resframe", "--input", "imported/rgb", "--out", "imported/resframe", "--no-progress")
    assert run.returncode == 0, run.stderr
    with ShardReader(checkout / "imported" / "resframe" / "shard-00000.h5") as r:
        assert r.attrs["dataset"] == "toy" and r.file["frames/resframe"].shape[1:] == (128, 170, 3)  # no demo 48
        assert r.params["decode"]["short_side"] == 32 and r.failures[0]["video_id"] == "bad"
