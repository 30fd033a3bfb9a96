"""The ``vidshard`` HDF5 shard format (docs/shard-format.md): writer, reader, inspection and verification.

One file per (dataset, modality, shard index); ``format`` holds the constants and :class:`Stream`,
``writer`` :class:`ShardWriter`, ``reader`` :class:`ShardReader`, ``check`` :func:`inspect`,
:func:`verify` and :func:`diff`. File names come from :mod:`pipeline.core.paths`.
"""

from .check import diff, inspect, verify
from .format import FORMAT, FORMAT_VERSION, MODALITIES, PRODUCER, ShardError, Stream
from .reader import ShardReader
from .writer import ShardWriter

__all__ = ["FORMAT", "FORMAT_VERSION", "MODALITIES", "PRODUCER", "ShardError", "Stream", "ShardReader",
           "ShardWriter", "inspect", "verify", "diff"]
