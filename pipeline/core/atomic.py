"""Atomic file output: write under a temporary name in the destination folder, rename when complete.

A temporary is named ``.<dest name>.<host>-<pid>-<random>.tmp``. A run killed mid-write (SIGKILL, a
preempted cluster job, a power cut) cannot remove its own, and at Kinetics scale every such job would leave
one (a killed decode left an 80 MB one behind). So every new write of ``dest`` first removes the
temporaries of ``dest`` that no live process can still be writing (:func:`sweep_dead_temporaries`): those of
this host whose process is gone, and those of another host (a cluster node) untouched for
:data:`FOREIGN_IDLE_S` seconds. A live writer's file is never removed: on this host its process exists, and
on another its file keeps changing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

#: another host's temporary is a dead run's when unmodified this long (a live writer appends every video)
FOREIGN_IDLE_S = 6 * 3600
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
_TMP = re.compile(r"^(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # another user's live process
        return True
    return True


def sweep_dead_temporaries(dest: str | Path, now: float | None = None) -> list[Path]:
    """Remove the temporaries of ``dest`` left by dead runs (see the module text); returns what was removed.
    Temporaries of the old naming (no host and pid) are left alone."""
    dest = Path(dest)
    prefix = f".{dest.name}."
    removed = []
    now = time.time() if now is None else now
    if not dest.parent.is_dir():
        return removed
    for p in dest.parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        m = _TMP.match(p.name[len(prefix):])
        if m is None:
            continue
        pid, host = int(m.group("pid")), m.group("host")
        if host == _HOST:
            dead = pid != os.getpid() and not _alive(pid)
        else:
            try:
                dead = now - p.stat().st_mtime > FOREIGN_IDLE_S
            except FileNotFoundError:
                continue
        if dead:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success it is renamed to ``dest``, on error removed.

    No partial file is ever visible under ``dest``: readers see the old file or the finished new one. Dead
    runs' temporaries of ``dest`` are removed first (:func:`sweep_dead_temporaries`).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temporaries(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.{_HOST}-{os.getpid()}-", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(dest: str | Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
