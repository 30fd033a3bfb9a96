"""A real `snakemake --cores 2` run of the workflow on a tiny demo configuration in a temporary folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.shards import ShardReader, verify

REPO = Path(__file__).resolve().parents[1]
TINY = """
dataset: demo
datasets:
  demo:
    format: demo
    root: results/make_demo/demo
    videos_per_shard: 4
    overrides:
      decode: {short_side: 32}
      reencode: {size: [32, 32]}
      clips: {length: 4, crop: 24, flip: false}
      train: {arch: resnet3d-18, d3d_arch: resnet3d-18, hts_arch: resnet3d-18, iframe_arch: resnet2d-18, appearance_arch: resnet2d-18, spatial_arch: resnet2d-18, width: 4, layers: [1, 1, 1, 1], epochs: 4, mers_classifier_epochs: 1, batch_size: 2, lr: 0.01, workers: 0, dmc_adversarial_epochs: 1, hts_motionnet_epochs: 1, hts_motionnet_width: 4, hts_scales: 3}
make_demo: {classes: 2, train_per_class: 2, test_per_class: 1, frames: 8, width: 32, height: 32}
evaluate: {tvl1_pairs: 2, probe_steps: 5, probe_layers: [stem, layer4]}
extract_features: {workers: 0}
"""


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")
    if exe is None:
        pytest.skip("snakemake is not installed (pip install motionprep[test])")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([exe, "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml", "--cores", "2",
                           *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def test_snakemake_runs_the_workflow_on_a_tiny_demo(tmp_path):
    (tmp_path / "config.yaml").write_text(TINY)
    run = _snakemake(tmp_path, "all")
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = tmp_path / "manifests" / "demo.tsv"
    assert manifest.exists()
    shards = sorted((tmp_path / "results" / "decode" / "demo").glob("shard-*.h5"))
    assert [s.name for s in shards] == ["shard-00000.h5", "shard-00001.h5"]  # 6 videos, 4 per shard
    ids = []
    for s in shards:
        assert verify(s) == []
        with ShardReader(s) as r:
            ids += r.video_ids()
            assert r.attrs["num_shards"] == 2
            assert set(r.table()["num_frames"]) == {7}  # 8 frames at 30 fps -> 6.67 -> 7 at 25 fps
        assert json.loads(s.with_name(s.name.replace(".h5", ".failures.json")).read_text()) == []
    assert len(ids) == len(set(ids)) == 6
    assert (tmp_path / "logs" / "decode" / "demo" / "shard-00000.log").exists()
    # every shard kind, aligned: shard k of each modality holds the same videos in the same order
    # (extract_mv works on the re-encoded files of the same manifest entries; its I-frame file too)
    stages = {"extract_flow": "flow", "extract_mv": "mv", "resframe": "resframe"}
    for k, rgb in enumerate(shards):
        with ShardReader(rgb) as base:
            order = base.video_ids()
        outputs = [(stage, tmp_path / "results" / stage / "demo" / rgb.name) for stage in stages]
        outputs.append(("extract_mv", tmp_path / "results" / "extract_mv" / "demo" / f"shard-{k:05d}.iframes.h5"))
        for stage, other in outputs:
            assert verify(other) == [], other
            with ShardReader(other) as r:
                assert r.video_ids() == order, other
                assert r.attrs["shard"] == k and r.attrs["num_shards"] == 2
                # provenance: every output records the decode (or reencode) parameters it was made from
                assert "dataset" in r.params and "videos_per_shard" in r.params
                assert ("decode" if stage != "extract_mv" else "reencode") in r.params
            assert (tmp_path / "logs" / stage / "demo" / rgb.name.replace(".h5", ".log")).exists()
        with ShardReader(tmp_path / "results" / "extract_flow" / "demo" / rgb.name) as r:
            assert r.attrs["modality"] == "flow" and r.params["decode"]["short_side"] == 32
    # the demo's true flow: one (N-1, H, W, 2) array per video, N = its frames at 25 fps, and TV-L1 finds it
    import h5py
    import numpy as np

    from pipeline.flow import dequantize
    errors, zeros = [], []
    with h5py.File(tmp_path / "results" / "make_demo" / "demo" / "true_flow.h5", "r") as gt:
        assert gt.attrs["fps"] == 25.0 and len(gt) == 6
        for rgb in shards:
            flow = tmp_path / "results" / "extract_flow" / "demo" / rgb.name
            with ShardReader(rgb) as base, ShardReader(flow) as f:
                for i, vid in enumerate(f.video_ids()):
                    truth = gt[vid][()]
                    n = base.table()["num_frames"][base.video_ids().index(vid)]
                    assert truth.shape == (n - 1, 32, 32, 2) and truth.dtype == np.float32
                    est = np.stack([dequantize(f.decode(i, "x")), dequantize(f.decode(i, "y"))], axis=-1)
                    moving = np.linalg.norm(truth, axis=-1) > 0.5
                    errors.append(np.linalg.norm(est - truth, axis=-1)[moving].mean())
                    zeros.append(np.linalg.norm(truth, axis=-1)[moving].mean())
    assert np.mean(errors) < 0.6 * np.mean(zeros), (np.mean(errors), np.mean(zeros))
    # the training half: every method trained (students after their teacher), evaluated, reported
    from pipeline.train.checkpoint import load
    methods = ("flow", "rgb", "mers", "mars", "d3d", "resframe", "appearance", "iframe", "mv", "residual", "dmc",
               "spatial", "hidden", "hidden_e2e", "hidden_e2e_unsup")
    for m in methods:
        run_dir = tmp_path / "results" / "train" / "demo" / m
        ck = load(run_dir / "model.pt")
        assert ck["method"] == m and ck["classes"] == ["translate_right", "translate_left"]
        split = json.loads((run_dir / "split.json").read_text())
        assert len(split["train"]) == 2 and len(split["val"]) == 2          # one of each class held out
        log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        assert len(log) == {"dmc": 6, "hidden": 5}.get(m, 4)      # MERS: one joint phase, as MARS's code
        if m == "mers":
            assert {e["phase"] for e in log} == {"main"} and all("train_ce" in e for e in log)
        assert (tmp_path / "logs" / "train" / "demo" / f"{m}.log").exists()
    metrics = json.loads((tmp_path / "results" / "evaluate" / "demo" / "metrics.json").read_text())
    assert set(metrics["streams"]) == set(methods)
    assert all(v["videos"] == 2 for v in metrics["streams"].values())     # the test split: one per class
    assert metrics["streams"]["flow"]["flow_seconds_per_video"] > 0 == metrics["streams"]["rgb"]["flow_seconds_per_video"]
    assert "mars+rgb" in metrics["fusions"] and "iframe:2+residual+dmc" in metrics["fusions"]
    assert metrics["fusions"]["iframe:2+residual+dmc"]["weights"] == [2.0, 1.0, 1.0]     # DMC-Net's fusion
    assert metrics["fusions"]["spatial+hidden:1.5"]["weights"] == [1.0, 1.5]     # Hidden Two-Stream's
    assert metrics["motion"]["dmc"]["epe_zero_tvl1"] > 0 and "epe_dmc_true" in metrics["motion"]["dmc"]
    assert "epe_motionnet_true" in metrics["motion"]["hidden_e2e"]
    assert set(metrics["probe"]["networks"]) == {"rgb", "mars", "d3d"}
    assert set(metrics["probe"]["networks"]["mars"]) == {"stem", "layer4"}
    report = (tmp_path / "results" / "report" / "demo" / "report.md").read_text()
    assert "| MARS |" in report and "accuracy_vs_time.png" in report and "## Learned motion" in report
    assert "probe_epe.png" in report
    # the features of MARS and of the flow teacher, aligned with the other shards, and their linear probes
    for name in ("mars", "flow"):
        for k, rgb in enumerate(shards):
            feat = tmp_path / "results" / "extract_features" / "demo" / name / rgb.name
            assert verify(feat) == [], feat
            with ShardReader(rgb) as base, ShardReader(feat) as r:
                assert r.video_ids() == base.video_ids() and r.attrs["modality"] == "feature"
                assert r.attrs["extract_features.trained_method"] == name and "decode" in r.params
                assert r.table()["num_frames"].tolist() == [1] * len(r)        # 7 frames: one clip of 4
            assert (tmp_path / "logs" / "extract_features" / "demo" / name / rgb.name.replace(".h5", ".log")).exists()
        probe = json.loads((tmp_path / "results" / "train" / "demo" / f"linear_{name}" / "metrics.json").read_text())
        assert probe["feature_set"] == name and probe["test_videos"] == 2 and 0 <= probe["top1"] <= 1
    assert "## Linear probe" in report and "| mars | MARS |" in report and "| flow | Flow |" in report
    # a second run has nothing to do: every output is up to date
    again = _snakemake(tmp_path, "all", "--dry-run")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # another evaluate setting reruns evaluate and what reads it, not the flow, the training, the features
    (tmp_path / "config.yaml").write_text(TINY.replace("probe_steps: 5", "probe_steps: 6"))
    changed = _snakemake(tmp_path, "all", "--dry-run")
    assert changed.returncode == 0, changed.stderr[-2000:]
    rules = set(re.findall(r"^\s*(?:local)?rule (\w+):", changed.stdout + changed.stderr, re.M))
    assert rules == {"evaluate", "report", "all"}, rules


def test_snakemake_refuses_an_invalid_config(tmp_path):
    (tmp_path / "config.yaml").write_text(TINY + "decode: {interpolation: nearest}\n")
    run = _snakemake(tmp_path, "all", "--dry-run")
    assert run.returncode != 0
    assert "interpolation" in run.stdout + run.stderr
