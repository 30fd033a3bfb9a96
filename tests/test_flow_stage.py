"""The extract_flow stage: flow shard contents, alignment with the RGB shard, failures, CLI, export, pictures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.media import jpeg
from pipeline.cli import cli
from pipeline.core.config import ExtractFlowConfig
from pipeline.layouts.rawframes import export_rawframes, rawframes_list_lines
from pipeline.core.config import ConfigError, resolve
from pipeline.steps.contract import StageError
from pipeline.steps import run_shard
from pipeline.steps.extract_flow import split_shards
from pipeline.flow import dequantize
from pipeline.core.manifest import make_manifest
from pipeline.shards import ShardError, ShardReader, ShardWriter, Stream, verify
from pipeline.report.pictures import default_rgb_path, visualize_video

H, W = 40, 48
SHIFT = 2.0  # px per frame to the right


def moving_frames(n: int, seed: int) -> list[np.ndarray]:
    """RGB frames of a smooth texture moving SHIFT px right per frame (integer shift: exact content)."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((H, W + 2 * n + 8, 3)).astype(np.float32), (0, 0), 2.0)
    big = ((big - big.min()) / (big.max() - big.min()) * 255).astype(np.uint8)
    return [np.ascontiguousarray(big[:, 8 + int(n * SHIFT) - int(i * SHIFT):][:, :W]) for i in range(n)]


def write_rgb_shard(path: Path, lengths: dict[str, int], sha: str = "ab" * 32) -> Path:
    with ShardWriter(path, dataset="toy", modality="rgb", encoding="jpeg", shard=0, num_shards=1,
                     classes=["a", "b"], manifest_sha256=sha, params={"decode": {"fps": 25.0}},
                     streams=[Stream("rgb")]) as wr:
        for k, (vid, n) in enumerate(lengths.items()):
            frames = [jpeg.encode(f, 98) for f in moving_frames(n, k)]
            wr.add_video(vid, k % 2, "train", 25.0, H, W, {"rgb": frames})
        wr.add_failure("broken", "decode", "ValueError: cannot open")
    return path


VIDEOS = {"v_move": 4, "v_single": 1, "v_short": 2}


def run_extract_flow(rgb: Path, out: Path, cfg: ExtractFlowConfig, **kw) -> dict:
    """The stage on one RGB shard (no manifest: the shard's own attributes) into ``out``'s folder."""
    return run_shard("extract_flow", resolve({}), 0, input_dir=Path(rgb).parent, out_dir=Path(out).parent,
                     config=cfg, progress=False, **kw)
