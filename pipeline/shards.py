"""The ``vidshard`` HDF5 shard format: writer, reader, inspection and verification.

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
    /frames/<stream>     (T,)   vlen uint8 (JPEG bytes) or (T, ...) fixed uint8/int arrays, chunked

All streams of a shard share ``offset``. A writer writes to a temporary file and renames it when closed;
the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import h5py
import numpy as np

from . import __version__, jpeg
from .atomic import atomic_path

FORMAT = "vidshard"
FORMAT_VERSION = 1
MODALITIES = ("rgb", "flow", "mv", "residual", "resframe")
PRODUCER = f"motionprep {__version__}"
_STR = h5py.string_dtype("utf-8")
_VLEN_U8 = h5py.vlen_dtype(np.uint8)


class ShardError(ValueError):
    """A shard file is missing, malformed or does not match what the caller expects."""


@dataclass(frozen=True)
class Stream:
    """One per-frame dataset of a shard.

    ``kind="jpeg"``: each frame is a JPEG (vlen uint8); ``color`` is "rgb" or "gray".
    ``kind="array"``: each frame is a fixed ``shape`` array of ``dtype``, gzip ``compression`` level.
    ``attrs``: extra attributes recorded on the dataset (quantization, normalization, ...).
    """

    name: str
    kind: str = "jpeg"
    color: str = "rgb"
    shape: tuple[int, ...] = ()
    dtype: str = "uint8"
    compression: int | None = None
    attrs: Mapping[str, Any] | None = None


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.h5"


def failures_name(shard: int) -> str:
    return f"shard-{shard:05d}.failures.json"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


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
            if s.kind == "jpeg":
                ds = frames.create_dataset(s.name, shape=(0,), maxshape=(None,), dtype=_VLEN_U8,
                                           chunks=(chunk_frames,))
                ds.attrs["encoding"] = "jpeg"
                ds.attrs["color"] = s.color
            elif s.kind == "array":
                ds = frames.create_dataset(s.name, shape=(0, *s.shape), maxshape=(None, *s.shape),
                                           dtype=s.dtype, chunks=(min(chunk_frames, 16), *s.shape),
                                           compression="gzip" if s.compression else None,
                                           compression_opts=s.compression or None, shuffle=False)
                ds.attrs["encoding"] = "raw"
            else:
                raise ShardError(f"stream {s.name}: unknown kind {s.kind!r}")
            for key, value in (s.attrs or {}).items():
                ds.attrs[key] = value

    # -- writing --------------------------------------------------------------------------------------
    def add_video(self, video_id: str, label: int, split: str, fps: float, height: int, width: int,
                  frames: Mapping[str, Sequence[Any]], **fields: Any) -> None:
        """Append one video. ``frames`` maps every stream name to its per-frame values (all the same length):
        JPEG bytes for jpeg streams, arrays of the stream's shape for array streams."""
        if set(frames) != set(self.streams):
            raise ShardError(f"video {video_id}: streams {sorted(frames)} != shard streams {sorted(self.streams)}")
        counts = {len(v) for v in frames.values()}
        if len(counts) != 1:
            raise ShardError(f"video {video_id}: streams have different frame counts {counts}")
        n = counts.pop()
        start = self._offset[-1]
        for name, values in frames.items():
            ds = self._f["frames"][name]
            ds.resize((start + n, *ds.shape[1:]))
            if n == 0:
                continue
            if self.streams[name].kind == "jpeg":
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
        self._offset.append(start + n)
        row = dict(video_id=video_id, label=int(label), split=split, num_frames=n, fps=float(fps),
                   height=int(height), width=int(width))
        missing = set(self.video_fields) - set(fields)
        if missing:
            raise ShardError(f"video {video_id}: missing per-video fields {sorted(missing)}")
        row.update(fields)
        for key in self._rows:
            self._rows[key].append(row[key])

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
            self._f.close()
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Discard the shard: the temporary file is removed, the final name is untouched."""
        if not self._closed:
            self._closed = True
            self._f.close()
            err = RuntimeError("shard aborted")
            self._ctx.__exit__(RuntimeError, err, None)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_failures(path: str | Path, failures: Iterable[Mapping]) -> None:
    """The per-shard failure report: a JSON list of {video_id, stage, error}, written atomically."""
    from .atomic import write_text_atomic
    write_text_atomic(path, json.dumps(list(failures), indent=1, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------------------
# Reading


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


class ShardReader:
    """Read a shard lazily: the file is opened on first use (and again after unpickling in a worker)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f: h5py.File | None = None

    @property
    def file(self) -> h5py.File:
        if self._f is None:
            if not self.path.exists():
                raise ShardError(f"shard {self.path} does not exist")
            self._f = h5py.File(self.path, "r")
            if self._f.attrs.get("format") != FORMAT:
                raise ShardError(f"{self.path} is not a {FORMAT} shard (format attribute "
                                 f"{self._f.attrs.get('format')!r})")
            version = int(self._f.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise ShardError(f"{self.path}: format_version {version} is newer than this reader "
                                 f"({FORMAT_VERSION})")
        return self._f

    def __getstate__(self):
        return {"path": self.path, "_f": None}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def attrs(self) -> dict:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.file.attrs.items()}

    @property
    def params(self) -> dict:
        return json.loads(self.file.attrs["params"])

    @property
    def failures(self) -> list[dict]:
        return json.loads(self.file.attrs.get("failures", "[]"))

    @property
    def classes(self) -> list[str]:
        return [c.decode() if isinstance(c, bytes) else c for c in self.file["classes"][()]]

    @property
    def streams(self) -> list[str]:
        return list(self.file["frames"].keys())

    def __len__(self) -> int:
        return int(self.file["videos/offset"].shape[0] - 1)

    def video_ids(self) -> list[str]:
        return [v.decode() for v in self.file["videos/video_id"][()]]

    def table(self) -> dict[str, np.ndarray]:
        """Every /videos dataset as an array (strings decoded)."""
        out = {}
        for key, ds in self.file["videos"].items():
            data = ds[()]
            if data.dtype == object:
                data = np.array([x.decode() if isinstance(x, bytes) else x for x in data], dtype=object)
            out[key] = data
        return out

    def frame_range(self, video: int) -> tuple[int, int]:
        off = self.file["videos/offset"]
        return int(off[video]), int(off[video + 1])

    def raw(self, video: int, stream: str, start: int = 0, stop: int | None = None) -> list | np.ndarray:
        """Frames ``start:stop`` of one video as stored (JPEG bytes arrays, or a fixed array)."""
        a, b = self.frame_range(video)
        stop = b - a if stop is None else stop
        if not 0 <= start <= stop <= b - a:
            raise ShardError(f"{self.path}: frames {start}:{stop} out of range for video {video} "
                             f"with {b - a} frames")
        return self.file["frames"][stream][a + start:a + stop]

    def decode(self, video: int, stream: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Decoded frames: (n, H, W, 3) RGB or (n, H, W) gray uint8 for JPEG streams; the array otherwise."""
        ds = self.file["frames"][stream]
        data = self.raw(video, stream, start, stop)
        if ds.attrs.get("encoding") != "jpeg":
            return np.asarray(data)
        gray = ds.attrs.get("color") == "gray"
        return np.stack([jpeg.decode(b, gray=gray) for b in data]) if len(data) else np.zeros((0,), np.uint8)


def inspect(path: str | Path) -> str:
    """A human-readable summary of a shard."""
    with ShardReader(path) as r:
        a = r.attrs
        t = r.table()
        lines = [f"{path}", f"  format      {a['format']} v{a['format_version']} by {a.get('producer')}",
                 f"  dataset     {a['dataset']}  modality {a['modality']}  encoding {a['encoding']}",
                 f"  shard       {a['shard']} of {a['num_shards']}  manifest sha256 {a['manifest_sha256'][:16]}...",
                 f"  videos      {len(r)}  frames {int(t['offset'][-1]) if len(t['offset']) else 0}"
                 f"  classes {len(r.classes)}  failures {len(r.failures)}"]
        for name in r.streams:
            ds = r.file["frames"][name]
            size = ds.id.get_storage_size()
            lines.append(f"  stream      {name}: {ds.attrs.get('encoding')} {ds.shape} {ds.dtype}"
                         + (f" {ds.attrs.get('color')}" if ds.attrs.get("encoding") == "jpeg" else "")
                         + f" ({size / 2**20:.1f} MiB index/data)")
        if len(r):
            nf = t["num_frames"]
            lines.append(f"  frames/video min {nf.min()} mean {nf.mean():.1f} max {nf.max()}; "
                         f"size {t['width'][0]}x{t['height'][0]}; fps {t['fps'][0]:g}")
        for fail in r.failures[:10]:
            lines.append(f"  failed      {fail['video_id']} ({fail['stage']}): {fail['error']}")
        params = r.params
        for section, values in params.items():
            lines.append(f"  params      {section}: {_json(values)}")
    return "\n".join(lines)


def verify(path: str | Path, decode_jpeg: bool = True) -> list[str]:
    """Check structure, counts, offsets and (optionally) that every JPEG decodes at the recorded size.

    Returns the list of problems found; empty means the shard is sound.
    """
    problems: list[str] = []
    try:
        r = ShardReader(path)
        f = r.file
    except (OSError, ShardError) as exc:
        return [f"cannot open: {exc}"]
    try:
        for key in ("format_version", "dataset", "modality", "encoding", "shard", "num_shards",
                    "manifest_sha256", "producer", "params"):
            if key not in f.attrs:
                problems.append(f"attribute {key!r} is missing")
        for key in ("classes", "videos/video_id", "videos/label", "videos/split", "videos/num_frames",
                    "videos/fps", "videos/height", "videos/width", "videos/offset", "frames"):
            if key not in f:
                problems.append(f"dataset {key!r} is missing")
        if problems:
            return problems
        n = len(r)
        for key, ds in f["videos"].items():
            if key != "offset" and ds.shape != (n,):
                problems.append(f"videos/{key} has shape {ds.shape}, expected ({n},)")
        off = f["videos/offset"][()]
        nf = f["videos/num_frames"][()]
        if off[0] != 0 or np.any(np.diff(off) < 0):
            problems.append("videos/offset does not start at 0 or decreases")
        elif not np.array_equal(np.diff(off), nf):
            problems.append("videos/num_frames does not match the offset differences")
        labels = f["videos/label"][()]
        if np.any((labels < -1) | (labels >= len(f["classes"]))):
            problems.append("videos/label has values outside [-1, number of classes)")
        heights, widths = f["videos/height"][()], f["videos/width"][()]
        for name, ds in f["frames"].items():
            if ds.shape[0] != off[-1]:
                problems.append(f"frames/{name} has {ds.shape[0]} frames, offset says {off[-1]}")
                continue
            if decode_jpeg and ds.attrs.get("encoding") == "jpeg":
                gray = ds.attrs.get("color") == "gray"
                for v in range(n):
                    for i in range(off[v], off[v + 1]):
                        try:
                            img = jpeg.decode(ds[i], gray=gray)
                        except ValueError:
                            problems.append(f"frames/{name}[{i}] (video {v}, frame {i - off[v]}) does not decode")
                            continue
                        if img.shape[:2] != (heights[v], widths[v]):
                            problems.append(f"frames/{name}[{i}] decodes to {img.shape[:2]}, video {v} "
                                            f"records {(int(heights[v]), int(widths[v]))}")
                        if len(problems) > 20:
                            return problems + ["(stopped after 20 problems)"]
    except Exception as exc:  # a damaged file can fail anywhere inside HDF5
        problems.append(f"unreadable: {type(exc).__name__}: {exc}")
    finally:
        r.close()
    return problems
