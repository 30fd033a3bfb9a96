"""The ``vidshard`` HDF5 shard format: its constants and the description of one per-frame stream.

Layout (version 1, documented in docs/shard-format.md)::

    / attrs   format="vidshard", format_version, dataset, modality, encoding, shard, num_shards,
              manifest_sha256, producer, params (JSON of every stage parameter), failures (JSON list)
    /classes             (C,)   utf-8
    /videos/video_id     (N,)   utf-8
    /videos/label        (N,)   int32, -1 = unlabeled
    /videos/split        (N,)   utf-8 (train | test | val | unused)
    /videos/num_frames   (N,)   int32
    /videos/fps          (N,)   float64
    /videos/height, width (N,)  int32
    /videos/offset       (N+1,) int64: video i is frames[offset[i]:offset[i+1]] in every stream
    /frames/<stream>     (T,)   vlen uint8 (JPEG bytes, MPEG-4 packets) or (T, ...) fixed uint8/int arrays, chunked

All streams of a shard share ``offset``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .. import __version__
from ..core.errors import ShardError

FORMAT = "vidshard"
FORMAT_VERSION = 1
#: the modalities a shard may hold (its ``modality`` attribute); the one list every module uses
MODALITIES = ("rgb", "flow", "mv", "residual", "resframe", "feature")
PRODUCER = f"motionprep {__version__}"


@dataclass(frozen=True)
class Stream:
    """One per-frame dataset of a shard.

    ``kind="jpeg"``: each frame is a JPEG (vlen uint8); ``color`` is "rgb" or "gray".
    ``kind="bytes"``: each frame is a byte string (vlen uint8) of the format named by ``attrs["encoding"]``
    (``"mpeg4-packet"``: one MPEG-4 Part 2 packet).
    ``kind="array"``: each frame is a fixed ``shape`` array of ``dtype``; ``compression``: None or 0 (none),
    1-9 (gzip level) or ``"lzf"`` (:func:`pipeline.shards.writer.compression_filter`).
    ``attrs``: extra attributes recorded on the dataset (quantization, normalization, ...).
    """

    name: str
    kind: str = "jpeg"
    color: str = "rgb"
    shape: tuple[int, ...] = ()
    dtype: str = "uint8"
    compression: int | str | None = None
    attrs: Mapping[str, Any] | None = None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)



__all__ = ["FORMAT", "FORMAT_VERSION", "MODALITIES", "PRODUCER", "Stream", "ShardError"]
