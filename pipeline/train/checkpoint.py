"""Checkpoints: plain tensors and values only, written atomically, read with ``weights_only=True``.

A checkpoint is a dict::

    {"format": "motionprep-checkpoint", "version": 1,
     "method": "mars", "model_spec": {"arch": ..., "in_channels": ..., "num_classes": ..., ...},
     "model": state_dict, "classes": [...], "input": "rgb",
     # resumable checkpoints (last.pt) also hold
     "optimizer": ..., "scheduler": ..., "phase": int, "epoch": int (global, finished), "rng": {...},
     "settings": {...}, "seed": int}

Nothing in it needs unpickling of Python objects, so :func:`load` uses ``torch.load(weights_only=True)``
and refuses any file that would need more, or that a newer format version wrote.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from ..core.atomic import atomic_path
from ..core.errors import CheckpointError

FORMAT = "motionprep-checkpoint"
VERSION = 1


def save(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` (plus format and version) to ``path`` under a temporary name, then rename."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    buf = io.BytesIO()
    torch.save(data, buf)   # in memory first: torch's own file writer turns a full disk into a bare RuntimeError
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint; :class:`CheckpointError` for a missing file, a file holding pickled objects (never
    unpickled), something that is not a motionprep checkpoint, or a newer format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} holds pickled Python objects, which motionprep never "
                              f"unpickles (it reads tensors and plain values only): {first}") from None
    except Exception as exc:        # torch's safe loader raises KeyError, RuntimeError, ... on damaged files
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a motionprep checkpoint (no format {FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {version!r}; this motionprep reads "
                              f"versions up to {VERSION}: upgrade motionprep to read it")
    return data


def rng_state() -> dict:
    """Torch's CPU (and CUDA, when present) generator states."""
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
