"""Training data from vidshard files: clip sampling (:mod:`.clips`), torch datasets (:mod:`.dataset`) and the
motion vectors and residuals of an mv shard of any storage (:mod:`.mv_source`).

The torch datasets are imported on first use (``from pipeline.data import ShardClips``), so that modules
needing only :mod:`.mv_source` or :mod:`.clips` (the pictures, ``prep-cli`` at start-up) do not pay for
importing torch.
"""

from __future__ import annotations

from .clips import group_scores

_LAZY = {"ShardClips": "dataset", "PRESETS": "dataset", "preset": "dataset", "worker_init": "dataset",
         "MvShard": "mv_source", "ShardFeatures": "features"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ShardClips", "PRESETS", "preset", "group_scores", "worker_init", "MvShard", "ShardFeatures"]
