"""Motion vectors and residuals of any frame of an ``mv`` shard, whichever way the shard stores them.

Three storages hold the same arrays (the table in :mod:`pipeline.compressed.extract`), told apart by the
shard's ``encoding`` attribute:

==================  ===================================================  ====================================
encoding            what the shard holds                                 reading frames ``lo:hi``
==================  ===================================================  ====================================
``coviar-uint8``    the arrays (``extract_mv``, ``storage: arrays``)      a slice of each stored stream
``mpeg4-bitstream`` each frame's MPEG-4 packet (``extract_mv``,           decode each GOP touched from its
                    ``storage: bitstream``, the default)                  I-frame to the last frame needed
``mpeg4-index``     where each packet lies in the re-encoded files        the same, reading the packets from
                    (``reencode``'s ``shard-K.index.h5``)                 the MPEG-4 files beside the index
==================  ===================================================  ====================================

:class:`MvShard` gives all three one interface, and the decoded ones are bit-identical to the stored ones
(tests compare every frame). The last GOPs decoded are kept (:data:`GOP_CACHE` of them), so a clip's
motion vectors and residuals, read one after the other, cost one decode. A single frame's ``mv`` and
``residual`` (a DMC-Net sample) are computed from the frame and the one before it alone
(:func:`pipeline.compressed.gop.extract_frame`).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..compressed.gop import (ARRAY_STREAMS, PREVIOUS_ONLY, IndexMismatchError, PacketIndex, extract_frame,
                              extract_gop, gop_bounds, read_packets)
from ..core.errors import ShardError
from ..shards import ShardReader

ARRAYS, BITSTREAM, INDEX = "coviar-uint8", "mpeg4-bitstream", "mpeg4-index"
ENCODINGS = (ARRAYS, BITSTREAM, INDEX)
STRUCTURE = ("frame_type", "gop_index", "gop_pos")     # stored by every storage
GOP_CACHE = 4


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


class MvShard:
    """One ``mv`` shard of any storage. ``video_root``: where the MPEG-4 files of an ``mpeg4-index`` shard
    are (default: their paths recorded relative to the index file's folder). Open lazily (picklable for
    DataLoader workers, each opening its own handles)."""

    def __init__(self, path: str | Path, video_root: str | Path | None = None):
        self.path = Path(path)
        self.video_root = Path(video_root) if video_root is not None else self.path.parent
        self.reader = ShardReader(self.path)
        f = self.reader.file
        if f.attrs.get("modality") != "mv":
            raise ShardError(f"{self.path} is a {_text(f.attrs.get('modality'))!r} shard, not an mv shard")
        self.encoding = _text(f.attrs.get("encoding"))
        if self.encoding not in ENCODINGS:
            raise ShardError(f"{self.path}: mv encoding {self.encoding!r} is not one of {ENCODINGS}")
        self.offset = self.reader.offsets          # read and checked on open
        self.bound = float(json.loads(f.attrs["params"]).get("extract_mv", {}).get("mv_bound", 20.0)) \
            if self.encoding != INDEX else float(f.attrs.get("mv_bound", 20.0))
        self._infos = self._stream_infos(f)
        self._cache: OrderedDict = OrderedDict()
        self._files: dict = {}
        self._videos: dict[int, dict] = {}
        self._pid = os.getpid()
        self.reader.close()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"], state["_files"], state["_videos"] = OrderedDict(), {}, {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pid = os.getpid()

    # -- what the shard offers ------------------------------------------------------------------------
    def _stream_infos(self, f) -> dict[str, dict]:
        """{stream: {"shape": [...], "dtype": str, "attrs": {...}}} of every array a read can give."""
        frames = f["frames"]
        if self.encoding == ARRAYS:
            return {k: {"shape": list(ds.shape[1:]), "dtype": str(ds.dtype),
                        "attrs": {a: ds.attrs[a] for a in ds.attrs}} for k, ds in frames.items()}
        holder = frames["packet"] if self.encoding == BITSTREAM else frames["packet_pos"]
        infos = json.loads(_text(holder.attrs["arrays"]))
        for k in STRUCTURE:
            ds = frames[k]
            infos[k] = {"shape": list(ds.shape[1:]), "dtype": str(ds.dtype), "attrs": {a: ds.attrs[a] for a in ds.attrs}}
        return infos

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._infos)

    def stream_attrs(self, stream: str) -> dict:
        """The attributes of ``stream`` (for a decoded stream: those a ``coviar-uint8`` shard records)."""
        return dict(self._check_stream(stream)["attrs"])

    def stream_shape(self, stream: str) -> tuple[int, ...]:
        """Shape of one frame of ``stream``."""
        return tuple(self._check_stream(stream)["shape"])

    def _check_stream(self, stream: str) -> dict:
        if stream not in self._infos:
            raise ShardError(f"{self.path} has no stream {stream!r} (streams: {sorted(self._infos)})")
        return self._infos[stream]

    def __len__(self) -> int:
        return len(self.offset) - 1

    # -- reading --------------------------------------------------------------------------------------
    def arrays(self, video: int, lo: int, hi: int, streams: Sequence[str]) -> dict[str, np.ndarray]:
        """Frames ``lo:hi`` of video ``video`` (its row in the shard) of each of ``streams``:
        {stream: (hi - lo, ...) array} as a ``coviar-uint8`` shard stores them."""
        a, b = int(self.offset[video]), int(self.offset[video + 1])
        if not 0 <= lo < hi <= b - a:
            raise ShardError(f"{self.path}: frames {lo}:{hi} out of range for video {video} with {b - a} frames")
        for s in streams:
            self._check_stream(s)
        self._own_handles()
        f = self.reader.file
        if self.encoding == ARRAYS:
            return {s: f["frames"][s][a + lo:a + hi] for s in streams}
        out = {s: f["frames"][s][a + lo:a + hi] for s in streams if s in STRUCTURE}
        decoded = [s for s in streams if s not in STRUCTURE]
        if decoded and hi - lo == 1 and set(decoded) <= set(PREVIOUS_ONLY) and not self._cached(video, lo):
            out.update(extract_frame(lambda a, b: self._packets(video, a, b), self._extradata(video),
                                     self._frame_type(video), lo, self.bound))
        elif decoded:
            frame_type = self._frame_type(video)
            bounds = gop_bounds(frame_type)
            first = int(np.searchsorted(bounds, lo, "right") - 1)
            last = int(np.searchsorted(bounds, hi - 1, "right") - 1)
            parts = {s: [] for s in decoded}
            for g in range(first, last + 1):
                frames = self._gop(video, g, hi, frame_type)
                s0 = max(lo, int(bounds[g])) - int(bounds[g])
                s1 = min(hi, int(bounds[g + 1])) - int(bounds[g])
                for s in decoded:
                    parts[s].append(frames[s][s0:s1])
            out.update({s: v[0].copy() if len(v) == 1 else np.concatenate(v) for s, v in parts.items()})
        return {s: out[s] for s in streams}

    def _cached(self, video: int, t: int) -> bool:
        """Whether a cached GOP of ``video`` already holds frame ``t``."""
        for (v, _g), frames in self._cache.items():
            if v == video and frames["first"] <= t < frames["first"] + len(frames["frame_type"]):
                return True
        return False

    def _meta(self, video: int) -> dict:
        """A video's picture types, codec header and (index storage) packet index, read once."""
        m = self._videos.get(video)
        if m is None:
            f = self.reader.file
            a, b = int(self.offset[video]), int(self.offset[video + 1])
            m = {"frame_type": f["frames/frame_type"][a:b],
                 "extradata": bytes.fromhex(_text(f["videos/extradata"][video]))}
            if self.encoding == INDEX:
                fr, v = f["frames"], f["videos"]
                m["index"] = PacketIndex("mpeg4", int(v["width"][video]), int(v["height"][video]), m["extradata"],
                                         int(v["file_size"][video]), fr["packet_pos"][a:b], fr["packet_size"][a:b],
                                         fr["packet_crc32"][a:b], m["frame_type"])
                m["file"] = self.video_root / _text(v["file"][video])
            self._videos[video] = m
        return m

    def _frame_type(self, video: int) -> np.ndarray:
        return self._meta(video)["frame_type"]

    def _gop(self, video: int, g: int, stop: int, frame_type: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays of GOP ``g`` up to at least frame ``stop``, from the cache or decoded."""
        key = (video, g)
        hit = self._cache.get(key)
        bounds = gop_bounds(frame_type)
        need = min(stop, int(bounds[g + 1])) - int(bounds[g])
        if hit is not None and len(hit["frame_type"]) >= need:
            self._cache.move_to_end(key)
            return hit
        frames = extract_gop(lambda a, b: self._packets(video, a, b), self._extradata(video), frame_type, g,
                             stop, self.bound)
        self._cache[key] = {**{k: frames[k] for k in (*ARRAY_STREAMS, "frame_type")}, "first": int(bounds[g])}
        while len(self._cache) > GOP_CACHE:
            self._cache.popitem(last=False)
        return self._cache[key]

    def _extradata(self, video: int) -> bytes:
        return self._meta(video)["extradata"]

    def _packets(self, video: int, lo: int, hi: int) -> list[bytes]:
        f = self.reader.file
        a = int(self.offset[video])
        if self.encoding == BITSTREAM:
            return [p.tobytes() for p in f["frames/packet"][a + lo:a + hi]]
        m = self._meta(video)
        return read_packets(m["file"], m["index"], lo, hi, fd=self._fd(m["file"]))

    def index(self, video: int) -> PacketIndex:
        """The packet index of one video of an ``mpeg4-index`` shard."""
        if self.encoding != INDEX:
            raise ShardError(f"{self.path} is an {self.encoding} shard, not a packet index")
        return self._meta(video)["index"]

    def _own_handles(self) -> None:
        """After a fork, forget the parent's HDF5 handle and file descriptors (never shared)."""
        if self._pid != os.getpid():
            self._files, self._pid, self._cache, self._videos = {}, os.getpid(), OrderedDict(), {}
            self.reader = ShardReader(self.path)

    def _fd(self, path: Path) -> int:
        fd = self._files.get(path)
        if fd is None:
            try:
                fd = self._files[path] = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise IndexMismatchError(f"{path}: no such file; the index {self.path} refers to it (pass "
                                         "video_root= where the re-encoded files are now)") from None
        return fd

    def close(self) -> None:
        self.reader.close()
        for fd in self._files.values():
            os.close(fd)
        self._files = {}


__all__ = ["MvShard", "ENCODINGS", "ARRAYS", "BITSTREAM", "INDEX", "STRUCTURE", "GOP_CACHE"]
