"""Training data from vidshard files: clip sampling (:mod:`.clips`) and torch datasets (:mod:`.dataset`)."""

from .clips import group_scores
from .dataset import PRESETS, ShardClips, preset, worker_init

__all__ = ["ShardClips", "PRESETS", "preset", "group_scores", "worker_init"]
