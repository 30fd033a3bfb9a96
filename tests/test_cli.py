"""prep-cli as a user runs it: make-demo -> manifest -> decode -> shards inspect/verify, and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TINY = """
dataset: demo
datasets:
  demo: {format: demo, root: data/demo, videos_per_shard: 3, overrides: {decode: {short_side: 32}}}
make_demo: {classes: 2, train_per_class: 1, test_per_class: 1, frames: 6, width: 32, height: 32}
"""


def prep(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(TINY)  # picked up as the default config
    return tmp_path


def test_cli_chain_and_verify_exit_codes(project):
    assert prep(project, "make-demo").returncode == 0
    run = prep(project, "manifest", "--dataset", "demo")
    assert run.returncode == 0, run.stderr
    assert (project / "manifests" / "demo.tsv").exists()
    run = prep(project, "decode", "--dataset", "demo", "--no-progress")
    assert run.returncode == 0, run.stderr
    shards = sorted((project / "results" / "decode" / "demo").glob("shard-*.h5"))
    assert len(shards) == 2  # 4 videos, 3 per shard
    run = prep(project, "shards", "verify", *map(str, shards))
    assert run.returncode == 0 and run.stdout.count("ok ") == 2
    run = prep(project, "shards", "inspect", str(shards[0]))
    assert run.returncode == 0 and "modality rgb" in run.stdout and "decode:" in run.stdout
    shards[1].write_bytes(shards[1].read_bytes()[:4000])  # truncated file
    run = prep(project, "shards", "verify", *map(str, shards))
    assert run.returncode == 1 and "FAIL" in run.stdout


def test_cli_errors_are_one_line_and_name_the_problem(project):
    run = prep(project, "decode", "--dataset", "demo")
    assert run.returncode == 2 and "prep-cli manifest" in run.stderr and "Traceback" not in run.stderr
    prep(project, "make-demo")
    prep(project, "manifest", "--dataset", "demo")
    run = prep(project, "decode", "--dataset", "demo", "--shard", "7")
    assert run.returncode == 2 and "out of range" in run.stderr
    run = prep(project, "decode", "--dataset", "nosuch")
    assert run.returncode == 2 and "'nosuch' is not in the config" in run.stderr and "ucf101" in run.stderr
    (project / "config" / "config.yaml").write_text(TINY + "decode: {jpeg_quality: 300}\n")
    run = prep(project, "decode", "--dataset", "demo")
    assert run.returncode == 2 and "decode.jpeg_quality" in run.stderr


def test_version_and_help(project):
    run = prep(project, "--version")
    assert run.returncode == 0 and "motionprep" in run.stdout
    run = prep(project, "--help")
    for name in ("make-demo", "manifest", "decode", "shards"):
        assert name in run.stdout


def test_cli_reference_lists_every_command():
    """docs/cli.md is regenerated with docs/make_cli_reference.py; a new command must appear there."""
    import click

    from pipeline.cli import cli

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    names = []
    for name, cmd in cli.commands.items():
        names.append(f"prep-cli {name}")
        if isinstance(cmd, click.Group):
            names += [f"prep-cli {name} {sub}" for sub in cmd.commands]
    missing = [n for n in names if f"## `{n}`" not in doc]
    assert not missing, f"regenerate docs/cli.md: {missing}"
