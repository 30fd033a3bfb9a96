"""Writing one shard: :class:`ShardWriter` (temporary file, renamed when closed; same inputs, same bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ..core.atomic import atomic_path, discard_temporary, disk_full_error, is_disk_full
from ..core.faults import fault_point
from .format import FORMAT, FORMAT_VERSION, MODALITIES, PRODUCER, ShardError, Stream, _json

_STR = h5py.string_dtype("utf-8")
_VLEN_U8 = h5py.vlen_dtype(np.uint8)


def compression_filter(compression: int | str | None) -> dict:
    """HDF5 filter keywords of a stream's ``compression``: None or 0 = none, 1-9 = gzip (deflate) level,
    ``"lzf"`` = LZF (h5py's own filter: plain h5py reads it; other HDF5 tools need the LZF plugin),
    ``"zstd"`` = Zstandard level 1 through ``hdf5plugin`` (a reader must ``import hdf5plugin`` first)."""
    if not compression:
        return {"compression": None}
    if compression == "lzf":
        return {"compression": "lzf"}
    if compression == "zstd":
        import hdf5plugin
        return dict(hdf5plugin.Zstd(clevel=1))
    if isinstance(compression, int) and 1 <= compression <= 9:
        return {"compression": "gzip", "compression_opts": compression}
    raise ShardError(f"unknown compression {compression!r}: 0 (none), 1-9 (gzip level), 'lzf' or 'zstd'")


class ShardWriter:
    """Write one shard: ``add_video`` per video, then ``close`` (or use as a context manager).

    Frames are appended to resizable chunked datasets as videos arrive, so memory stays at one video.
    On an exception inside the ``with`` block the temporary file is removed and nothing is renamed.
    """

    def __init__(self, path: str | Path, *, dataset: str, modality: str, encoding: str, shard: int,
                 num_shards: int, classes: Sequence[str], manifest_sha256: str, params: Mapping[str, Any],
                 streams: Sequence[Stream], video_fields: Mapping[str, str] | None = None,
                 chunk_frames: int = 64):
        if modality not in MODALITIES:
            raise ShardError(f"unknown modality {modality!r}; allowed: {MODALITIES}")
        self.path = Path(path)
        self.streams = {s.name: s for s in streams}
        self.video_fields = dict(video_fields or {})
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._f = h5py.File(self._tmp, "w", libver=("earliest", "v110"), track_order=False)
        self._rows: dict[str, list] = {k: [] for k in ("video_id", "label", "split", "num_frames", "fps",
                                                         "height", "width", *self.video_fields)}
        self._offset = [0]
        self._failures: list[dict] = []
        self._closed = False
        self.committed = False          # True once the file is complete under its final name
        f = self._f
        attrs = {"format": FORMAT, "format_version": FORMAT_VERSION, "dataset": dataset, "modality": modality,
                 "encoding": encoding, "shard": int(shard), "num_shards": int(num_shards),
                 "manifest_sha256": manifest_sha256, "producer": PRODUCER, "params": _json(params)}
        for key, value in attrs.items():
            f.attrs[key] = value
        for section, values in params.items():
            if isinstance(values, Mapping):
                for key, value in values.items():
                    if value is not None:
                        f.attrs[f"{section}.{key}"] = value if not isinstance(value, (list, tuple)) \
                            else np.asarray(value)
        f.create_dataset("classes", data=np.array(list(classes), dtype=object), dtype=_STR)
        frames = f.create_group("frames")
        for s in streams:
            if s.kind in ("jpeg", "bytes"):
                ds = frames.create_dataset(s.name, shape=(0,), maxshape=(None,), dtype=_VLEN_U8,
                                           chunks=(chunk_frames,))
                if s.kind == "jpeg":
                    ds.attrs["encoding"] = "jpeg"
                    ds.attrs["color"] = s.color
                elif not (s.attrs or {}).get("encoding"):
                    raise ShardError(f"stream {s.name}: a bytes stream needs an 'encoding' attribute")
            elif s.kind == "array":
                ds = frames.create_dataset(s.name, shape=(0, *s.shape), maxshape=(None, *s.shape),
                                           dtype=s.dtype, chunks=(min(chunk_frames, 16), *s.shape),
                                           shuffle=False, **compression_filter(s.compression))
                ds.attrs["encoding"] = "raw"
            else:
                raise ShardError(f"stream {s.name}: unknown kind {s.kind!r}")
            for key, value in (s.attrs or {}).items():
                ds.attrs[key] = value

    # -- writing --------------------------------------------------------------------------------------
    def add_video(self, video_id: str, label: int, split: str, fps: float, height: int, width: int,
                  frames: Mapping[str, Sequence[Any]], **fields: Any) -> None:
        """Append one video. ``frames`` maps every stream name to its per-frame values (all the same length):
        JPEG bytes for jpeg streams, bytes for bytes streams, arrays of the stream's shape for array streams."""
        if set(frames) != set(self.streams):
            raise ShardError(f"video {video_id}: streams {sorted(frames)} != shard streams {sorted(self.streams)}")
        counts = {len(v) for v in frames.values()}
        if len(counts) != 1:
            raise ShardError(f"video {video_id}: streams have different frame counts {counts}")
        n = counts.pop()
        try:
            self._append(frames, n)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.path, f"video {video_id}") from exc
            raise
        start = self._offset[-1]
        self._offset.append(start + n)
        row = dict(video_id=video_id, label=int(label), split=split, num_frames=n, fps=float(fps),
                   height=int(height), width=int(width))
        missing = set(self.video_fields) - set(fields)
        if missing:
            raise ShardError(f"video {video_id}: missing per-video fields {sorted(missing)}")
        row.update(fields)
        for key in self._rows:
            self._rows[key].append(row[key])
        fault_point("shard.video", self.num_videos)

    def _append(self, frames: Mapping[str, Sequence[Any]], n: int) -> None:
        start = self._offset[-1]
        for name, values in frames.items():
            ds = self._f["frames"][name]
            ds.resize((start + n, *ds.shape[1:]))
            if n == 0:
                continue
            if self.streams[name].kind in ("jpeg", "bytes"):
                blobs = [np.frombuffer(b, dtype=np.uint8) for b in values]
                if len({len(b) for b in blobs}) == 1:
                    for i, b in enumerate(blobs):  # h5py would read equal-length blobs as one 2-D array
                        ds[start + i] = b
                else:
                    arr = np.empty(n, dtype=object)
                    arr[:] = blobs
                    ds[start:start + n] = arr
            else:
                _write_array(ds, start, np.asarray(values, dtype=ds.dtype))

    def add_failure(self, video_id: str, stage: str, error: str) -> None:
        """Record a video that could not be processed (it is not in the shard)."""
        self._failures.append({"video_id": video_id, "stage": stage, "error": error})

    @property
    def num_videos(self) -> int:
        return len(self._offset) - 1

    @property
    def failures(self) -> list[dict]:
        return list(self._failures)

    def close(self) -> None:
        """Write the per-video table and attributes, close and rename to the final name."""
        if self._closed:
            return
        fault_point("shard.close")
        self._closed = True
        try:
            v = self._f.create_group("videos")
            n = self.num_videos
            v.create_dataset("video_id", data=np.array(self._rows["video_id"], dtype=object), dtype=_STR,
                             shape=(n,))
            v.create_dataset("split", data=np.array(self._rows["split"], dtype=object), dtype=_STR, shape=(n,))
            v.create_dataset("label", data=np.array(self._rows["label"], dtype=np.int32), shape=(n,))
            v.create_dataset("num_frames", data=np.array(self._rows["num_frames"], dtype=np.int32), shape=(n,))
            v.create_dataset("fps", data=np.array(self._rows["fps"], dtype=np.float64), shape=(n,))
            v.create_dataset("height", data=np.array(self._rows["height"], dtype=np.int32), shape=(n,))
            v.create_dataset("width", data=np.array(self._rows["width"], dtype=np.int32), shape=(n,))
            v.create_dataset("offset", data=np.array(self._offset, dtype=np.int64))
            for key, dtype in self.video_fields.items():
                data = self._rows[key]
                if dtype == "str":
                    v.create_dataset(key, data=np.array(data, dtype=object), dtype=_STR, shape=(n,))
                else:
                    v.create_dataset(key, data=np.array(data, dtype=dtype), shape=(n,))
            self._f.attrs["failures"] = _json(self._failures)
            self._f.close()
        except BaseException as exc:
            self._discard()
            if is_disk_full(exc):
                raise disk_full_error(self.path) from exc
            raise
        self._ctx.__exit__(None, None, None)
        self.committed = True

    def abort(self) -> None:
        """Discard the shard: the temporary file is removed, the final name is untouched."""
        if not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        # Empty the temporary first: on a full disk HDF5 cannot flush, its close fails and it keeps the file
        # open, so only truncating gives the space back. Then close (errors of a doomed file are moot).
        discard_temporary(self._tmp)
        try:
            self._f.close()
        except Exception:       # noqa: BLE001 - HDF5 reports the failed flush of a file being discarded
            pass
        err = RuntimeError("shard aborted")
        self._ctx.__exit__(RuntimeError, err, None)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()



def _write_array(ds: h5py.Dataset, start: int, arr: np.ndarray) -> None:
    """``ds[start:start + len(arr)] = arr`` for a frames dataset chunked along the first axis only. Whole
    chunks of an unfiltered dataset are written with ``write_direct_chunk`` (the chunk's bytes in one call,
    without HDF5's selection and conversion machinery: a third less CPU time for large uncompressed arrays,
    same file content); the partial chunks at either end go through the ordinary path."""
    n = len(arr)
    c = ds.chunks[0] if ds.chunks else 0
    if not c or ds.compression is not None or ds.chunks[1:] != ds.shape[1:] or arr.dtype != ds.dtype:
        ds[start:start + n] = arr
        return
    first, last = -(-start // c) * c, (start + n) // c * c
    if first >= last:
        ds[start:start + n] = arr
        return
    arr = np.ascontiguousarray(arr)
    if first > start:
        ds[start:first] = arr[:first - start]
    zeros = (0,) * (arr.ndim - 1)
    for s in range(first, last, c):
        ds.id.write_direct_chunk((s, *zeros), arr[s - start:s - start + c])
    if last < start + n:
        ds[last:start + n] = arr[last - start:]
