"""Worker processes that end with the stage that started them.

A stage spreads its videos over worker processes (joblib's loky pool, a multiprocessing pool). When the
stage itself is killed (SIGKILL, a preempted job, an out-of-memory kill) its workers are not: loky's wait
up to 5 minutes idle, holding memory and the job's output pipes, and a rerun started meanwhile competes with
them. :func:`in_worker` wraps a task so the worker running it watches its parent and exits as soon as it
is gone (re-parented). Only pool workers watch: a stage's main process is never stopped because the shell
that started it went away (``nohup``).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any, Callable

#: how often a worker checks that its parent is alive, in seconds
POLL_S = 0.5
_watching: int | None = None       # the pid whose watchdog runs (a forked child must start its own)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this host (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # another user's live process
        return True
    return True


def _watch(creator: int, child: bool) -> None:
    while True:
        time.sleep(POLL_S)
        if (os.getppid() != creator) if child else not pid_alive(creator):
            os._exit(70)       # EX_SOFTWARE; no cleanup: the process that would collect the results is gone


def watch_parent(creator: int) -> None:
    """Start (once per process) a daemon thread that ends this process when ``creator`` (the process that
    made the pool) is gone: re-parented when it is our parent, else no longer alive."""
    global _watching
    if _watching == os.getpid():
        return
    _watching = os.getpid()
    threading.Thread(target=_watch, args=(creator, os.getppid() == creator), name="watch-parent",
                     daemon=True).start()


def _run(creator: int, fn: Callable[..., Any], *args, **kwargs):
    if os.getpid() != creator:          # a pool worker; a task run in the stage's own process never watches
        watch_parent(creator)
    return fn(*args, **kwargs)


def in_worker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` for a pool: the worker running it exits when the process that wrapped it (the stage) is gone.
    Run in that process itself (a serial backend), it is just ``fn``. Picklable when ``fn`` is."""
    return functools.partial(_run, os.getpid(), fn)


__all__ = ["in_worker", "watch_parent", "pid_alive", "POLL_S"]
