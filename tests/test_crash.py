"""Crash safety for real: stages and training killed with SIGKILL at chosen points (MOTIONPREP_FAULT).

After each kill: nothing unfinished sits at a final path; the rerun (the same command, as Snakemake or a
resubmitted cluster job runs it) removes the dead run's temporaries, completes, and gives shards that verify
and equal, byte for byte, those of a run never interrupted. Training killed mid-epoch resumes from its last
checkpoint and ends with the same weights. Shards are also the same bytes whatever the worker count.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.core.manifest import make_manifest
from pipeline.media.videoio import write_video
from pipeline.shards import verify
from pipeline.train import checkpoint as ckpt
from tests.conftest import counter_frames

CLI = str(Path(sys.executable).with_name("prep-cli"))
DS = "toy"


def _write_dataset(base: Path) -> None:
    """Six 32x32 lossless videos of 16 frames, two classes, and a config for prep-cli (one shard)."""
    root = base / "videos"
    rows = []
    for i in range(6):
        c = f"c{i % 2}"
        frames = [f[:32, :32].copy() for f in counter_frames(16)]
        for t, f in enumerate(frames):          # something moves, so TV-L1 has flow to find
            f[8:16, (2 * t + 3 * i) % 24:(2 * t + 3 * i) % 24 + 8] = 255
        write_video(root / c / f"v{i}.mkv", frames, 25, "ffv1")
        rows.append((f"v{i}", f"{c}/v{i}.mkv", c, "train" if i < 4 else "test"))
    make_manifest(DS, "csv", root, ["c0", "c1"], rows).write(base / "toy.tsv")
    (base / "config.yaml").write_text(json.dumps({
        "results": str(base / "results"), "videos_per_shard": 10, "dataset": DS,
        "datasets": {DS: {"format": "csv", "root": str(root)}},
        "decode": {"short_side": 32}, "reencode": {"size": [32, 32]},
        "clips": {"length": 4, "crop": 24, "flip": False},
        "train": {"arch": "resnet3d-18", "width": 4, "layers": [1, 1, 1, 1], "epochs": 3, "batch_size": 2,
                  "lr": 0.01, "workers": 0, "val_fraction": 0.0}}))


UPSTREAM = {"extract_flow": "decode", "resframe": "decode", "extract_mv": "reencode"}


def _stage(base: Path, stage: str, fault: str | None = None, workers: int | None = None) -> subprocess.CompletedProcess:
    out = base / "results" / stage / DS
    cmd = [CLI, stage.replace("_", "-"), "--config", str(base / "config.yaml"), "--manifest", str(base / "toy.tsv"),
           "--shard", "0", "--out", str(out), "--no-progress"]
    if stage in UPSTREAM:
        cmd += ["--input", str(base / "results" / UPSTREAM[stage] / DS)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "MOTIONPREP_FAULT"}
    if fault:
        env["MOTIONPREP_FAULT"] = fault
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), temporaries included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One folder for every run of this module (a shard records its dataset's root, so byte equality needs
    the same paths): the dataset, and a run never interrupted of every data stage, kept in ``reference/``."""
    base = tmp_path_factory.mktemp("work")
    _write_dataset(base)
    for stage in ("decode", "extract_flow", "resframe", "reencode", "extract_mv"):
        run = _stage(base, stage)
        assert run.returncode == 0, (stage, run.stderr[-2000:])
    (base / "results").rename(base / "reference")
    return base


def _fresh(base: Path, *upstream: str) -> None:
    """An empty results folder holding the reference's outputs of the ``upstream`` stages."""
    shutil.rmtree(base / "results", ignore_errors=True)
    for stage in upstream:
        shutil.copytree(base / "reference" / stage, base / "results" / stage)


# (stage, kill point, how many final files exist after the kill: those finished before it; None: not checked)
KILLS = [
    ("decode", "shard.video@1", 0),                       # first video appended
    ("decode", "shard.video@4", 0),                       # mid-shard
    ("decode", "shard.close", None),                      # every video appended and the report written, table not
    ("decode", "atomic.before_rename@1", 0),              # the failure report complete, not renamed
    ("decode", "atomic.before_rename@2", None),           # the shard complete under its temporary name
    ("extract_flow", "shard.video@3", 0),
    ("extract_flow", "atomic.before_rename@2", None),
    ("resframe", "shard.video@2", 0),
    ("reencode", "atomic.before_rename@3", 2),            # the third MPEG-4 file complete, two renamed
    ("reencode", "atomic.before_rename@7", None),          # the GOP index, every file done
    ("extract_mv", "shard.video@2", 0),
    ("extract_mv", "atomic.before_rename@1", 0),          # the I-frame side output complete
    ("extract_mv", "atomic.before_rename@3", None),        # I-frames and report renamed, main shard complete
]


@pytest.mark.parametrize("stage,point,left", KILLS, ids=[f"{s}-{p}" for s, p, _ in KILLS])
def test_a_stage_killed_anywhere_leaves_nothing_unfinished_and_reruns_to_the_same_bytes(
        work, stage, point, left):
    _fresh(work, *([UPSTREAM[stage]] if stage in UPSTREAM else []))
    out = work / "results" / stage / DS
    run = _stage(work, stage, fault=point)
    assert run.returncode == -signal.SIGKILL, (run.returncode, run.stderr[-2000:])
    after = _files(out) if out.exists() else {}
    finals = sorted(k for k in after if not Path(k).name.startswith("."))
    temporaries = [k for k in after if Path(k).name.startswith(".")]
    assert temporaries, "the kill left no temporary: it did not happen mid-write"
    # no main output (the shard; reencode's done-marker), which is renamed last: the job is not done
    assert "shard-00000.h5" not in finals and "shard-00000.done.json" not in finals, finals
    if left is not None:
        assert len(finals) == left and all(k.endswith(".avi") for k in finals), finals
    run = _stage(work, stage)
    assert run.returncode == 0, run.stderr[-2000:]
    got, want = _files(out), _files(work / "reference" / stage / DS)
    assert not [k for k in got if Path(k).name.startswith(".")], "a dead run's temporary was left"
    assert sorted(got) == sorted(want)
    for name in got:
        if name.endswith(".h5"):
            assert verify(out / name, decode_jpeg=False) == [], name
        assert got[name] == want[name], f"{name} differs from the uninterrupted run's"