FAST = dict(nscales=3, warps=3, outer_iterations=4)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow_stage")
    rgb = write_rgb_shard(root / "decode" / "toy" / "shard-00000.h5", VIDEOS)
    out = {}
    for backend in ("opencv", "torch"):
        cfg = ExtractFlowConfig(backend=backend, batch_size=2, workers=1, **FAST)
        path = root / backend / "extract_flow" / "toy" / "shard-00000.h5"
        out[backend] = (path, run_extract_flow(rgb, path, cfg))
    return rgb, out


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_flow_shard_aligned_with_rgb(shards, backend):
    rgb, out = shards
    path, summary = out[backend]
    assert summary["videos"] == 2 and summary["frames"] == 3 + 1 and summary["failures"] == 2
    assert verify(path) == []
    with ShardReader(rgb) as r, ShardReader(path) as f:
        assert f.attrs["modality"] == "flow" and f.attrs["encoding"] == "jpeg"
        assert f.attrs["dataset"] == "toy" and f.attrs["manifest_sha256"] == "ab" * 32
        assert f.streams == ["x", "y"]
        rgb_ids = r.video_ids()
        ids = f.video_ids()
        assert ids == [v for v in rgb_ids if v != "v_single"]  # same order, the 1-frame video is dropped
        t_rgb, t = r.table(), f.table()
        for i, vid in enumerate(ids):
            j = rgb_ids.index(vid)
            assert t["num_frames"][i] == t_rgb["num_frames"][j] - 1
            assert (t["height"][i], t["width"][i], t["label"][i]) == (H, W, t_rgb["label"][j])
        for name in ("x", "y"):
            a = f.file["frames"][name].attrs
            assert a["color"] == "gray" and a["bound"] == 20.0 and a["rounding"] == "half_up"
            assert a["jpeg_quality"] == 95 and "127.5" in a["dequantize"]
        params = f.params
        assert params["decode"] == {"fps": 25.0}
        assert params["extract_flow"]["backend"] == backend and params["extract_flow"]["lambda"] == 0.15
        fails = {x["video_id"]: x for x in f.failures}
        assert fails["broken"]["stage"] == "decode"
        assert fails["v_single"]["stage"] == "extract_flow" and "at least 2" in fails["v_single"]["error"]
        report = json.loads(path.with_name("shard-00000.failures.json").read_text())
        assert {x["video_id"] for x in report} == {"broken", "v_single"}
        # flow values: content moves SHIFT px right per frame
        i = ids.index("v_move")
        fx = dequantize(f.decode(i, "x")[:, 8:-8, 8:-8])
        fy = dequantize(f.decode(i, "y")[:, 8:-8, 8:-8])
        assert np.median(fx) == pytest.approx(SHIFT, abs=0.2) and np.median(fy) == pytest.approx(0, abs=0.2)


def test_backends_agree_on_the_shard(shards):
    _, out = shards
    with ShardReader(out["opencv"][0]) as a, ShardReader(out["torch"][0]) as b:
        for i in range(len(a)):
            for s in ("x", "y"):
                qa, qb = a.decode(i, s).astype(int), b.decode(i, s).astype(int)
                assert (np.abs(qa - qb) <= 1).mean() > 0.95


def test_missing_or_wrong_input(tmp_path, shards):
    with pytest.raises(StageError, match="shard-00000.h5 is missing; run `prep-cli decode` first"):
        run_extract_flow(tmp_path / "shard-00000.h5", tmp_path / "out" / "shard-00000.h5", ExtractFlowConfig())
    _, out = shards
    with pytest.raises(ShardError, match="is not an 'rgb' shard"):
        run_extract_flow(out["opencv"][0], tmp_path / "out" / "shard-00000.h5", ExtractFlowConfig())


def test_cli_extract_flow_one_shard(tmp_path, monkeypatch):
    m = make_manifest("toy", "csv", "/videos", ["a", "b"],
                      [(v, f"{v}.mp4", "a", "train") for v in [*VIDEOS, "broken"]])
    m.write(tmp_path / "toy.tsv")
    from pipeline.core.manifest import read_manifest
    sha = read_manifest(tmp_path / "toy.tsv").sha256
    rgb = write_rgb_shard(tmp_path / "rgb" / "shard-00000.h5", VIDEOS, sha)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["extract-flow", "--manifest", str(tmp_path / "toy.tsv"), "--shard", "0",
                                   "--input", str(rgb.parent), "--out", str(tmp_path / "out"), "--no-progress",
                                   "--workers", "2", "--nscales", "2", "--warps", "2", "--outer-iterations", "2",
                                   "--bound", "10", "--jpeg-quality", "90", "--lambda", "0.2"])
    assert res.exit_code == 0, res.output
    assert "2 videos" in res.output and "cpu" in res.output
    with ShardReader(tmp_path / "out" / "shard-00000.h5") as f:
        assert f.params["extract_flow"]["lambda"] == 0.2 and f.params["extract_flow"]["nscales"] == 2
        assert f.file["frames/x"].attrs["bound"] == 10.0 and f.file["frames/x"].attrs["jpeg_quality"] == 90
        assert f.attrs["manifest_sha256"] == sha
    bad = CliRunner().invoke(cli, ["extract-flow", "--manifest", str(tmp_path / "toy.tsv"), "--shard", "0",
                                   "--input", str(rgb.parent), "--out", str(tmp_path / "o2"),
                                   "--median-filtering", "4"])
    assert isinstance(bad.exception, ConfigError)
    assert "'extract_flow.median_filtering': 4 is not allowed; allowed values: [1, 3, 5]" in str(bad.exception)
    assert not (tmp_path / "o2").exists()


