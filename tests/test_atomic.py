"""Atomic outputs: nothing partial at a final path, and dead runs' temporaries removed by the next write
(never a live one's)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import h5py
import pytest

from pipeline.core.atomic import FOREIGN_IDLE_S, _HOST, atomic_path, sweep_dead_temporaries, write_text_atomic


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_rerun_removes_dead_runs_temporaries_only(tmp_path):
    dest = tmp_path / "shard-00000.h5"
    dead = tmp_path / f".{dest.name}.{_HOST}-{dead_pid()}-abc.tmp"
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".{dest.name}.{_HOST}-{live_proc.pid}-def.tmp"
        foreign_busy = tmp_path / f".{dest.name}.othernode-123-ghi.tmp"
        foreign_idle = tmp_path / f".{dest.name}.othernode-124-jkl.tmp"
        old_style = tmp_path / f".{dest.name}.mno.tmp"
        other_dest = tmp_path / f".shard-00001.h5.{_HOST}-{dead_pid()}-pqr.tmp"
        for p in (dead, live, foreign_busy, foreign_idle, old_style, other_dest):
            p.write_bytes(b"partial")
        past = time.time() - FOREIGN_IDLE_S - 60
        os.utime(foreign_idle, (past, past))
        write_text_atomic(dest, "done")
        assert dest.read_text() == "done"
        left = {p.name for p in tmp_path.iterdir()}
        assert dead.name not in left and foreign_idle.name not in left            # dead runs': removed
        assert {live.name, foreign_busy.name, old_style.name, other_dest.name} <= left   # kept
    finally:
        live_proc.kill()
        live_proc.wait()
    assert sweep_dead_temporaries(dest) == [live]                 # once its writer is gone, it goes too


WRITER = """
import sys, time
from pipeline.core.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1000)
    print(tmp, flush=True)
    time.sleep(60)
"""


def test_a_killed_writer_leaves_nothing_at_the_final_path_and_its_temporary_goes_next_time(tmp_path):
    dest = tmp_path / "shard-00000.h5"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(dest)], stdout=subprocess.PIPE, text=True)
    tmp = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not dest.exists() and os.path.exists(tmp)              # SIGKILL: no cleanup ran
    with atomic_path(dest) as new:
        assert not os.path.exists(tmp)                            # the rerun removed the dead run's file
        new.write_text("whole")
    assert dest.read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == [dest.name]


def test_an_error_inside_leaves_neither_file(tmp_path):
    dest = tmp_path / "a.json"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_permissions_of_a_plain_new_file(tmp_path):
    # mkstemp makes its files 0600: a shard shared with a group (or read by another project's user) must not be
    # private. The mode is the umask's at import, applied just before the rename (so that the writer can
    # open the temporary whatever the umask is)
    code = """
import os, stat, sys
from pathlib import Path
import h5py
from pipeline.core.atomic import atomic_path, write_text_atomic
d = Path(sys.argv[1])
write_text_atomic(d / "a.json", "[]\\n")
with atomic_path(d / "b.h5") as tmp:
    with h5py.File(tmp, "w") as f:
        f["x"] = 1
print(" ".join(oct(stat.S_IMODE((d / n).stat().st_mode)) for n in ("a.json", "b.h5")))
"""
    for umask, want in (("022", "0o644 0o644"), ("002", "0o664 0o664"), ("0277", "0o400 0o400")):
        out = tmp_path / umask
        out.mkdir()
        run = subprocess.run(["sh", "-c", f'umask {umask} && exec "$0" -c "$1" "$2"', sys.executable, code,
                              str(out)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.split()[-2:] == want.split(), (umask, run.stdout)
