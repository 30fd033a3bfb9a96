"""Fault injection: kill this process with SIGKILL at a named point, to test crash safety for real.

A preempted cluster job, an out-of-memory kill or a power cut stops a stage anywhere, with no chance to
clean up. The crash tests (``tests/test_crash.py``) make that happen at chosen places by setting::

    MOTIONPREP_FAULT=<point>[@<n>][,<point>[@<n>] ...]

The process sends itself SIGKILL the ``n``-th time (default: the first) it reaches ``<point>``. The points:

======================  ===========================================================================
``shard.video``         a shard being written got its n-th video (each ``ShardWriter`` counts its own)
``shard.close``         a shard's last video was appended, its table not yet written
``atomic.before_rename`` an output is complete under its temporary name, not yet renamed
``train.step``          one optimizer step of training was taken (mid-epoch)
======================  ===========================================================================

Unset (always, outside the tests) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "MOTIONPREP_FAULT"
_counts: dict[str, int] = {}


def _targets(spec: str) -> dict[str, int]:
    out = {}
    for item in spec.split(","):
        item = item.strip()
        if item:
            name, _, n = item.partition("@")
            out[name] = int(n) if n else 1
    return out


def fault_point(name: str, count: int | None = None) -> None:
    """Reaching point ``name``: SIGKILL this process if ``MOTIONPREP_FAULT`` asks for it (see the module).
    ``count``: which time this is, when the caller counts (a shard writer counts its own videos);
    otherwise this process's visits of ``name`` are counted."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    want = _targets(spec).get(name)
    if want is None:
        return
    if count is None:
        count = _counts[name] = _counts.get(name, 0) + 1
    if count == want:
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["ENV", "fault_point"]
