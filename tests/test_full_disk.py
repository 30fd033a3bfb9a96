"""A full disk (a real small tmpfs): a clear error naming the file, no half-written file, the space given back.

Covered: a shard (decode through `prep-cli`, so a crash of HDF5 on the failed flush would show as a bad
exit status), a failure report, a checkpoint (an older one stays intact), an evaluation score file, a report
figure and the report's text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.atomic import DiskFullError, write_text_atomic
from pipeline.core.manifest import make_manifest
from pipeline.media.videoio import write_video
from pipeline.shards import verify
from pipeline.steps.contract import write_report
from pipeline.train import checkpoint as ckpt
from tests.fs_fixtures import files_under, fill, free_kib, small_disk

REPO = Path(__file__).resolve().parents[1]


def _noise_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Three 64x48 noise videos (their JPEGs do not compress) and a config; returns (config, manifest)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "videos"
    rows = []
    for i in range(3):
        frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(10)]
        write_video(root / "c0" / f"n{i}.mkv", frames, 25, "ffv1")
        rows.append((f"n{i}", f"c0/n{i}.mkv", "c0", "train"))
    manifest = tmp_path / "toy.tsv"
    make_manifest("toy", "csv", root, ["c0"], rows).write(manifest)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"results": str(tmp_path / "results"), "videos_per_shard": 10, "dataset": "toy",
                                  "datasets": {"toy": {"format": "csv", "root": str(root)}},
                                  "decode": {"short_side": 48, "jpeg_quality": 95}}))
    return config, manifest


def _decode(config: Path, manifest: Path, out: Path) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).with_name("prep-cli")
    return subprocess.run([str(cli), "decode", "--config", str(config), "--manifest", str(manifest), "--shard", "0",
                           "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)


def test_a_shard_on_a_full_disk_fails_cleanly_and_gives_the_space_back(tmp_path):
    config, manifest = _noise_dataset(tmp_path)
    with small_disk(tmp_path / "disk", 1024) as disk:
        filler = fill(disk, leave_kib=48)          # the shard needs ~250 KiB
        before = free_kib(disk)
        out = disk / "decode" / "toy"
        run = _decode(config, manifest, out)
        assert run.returncode == 2, run.stderr[-2000:]            # a user error, not a crash or a traceback
        assert "Traceback" not in run.stderr
        assert "no space left on device writing" in run.stderr and "shard-00000.h5" in run.stderr
        assert "MiB free" in run.stderr
        assert files_under(disk) == ["filler.bin"]                  # no shard, no report, no temporary
        assert free_kib(disk) >= before - 8                         # the temporary's blocks were given back
        filler.unlink()
        run = _decode(config, manifest, out)                        # with space, the same command completes
        assert run.returncode == 0, run.stderr[-2000:]
        assert verify(out / "shard-00000.h5") == []
        assert json.loads((out / "shard-00000.failures.json").read_text()) == []


def test_a_failure_report_on_a_full_disk(tmp_path):
    with small_disk(tmp_path / "disk", 256) as disk:
        dest = disk / "shard-00000.failures.json"
        fill(disk, leave_kib=0)
        with pytest.raises(DiskFullError, match="shard-00000.failures.json"):
            write_report(dest, [{"video_id": f"v{i}", "stage": "decode", "error": "x" * 200} for i in range(200)])
        assert files_under(disk) == ["filler.bin"]


def test_a_checkpoint_on_a_full_disk_leaves_the_last_one_intact(tmp_path):
    with small_disk(tmp_path / "disk", 2048) as disk:
        dest = disk / "last.pt"
        ckpt.save(dest, {"epoch": 1, "model": {"w": torch.zeros(1000)}})
        old = dest.read_bytes()
        fill(disk, leave_kib=64)
        with pytest.raises(DiskFullError, match="last.pt"):
            ckpt.save(dest, {"epoch": 2, "model": {"w": torch.rand(200_000)}})     # 800 KB
        assert files_under(disk) == ["filler.bin", "last.pt"]
        assert dest.read_bytes() == old and ckpt.load(dest)["epoch"] == 1


def test_a_score_file_on_a_full_disk(tmp_path):
    # in a child process: HDF5's failed flush must not crash the interpreter at exit either
    code = f"""
import numpy as np
from pipeline.core.atomic import DiskFullError
from pipeline.evaluate.run import StreamResult, write_scores
r = StreamResult(name="rgb", input="rgb", video_ids=[f"v{{i}}" for i in range(5000)], labels=np.zeros(5000, np.int64),
                 scores=np.random.rand(5000, 101), static=None, model_seconds=np.zeros(5000), clips=1)
try:
    write_scores({str(tmp_path / 'disk' / 'scores.h5')!r}, [r], [f"c{{i}}" for i in range(101)])
except DiskFullError as exc:
    print("DISKFULL", exc)
"""
    with small_disk(tmp_path / "disk", 1024) as disk:
        fill(disk, leave_kib=64)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "DISKFULL no space left on device writing" in run.stdout and "scores.h5" in run.stdout
        assert files_under(disk) == ["filler.bin"]


def test_the_report_on_a_full_disk(tmp_path):
    from pipeline.report.report import _figure, _save
    with small_disk(tmp_path / "disk", 256) as disk:
        fill(disk, leave_kib=0)
        fig = _figure(8, 6)
        ax = fig.add_subplot()
        ax.imshow(np.random.rand(400, 400))
        with pytest.raises(DiskFullError, match="accuracy.png"):
            _save(fig, disk / "accuracy.png")
        with pytest.raises(DiskFullError, match="report.md"):
            write_text_atomic(disk / "report.md", "# report\n" + "row\n" * 100_000)
        assert files_under(disk) == ["filler.bin"]


def test_reencode_on_a_full_disk_stops_instead_of_failing_every_video(tmp_path):
    # ffmpeg writes the MPEG-4 files: its 'No space left on device' is the disk's fault, not a bad video's
    config, manifest = _noise_dataset(tmp_path)
    cli = Path(sys.executable).with_name("prep-cli")
    with small_disk(tmp_path / "disk", 1024) as disk:
        fill(disk, leave_kib=16)
        out = disk / "reencode" / "toy"
        run = subprocess.run([str(cli), "reencode", "--config", str(config), "--manifest", str(manifest),
                              "--shard", "0", "--out", str(out), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 2, run.stderr[-2000:]
        assert "no space left on device writing" in run.stderr and ".avi" in run.stderr
        assert "Traceback" not in run.stderr
        assert [f for f in files_under(disk) if f != "filler.bin"] == []
