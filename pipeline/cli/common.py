"""Helpers of the command modules."""

from __future__ import annotations

import inspect
from typing import Any, Callable


def defaults_of(fn: Callable) -> dict[str, Any]:
    """A function's keyword defaults: the defaults of the options that call it, so they are not repeated."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}
