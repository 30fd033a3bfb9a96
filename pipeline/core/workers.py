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


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:
            os._exit(70)       # EX_SOFTWARE; no cleanup: the parent that would collect the results is gone


def watch_parent() -> None:
    """Start (once per process) a daemon thread that ends this process when its parent is gone."""
    global _watching
    if _watching == os.getpid():
        return
    _watching = os.getpid()
    threading.Thread(target=_watch, args=(os.getppid(),), name="watch-parent", daemon=True).start()


def _run(fn: Callable[..., Any], *args, **kwargs):
    watch_parent()
    return fn(*args, **kwargs)


def in_worker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` for a pool: the worker running it exits when the process that started the pool is gone.
    Picklable when ``fn`` is."""
    return functools.partial(_run, fn)


__all__ = ["in_worker", "watch_parent", "POLL_S"]