def test_an_upstream_shard_of_another_manifest_is_refused(tmp_path, shards):
    rgb, _ = shards                     # written with manifest_sha256 "ab" * 32
    m = make_manifest("toy", "csv", "/videos", ["a", "b"], [(v, f"{v}.mp4", "a", "train") for v in VIDEOS])
    m.write(tmp_path / "toy.tsv")
    res = CliRunner().invoke(cli, ["extract-flow", "--manifest", str(tmp_path / "toy.tsv"), "--input",
                                   str(rgb.parent), "--out", str(tmp_path / "out"), "--no-progress"])
    assert isinstance(res.exception, ShardError)
    assert "does not belong to shard 0 of manifest toy: manifest_sha256 'abab" in str(res.exception)
    assert "rerun `prep-cli decode`" in str(res.exception)
    assert not (tmp_path / "out").exists()


def test_export_rawframes_naming(tmp_path, shards):
    rgb, out = shards
    flow_path = out["opencv"][0]
    done = export_rawframes(flow_path, tmp_path / "flow")
    assert [e.video_id for e in done] == ["v_move", "v_short"]
    move = next(e for e in done if e.video_id == "v_move")
    names = sorted(p.name for p in move.frame_dir.iterdir())
    assert names == [f"flow_{c}_{i:05d}.jpg" for c in "xy" for i in (1, 2, 3)]
    with ShardReader(flow_path) as f:
        i = f.video_ids().index("v_move")
        assert (move.frame_dir / "flow_x_00001.jpg").read_bytes() == bytes(f.raw(i, "x")[0])
        assert (move.frame_dir / "flow_y_00003.jpg").read_bytes() == bytes(f.raw(i, "y")[2])
    img = export_rawframes(rgb, tmp_path / "rgb", videos=["v_move"])
    assert sorted(p.name for p in img[0].frame_dir.iterdir()) == [f"img_{i:05d}.jpg" for i in (1, 2, 3, 4)]
    assert rawframes_list_lines(img, tmp_path / "rgb") == ["v_move 4 0"]
    with pytest.raises(ShardError, match="not in"):
        export_rawframes(rgb, tmp_path / "rgb", videos=["nope"])


def test_visualize_flow(tmp_path, shards):
    rgb, out = shards
    flow_path = out["torch"][0]
    paths = visualize_video(flow_path, tmp_path / "vis", "v_move", rgb_path=rgb)
    assert [p.name for p in paths] == ["color_00001.png", "color_00002.png", "color_00003.png", "strip.png"]
    strip = cv2.imread(str(paths[-1]))
    assert strip.shape == (3 * H + 2 * 4, 4 * W + 3 * 4, 3)
    res = CliRunner().invoke(cli, ["visualize-flow", str(flow_path), "--video", "1", "--rgb", str(rgb),
                                   "--out", str(tmp_path / "v2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "v2" / "strip.png").exists()
    assert default_rgb_path(Path("results/extract_flow/ucf101/shard-00003.h5")) == \
        Path("results/decode/ucf101/shard-00003.h5")


def test_split_shards_over_gpus():
    assert split_shards([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert split_shards([7], 4) == [[7]]
    assert split_shards([0, 1], 1) == [[0, 1]]


def test_missing_cuda_is_a_clear_stage_error(tmp_path, shards):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    rgb, _ = shards
    with pytest.raises(StageError, match="extract_flow.*cuda"):
        run_extract_flow(rgb, tmp_path / "o.h5", ExtractFlowConfig(backend="torch", device="cuda"))
    assert list(tmp_path.iterdir()) == []  # no shard, no temporary file
