"""Size limits for HDF5 files from elsewhere: declared sizes are checked before anything is allocated.

An HDF5 file can declare a dataset far larger than itself (a chunked dataset of 10^12 frames with no chunk
written takes a few kilobytes), and reading it whole would ask for that much memory: an out-of-memory kill
instead of an error. Every shard and foreign file is therefore checked on open against these limits, each
settable by an environment variable of the same name prefixed ``MOTIONPREP_``:

======================  ============  =====================================================================
limit                   default       what it bounds
======================  ============  =====================================================================
``MAX_FRAMES_PER_VIDEO``  1,000,000   frames of one video (11 h at 25 fps)
``MAX_VIDEOS_PER_FILE``   1,000,000   videos (rows of ``/videos``, class names) in one file
``MAX_READ_BYTES``        8 GiB       bytes of one read (one video's frames of one stream, one table)
======================  ============  =====================================================================

Nothing is ever unpickled: h5py reads numbers, strings and byte arrays only, and object references are not
followed. Variable-length elements (JPEGs, packets) are bounded by the file's own heap, which HDF5 checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..core.errors import ShardError


def _limit(name: str, default: int) -> int:
    value = os.environ.get(f"MOTIONPREP_{name}")
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ShardError(f"MOTIONPREP_{name}={value!r} is not an integer") from None


def max_frames_per_video() -> int:
    return _limit("MAX_FRAMES_PER_VIDEO", 1_000_000)


def max_videos_per_file() -> int:
    return _limit("MAX_VIDEOS_PER_FILE", 1_000_000)


def max_read_bytes() -> int:
    return _limit("MAX_READ_BYTES", 8 << 30)


def element_bytes(ds: h5py.Dataset) -> int:
    """Bytes one index of axis 0 of ``ds`` takes in memory (a variable-length element counts its pointer)."""
    per = ds.dtype.itemsize if h5py.check_vlen_dtype(ds.dtype) is None else 16
    return int(per * int(np.prod(ds.shape[1:], dtype=np.int64)))


def check_read(ds: h5py.Dataset, count: int, path: str | Path, what: str = "") -> None:
    """Refuse to read ``count`` indices of axis 0 of ``ds`` when that would exceed :func:`max_read_bytes`."""
    need = int(count) * element_bytes(ds)
    if need > max_read_bytes():
        raise ShardError(f"{path}: reading {what or ds.name} would take {need / 2**30:.3g} GiB "
                         f"({count} x {ds.shape[1:]} {ds.dtype}), over the limit of "
                         f"{max_read_bytes() / 2**30:.3g} GiB (MOTIONPREP_MAX_READ_BYTES)")


def read_checked(ds: h5py.Dataset, path: str | Path, start: int = 0, stop: int | None = None,
                 what: str = "") -> np.ndarray:
    """``ds[start:stop]`` (all of axis 0 by default, ``ds[()]`` for a scalar) after :func:`check_read`."""
    if ds.shape == ():
        return ds[()]
    stop = ds.shape[0] if stop is None else stop
    check_read(ds, max(0, stop - start), path, what)
    return ds[start:stop]


def check_count(n: int, limit: int, path: str | Path, what: str, env: str) -> None:
    if n > limit:
        raise ShardError(f"{path}: {what} is {n}, over the limit of {limit} (MOTIONPREP_{env}); a file "
                         f"declaring that much is refused before anything is allocated")


def check_frames(n: int, path: str | Path, what: str) -> None:
    """Refuse ``n`` frames of one video over :func:`max_frames_per_video`."""
    check_count(int(n), max_frames_per_video(), path, f"the frame count of {what}", "MAX_FRAMES_PER_VIDEO")


def check_shard(f: h5py.File, path: str | Path) -> np.ndarray:
    """Check a shard's declared sizes before any of it is read; return ``/videos/offset`` (int64, V+1).

    Refuses (:class:`ShardError`): a missing ``/videos/offset`` or ``/frames`` (or one of another kind), more videos than
    :func:`max_videos_per_file`, a ``/videos`` table or class list of another length, offsets that do not
    start at 0 or decrease, a video over :func:`max_frames_per_video`, and a frame stream shorter than the
    offsets say.
    """
    if not isinstance(f.get("frames"), h5py.Group) or not isinstance(f.get("videos"), h5py.Group) or \
            not isinstance(f["videos"].get("offset"), h5py.Dataset):
        raise ShardError(f"{path}: not a complete shard (no /videos/offset dataset or no /frames group)")
    off_ds = f["videos/offset"]
    if off_ds.ndim != 1 or off_ds.shape[0] < 1:
        raise ShardError(f"{path}: /videos/offset has shape {off_ds.shape}, expected (videos + 1,)")
    n = off_ds.shape[0] - 1
    check_count(n, max_videos_per_file(), path, "the number of videos", "MAX_VIDEOS_PER_FILE")
    for key, ds in f["videos"].items():
        if not isinstance(ds, h5py.Dataset):
            continue
        if key != "offset" and ds.shape[:1] != (n,):
            raise ShardError(f"{path}: /videos/{key} has shape {ds.shape}, expected ({n},) like the offsets")
        check_read(ds, ds.shape[0] if ds.ndim else 1, path, f"/videos/{key}")
    if "classes" in f:
        if not isinstance(f["classes"], h5py.Dataset):
            raise ShardError(f"{path}: /classes is not a dataset")
        check_count(f["classes"].shape[0] if f["classes"].ndim else 1, max_videos_per_file(), path,
                    "the number of classes", "MAX_VIDEOS_PER_FILE")
    off = np.asarray(off_ds[()], dtype=np.int64)
    if off[0] != 0 or (np.diff(off) < 0).any():
        raise ShardError(f"{path}: /videos/offset does not start at 0 or decreases")
    if n:
        longest = int(np.diff(off).max())
        check_frames(longest, path, f"video {int(np.diff(off).argmax())}")
    for name, ds in f["frames"].items():
        if not isinstance(ds, h5py.Dataset) or ds.ndim < 1:
            raise ShardError(f"{path}: /frames/{name} is not a per-frame dataset")
        if ds.shape[0] < off[-1]:
            raise ShardError(f"{path}: /frames/{name} has {ds.shape[0]} frames, the offsets say {int(off[-1])}")
    return off          # the bytes of a read are checked when it is made (a long video is read in clips)


__all__ = ["max_frames_per_video", "max_videos_per_file", "max_read_bytes", "element_bytes", "check_read",
           "read_checked", "check_frames", "check_count", "check_shard"]
