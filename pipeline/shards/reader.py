"""Reading shards: :class:`ShardReader` (lazy open, format and version checked, picklable)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the Zstandard filter of zstd-compressed streams)
import numpy as np

from ..media import jpeg
from .format import FORMAT, FORMAT_VERSION, ShardError
from .limits import check_read, check_shard


class ShardReader:
    """Read a shard lazily: the file is opened on first use (and again after unpickling in a worker).

    On open the format, its version and every declared size are checked (:func:`.limits.check_shard`), so a
    file from elsewhere claiming more frames than it could hold is refused before anything is allocated.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f: h5py.File | None = None
        self._offset: np.ndarray | None = None

    @property
    def file(self) -> h5py.File:
        if self._f is None:
            if not self.path.exists():
                raise ShardError(f"shard {self.path} does not exist")
            f = h5py.File(self.path, "r")
            try:            # validated before it is kept: a refused file is never used unchecked later
                if f.attrs.get("format") != FORMAT:
                    raise ShardError(f"{self.path} is not a {FORMAT} shard (format attribute "
                                     f"{f.attrs.get('format')!r})")
                version = int(f.attrs.get("format_version", 0))
                if version > FORMAT_VERSION:
                    raise ShardError(f"{self.path}: format_version {version} is newer than this reader "
                                     f"({FORMAT_VERSION})")
                self._offset = check_shard(f, self.path)
            except BaseException:
                f.close()
                raise
            self._f = f
        return self._f

    def __getstate__(self):
        return {"path": self.path, "_f": None, "_offset": None}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            self._offset = None

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

    @property
    def offsets(self) -> np.ndarray:
        """``/videos/offset`` (int64, V+1: video ``v`` is frames ``offsets[v]:offsets[v+1]``), checked on open."""
        self.file
        return self._offset

    def frame_range(self, video: int) -> tuple[int, int]:
        off = self.offsets
        if not 0 <= video < len(off) - 1:
            raise ShardError(f"{self.path}: no video {video} (the shard has {len(off) - 1})")
        return int(off[video]), int(off[video + 1])

    def raw(self, video: int, stream: str, start: int = 0, stop: int | None = None) -> list | np.ndarray:
        """Frames ``start:stop`` of one video as stored (JPEG bytes arrays, or a fixed array)."""
        a, b = self.frame_range(video)
        stop = b - a if stop is None else stop
        if not 0 <= start <= stop <= b - a:
            raise ShardError(f"{self.path}: frames {start}:{stop} out of range for video {video} "
                             f"with {b - a} frames")
        ds = self.file["frames"][stream]
        check_read(ds, stop - start, self.path, f"frames {start}:{stop} of video {video}, stream {stream}")
        return ds[a + start:a + stop]

    def decode(self, video: int, stream: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Decoded frames: (n, H, W, 3) RGB or (n, H, W) gray uint8 for JPEG streams; the array otherwise."""
        ds = self.file["frames"][stream]
        data = self.raw(video, stream, start, stop)
        if ds.attrs.get("encoding") != "jpeg":
            return np.asarray(data)
        gray = ds.attrs.get("color") == "gray"
        return np.stack([jpeg.decode(b, gray=gray) for b in data]) if len(data) else np.zeros((0,), np.uint8)