def test_shards_are_the_same_bytes_for_any_worker_count(work):
    _fresh(work)
    for stage in ("decode", "extract_flow", "reencode", "extract_mv"):
        run = _stage(work, stage, workers=2 if stage != "extract_mv" else None)
        assert run.returncode == 0, run.stderr[-2000:]
        assert _files(work / "results" / stage / DS) == _files(work / "reference" / stage / DS), stage


def _train(base: Path, fault: str | None = None, resume: bool = True, config: Path | None = None
           ) -> subprocess.CompletedProcess:
    cmd = [CLI, "train", "--config", str(config or base / "config.yaml"), "--dataset", DS, "--method", "flow", "--no-progress"]
    if resume:
        cmd.append("--resume")
    env = {k: v for k, v in os.environ.items() if k != "MOTIONPREP_FAULT"}
    if fault:
        env["MOTIONPREP_FAULT"] = fault
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def test_training_killed_mid_epoch_resumes_from_its_last_checkpoint(work):
    _fresh(work, "decode", "extract_flow")
    out = work / "results" / "train" / DS / "flow"
    assert _train(work).returncode == 0
    whole = ckpt.load(out / "model.pt")
    _fresh(work, "decode", "extract_flow")
    # 4 training videos, batches of 2: 2 steps an epoch; the 5th step is in the middle of epoch 3
    run = _train(work, fault="train.step@5")
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    assert not (out / "model.pt").exists()
    assert ckpt.load(out / "last.pt")["epoch"] == 1                # epochs 1 and 2 (0-based 0, 1) were saved
    run = _train(work)                                              # the same command again, as Snakemake runs it
    assert run.returncode == 0, run.stderr[-2000:]
    assert "resumed after epoch 2" in run.stdout
    again = ckpt.load(out / "model.pt")
    assert all(torch.equal(whole["model"][k], again["model"][k]) for k in whole["model"])
    assert [h["train_loss"] for h in whole["history"]] == [h["train_loss"] for h in again["history"]]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # the killed run's temporaries are gone


def test_a_checkpoint_of_other_settings_is_not_resumed(work, tmp_path):
    _fresh(work, "decode", "extract_flow")
    assert _train(work, fault="train.step@3").returncode == -signal.SIGKILL
    cfg = json.loads((work / "config.yaml").read_text())
    cfg["train"]["lr"] = 0.02                                     # the user changed a setting, then reran
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(cfg))
    run = _train(work, config=config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "resumed" not in run.stdout and "other settings" in run.stderr and "train.lr" in run.stderr
    log = [json.loads(x) for x in (work / "results" / "train" / DS / "flow" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_rerunning_the_workflow_after_killed_jobs_redoes_only_what_is_missing(tmp_path):
    """`snakemake` with every shard job of 4 videos killed after its 4th (shard 0: 4 videos, shard 1: 2),
    then the same `snakemake` again: only the killed jobs run, the finished outputs are not touched, every
    shard verifies."""
    from pipeline.core import paths
    from pipeline.steps import get as get_stage
    from tests.test_workflow import TINY, _snakemake
    (tmp_path / "config.yaml").write_text(TINY)
    stages = ("decode", "extract_flow", "reencode", "extract_mv", "resframe")
    targets = [f"results/{s}/demo/{paths.OUTPUT_PATTERNS[kind].format(shard=k)}"
               for s in stages for k in ("00000", "00001") for kind in get_stage(s).writes]
    os.environ["MOTIONPREP_FAULT"] = "shard.video@4"
    try:
        first = _snakemake(tmp_path, "--keep-going", *targets)
    finally:
        del os.environ["MOTIONPREP_FAULT"]
    assert first.returncode != 0
    done = {t: (tmp_path / t).stat().st_mtime_ns for t in targets if (tmp_path / t).exists()}
    assert sorted(done) == sorted(t for t in targets if "00001" in t), sorted(done)
    for t in targets:
        folder = (tmp_path / t).parent
        assert not [p for p in folder.glob(".shard-00001*")], "a finished job left a temporary"
    second = _snakemake(tmp_path, *targets)
    assert second.returncode == 0, second.stderr[-3000:]
    ran = re.findall(r"rule (\w+):\n(?:\s+\w+:.*\n)*?\s+wildcards: dataset=demo, shard=(\d+)", second.stderr)
    assert sorted(ran) == sorted((s, "00000") for s in stages), ran
    assert all((tmp_path / t).stat().st_mtime_ns == m for t, m in done.items())
    for t in targets:
        if t.endswith(".h5"):
            assert verify(tmp_path / t, decode_jpeg=False) == [], t
        assert not [p for p in (tmp_path / t).parent.rglob(".*.tmp")], "a dead run's temporary was left"


def test_a_task_run_in_the_stage_process_itself_never_watches_its_parent():
    # with a serial joblib backend the task runs in the stage's own process: it must not exit when the shell
    # that started it goes away (nohup), so no watchdog is started there
    import threading
    from pipeline.core.workers import in_worker
    assert in_worker(lambda x: x + 1)(1) == 2
    assert not [t for t in threading.enumerate() if t.name == "watch-parent"]
