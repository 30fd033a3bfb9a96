"""Atomic file output: write under a temporary name in the destination folder, rename when complete.

A temporary is named ``.<dest name>.<host>-<pid>-<random>.tmp``. A run killed mid-write (SIGKILL, a
preempted cluster job, a power cut) cannot remove its own, and at Kinetics scale every such job would leave
one (a killed decode left an 80 MB one behind). So every new write of ``dest`` first removes the
temporaries of ``dest`` that no live process can still be writing (:func:`sweep_dead_temporaries`): those of
this host whose process is gone, and those of another host (a cluster node) untouched for
:data:`FOREIGN_IDLE_S` seconds. A live writer's file is never removed: on this host its process exists, and
on another its file keeps changing.

A full disk (or quota) is not a bug and not a video's fault: :class:`DiskFullError` names the file being
written and how much space is left, and the temporary is emptied and removed first (truncating it frees
its blocks even while a library such as HDF5 still holds it open), so a failed write leaves nothing behind.
A finished file is flushed to the disk (``fsync``) before it is renamed, so a power cut after the rename
cannot leave an empty file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import MotionprepError
from .faults import fault_point
from .workers import pid_alive

#: another host's temporary is a dead run's when unmodified this long (a live writer appends every video)
FOREIGN_IDLE_S = 6 * 3600
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
_TMP = re.compile(r"^(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[^.]+\.tmp$")


#: errno values of "the disk is full": no space, quota exceeded
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class DiskFullError(MotionprepError, OSError):
    """No space left on the device (or the quota) while writing an output; nothing was left behind."""


def is_disk_full(exc: BaseException) -> bool:
    """True for an ``OSError`` meaning the disk or quota is full; HDF5's errors carry the errno in their
    text (``errno = 28``) rather than always in ``exc.errno``."""
    if isinstance(exc, DiskFullError):
        return True
    if not isinstance(exc, OSError):
        return False
    if exc.errno in _DISK_FULL:
        return True
    text = str(exc)
    return says_disk_full(text) or any(f"errno = {n}," in text for n in _DISK_FULL)


def says_disk_full(text: str) -> bool:
    """True when a message (an exception's, a tool's output such as ffmpeg's) reports a full disk or quota."""
    return "No space left on device" in text or "Disk quota exceeded" in text


def disk_full_error(dest: str | Path, what: str = "") -> DiskFullError:
    """A :class:`DiskFullError` for writing ``dest`` (``what``: what was being written, e.g. a video)."""
    dest = Path(dest)
    try:
        st = os.statvfs(dest.parent)
        free = f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    exc = DiskFullError(f"no space left on device writing {dest}{f' ({what})' if what else ''}; {free} on its "
                        f"file system. The temporary was removed and nothing was written under the final name: "
                        f"free space (or point the results elsewhere) and rerun")
    exc.errno = errno.ENOSPC
    return exc


def discard_temporary(tmp: str | Path) -> None:
    """Empty (frees its blocks even if a library still holds it open) and remove a temporary file."""
    with contextlib.suppress(OSError):
        os.truncate(tmp, 0)
    with contextlib.suppress(FileNotFoundError):
        Path(tmp).unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):     # not every file system lets a directory be opened and synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """This process's umask, read without changing it where Linux tells (``/proc``), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: the mode of a finished output: that of any new file (0666 less the umask, read once at import)
_MODE = 0o666 & ~_umask()


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
            dead = pid != os.getpid() and not pid_alive(pid)
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
    The file gets the permissions of any new file (``0666`` less the umask), as a plain ``open`` would.

    No partial file is ever visible under ``dest``: readers see the old file or the finished new one. Dead
    runs' temporaries of ``dest`` are removed first (:func:`sweep_dead_temporaries`). A full disk raises
    :class:`DiskFullError` naming ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temporaries(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.{_HOST}-{os.getpid()}-", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        fault_point("atomic.before_rename")
        os.chmod(tmp_path, _MODE)          # mkstemp's 0600 would make every output private to its writer
        _fsync(tmp_path)
        os.replace(tmp_path, dest)
        _fsync_dir(dest.parent)
    except BaseException as exc:
        discard_temporary(tmp_path)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise disk_full_error(dest) from exc
        raise


def write_text_atomic(dest: str | Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
