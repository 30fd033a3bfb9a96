"""A real full disk for the tests: a small tmpfs mounted for one test (needs root, as on CI).

Where the machine cannot mount one, the test is skipped with a warning that names why, so `pytest -q`
shows it in its summary: it never passes without having filled a disk.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from pathlib import Path

import pytest


def _try_mount(folder: Path, size_kib: int) -> str | None:
    if os.geteuid() != 0:
        return "not root"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"mount exited {proc.returncode}")


@contextlib.contextmanager
def small_disk(folder: Path, size_kib: int = 1024):
    """Mount a ``size_kib`` KiB tmpfs at ``folder`` (created) for the ``with`` block; unmount after."""
    folder.mkdir(parents=True, exist_ok=True)
    why = _try_mount(folder, size_kib)
    if why is not None:
        msg = f"FULL-DISK TEST NOT RUN: cannot mount a tmpfs on this machine ({why}); run the tests as root"
        warnings.warn(msg)
        pytest.skip(msg)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave_kib: int) -> Path:
    """Fill the file system of ``folder`` with one file until ``leave_kib`` KiB are left."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler.bin"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_kib * 1024))
    return filler


def free_kib(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize // 1024


def files_under(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative paths, hidden ones too), sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
