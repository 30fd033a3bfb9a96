"""The compressed-domain arrays of any frame, decoded from its GOP's MPEG-4 packets alone.

An MPEG-4 Part 2 file as ``reencode`` writes it (I- and P-frames only, a P-frame predicted from the frame
before it) splits into GOPs that decode on their own: frame ``t`` of a GOP needs the packets from the GOP's
I-frame to ``t`` and nothing else (at most 12 with GOP 12). This module

- indexes a file once without decoding it (:func:`index_file`: each packet's byte position, size, CRC-32 and
  keyframe flag, the codec's header bytes), reads packets back from the file by that index, refusing a file
  that no longer matches it (:func:`read_packets`);
- decodes a run of packets that starts at an I-frame with a fresh decoder (:func:`decode_packets`);
- turns frames ``lo:hi`` of a video into exactly the arrays the ``extract_mv`` stage stores for them
  (:func:`extract_range`, the table in :mod:`.extract`), GOP by GOP, from any source of packets: the
  packets kept in a ``bitstream`` mv shard, or the MPEG-4 files themselves through their index.

Because every array of a frame depends only on its GOP's frames (the accumulated modes restart at each
I-frame, the first P-frame refers to the I-frame), decoding from the GOP's I-frame gives the same arrays,
bit for bit, as the stage's one pass over the whole video (tests compare every frame).

FFmpeg reads up to 64 bytes past the end of a packet (``AV_INPUT_BUFFER_PADDING_SIZE``) and expects them to
be zero. PyAV's ``Packet(bytes)`` leaves them uninitialised (measured with PyAV 18.1: 55 of 250 frames of a
test clip decoded differently, and differently from run to run), so packets are handed over with 64 zero
bytes appended.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..core.errors import InputError
from .backends import DecodedFrame, NoMotionVectorsError, frame_of
from .encoding import BOUND
from .extract import I_FRAME, P_FRAME, ArrayPool, GopError, extract

PADDING = bytes(64)          # FFmpeg's AV_INPUT_BUFFER_PADDING_SIZE, zeros
ARRAY_STREAMS = ("mv", "mv_acc", "residual", "residual_acc")


class IndexMismatchError(InputError):
    """An MPEG-4 file does not match the index written for it (changed, truncated or replaced)."""


@dataclass
class PacketIndex:
    """Where one video's packets lie in its file, in decode order (= display order: no B-frames).

    ``pos``/``size``: (N,) int64/int32 byte offset and length of packet i in the file; ``crc32``: (N,) uint32
    of its bytes; ``frame_type``: (N,) uint8, 0 = I (a keyframe packet), 1 = P; ``extradata``: the codec's
    header bytes (the MPEG-4 VOL header); ``file_size``: bytes of the whole file."""

    codec: str
    width: int
    height: int
    extradata: bytes
    file_size: int
    pos: np.ndarray
    size: np.ndarray
    crc32: np.ndarray
    frame_type: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.pos)


def gop_numbers(frame_type: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gop_index, gop_pos) of (N,) frame types (0 = I): a GOP starts at every I-frame. A first frame that is
    not an I-frame is a :class:`GopError`."""
    ft = np.asarray(frame_type)
    if len(ft) and ft[0] != I_FRAME:
        raise GopError("the first frame is a P-frame, not an I-frame")
    gop_index = np.cumsum(ft == I_FRAME).astype(np.int32) - 1
    starts = np.flatnonzero(ft == I_FRAME)
    gop_pos = (np.arange(len(ft)) - starts[gop_index]).astype(np.int32) if len(ft) else np.zeros(0, np.int32)
    return gop_index, gop_pos


def index_file(path: str | Path) -> PacketIndex:
    """Index an MPEG-4 Part 2 file by demuxing it (nothing is decoded: about 0.02 ms a frame). The keyframe
    flag of a packet marks an I-frame; a file of another codec is an :class:`InputError`."""
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (was it re-encoded? run `prep-cli reencode`)")
    pos, size, crc, ftype = [], [], [], []
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise InputError(f"{path.name}: no video stream")
        s = c.streams.video[0]
        cc = s.codec_context
        if cc.name != "mpeg4":
            raise InputError(f"{path.name}: codec {cc.name!r} is not MPEG-4 Part 2; re-encode it with "
                             "`prep-cli reencode` first")
        codec, width, height, extradata = cc.name, cc.width, cc.height, bytes(cc.extradata or b"")
        for p in c.demux(s):
            if not p.size:
                continue
            data = bytes(p)
            if p.pos is None or p.pos < 0:
                raise InputError(f"{path.name}: the container gives no byte position for packet {len(pos)}")
            pos.append(p.pos)
            size.append(p.size)
            crc.append(zlib.crc32(data))
            ftype.append(I_FRAME if p.is_keyframe else P_FRAME)
    index = PacketIndex(codec, width, height, extradata, path.stat().st_size, np.array(pos, np.int64),
                        np.array(size, np.int32), np.array(crc, np.uint32), np.array(ftype, np.uint8))
    if not index.num_frames:
        raise GopError(f"{path.name}: the video has no frames")
    gop_numbers(index.frame_type)              # a first frame that is not an I-frame is refused here
    return index


def read_packets(path: str | Path, index: PacketIndex, lo: int, hi: int, fd: int | None = None) -> list[bytes]:
    """Packets ``lo:hi`` of the file at ``path`` by its ``index``; each is checked against its CRC-32, and the
    file's size against the index's, so a file changed since it was indexed is an :class:`IndexMismatchError`
    naming it (never wrong arrays). ``fd``: an open descriptor of ``path`` to read from (positional reads:
    safe to share across forked processes)."""
    path = Path(path)
    own = fd is None
    if own:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise IndexMismatchError(f"{path}: no such file; its index refers to it") from None
    try:
        size = os.fstat(fd).st_size
        if size != index.file_size:
            raise IndexMismatchError(f"{path.name}: {size} bytes, its index says {index.file_size}: the file "
                                     "changed since it was indexed; rerun `prep-cli reencode` for its shard")
        out = []
        for i in range(lo, hi):
            data = os.pread(fd, int(index.size[i]), int(index.pos[i]))
            if zlib.crc32(data) != int(index.crc32[i]):
                raise IndexMismatchError(f"{path.name}: packet {i} does not match its index (CRC-32): the file "
                                         "changed since it was indexed; rerun `prep-cli reencode` for its shard")
            out.append(data)
        return out
    finally:
        if own:
            os.close(fd)


def decode_packets(packets: Sequence[bytes], extradata: bytes, codec: str = "mpeg4",
                   keep_from: int = 0) -> Iterator[DecodedFrame]:
    """Decode packets that start at an I-frame with a fresh single-threaded decoder (``export_mvs``); one
    :class:`DecodedFrame` per frame from frame ``keep_from`` on, as :func:`.backends.iter_pyav` gives them
    for the whole file (the frames before it are decoded, as the later ones need, but not converted)."""
    import av

    ctx = av.CodecContext.create(codec, "r")
    if extradata:
        ctx.extradata = extradata
    ctx.options = {"flags2": "+export_mvs"}
    ctx.thread_type = "NONE"
    ctx.thread_count = 1
    i = 0
    for data in (*packets, None):
        for frame in ctx.decode(None if data is None else av.Packet(data + PADDING)):
            decoded = frame_of(frame) if i >= keep_from else None     # freed once dropped
            i += 1
            del frame
            if decoded is not None:
                yield decoded


def gop_bounds(frame_type: np.ndarray) -> np.ndarray:
    """(G + 1,) int64: GOP g is frames ``bounds[g]:bounds[g + 1]``."""
    ft = np.asarray(frame_type)
    return np.append(np.flatnonzero(ft == I_FRAME), len(ft)).astype(np.int64)


def extract_gop(packets: Callable[[int, int], list[bytes]], extradata: bytes, frame_type: np.ndarray,
                g: int, stop: int | None = None, bound: float = BOUND, pool: ArrayPool | None = None
                ) -> dict[str, np.ndarray]:
    """Every array (the table in :mod:`.extract`) of GOP ``g``'s frames from its I-frame up to ``stop``
    (a frame number of the video; None: the GOP's end), decoding only those packets.

    ``packets(a, b)``: the video's packets ``a:b`` (bytes); ``frame_type``: (N,) uint8 of the whole video
    (0 = I). Returns {stream: (frames, ...) array}; with a ``pool`` the arrays are valid until the next call
    with it. ``gop_index`` is the video's (``g``), not the GOP's own 0. Packets that decode to another number
    of frames or other picture types than ``frame_type`` says are an :class:`IndexMismatchError`."""
    bounds = gop_bounds(frame_type)
    if not 0 <= g < len(bounds) - 1:
        raise ValueError(f"GOP {g} outside a video of {len(bounds) - 1} GOPs")
    a, end = int(bounds[g]), int(bounds[g + 1])
    b = end if stop is None else min(max(stop, a + 1), end)
    video = extract(decode_packets(packets(a, b), extradata), bound=bound, expected_frames=b - a, pool=pool,
                    require_vectors=False)          # the whole video was checked when it was stored
    got = video.frames["frame_type"]
    if len(got) != b - a or not np.array_equal(got, frame_type[a:b]):
        raise IndexMismatchError(f"GOP {g} (frames {a}:{b}) decodes to {len(got)} frames of types "
                                 f"{got.tolist()}, the index says {np.asarray(frame_type[a:b]).tolist()}")
    video.frames["gop_index"][:] = g
    return video.frames


#: the arrays of a P-frame that depend on the frame before it alone (not on the GOP's I-frame)
PREVIOUS_ONLY = ("mv", "residual")


def extract_frame(packets: Callable[[int, int], list[bytes]], extradata: bytes, frame_type: np.ndarray,
                  t: int, bound: float = BOUND) -> dict[str, np.ndarray]:
    """``mv`` and ``residual`` of frame ``t`` alone ({stream: (1, ...) array}), as :func:`extract_gop` gives
    them, for less: the GOP is decoded from its I-frame to ``t`` (the decoder needs every packet), but only
    frames ``t - 1`` and ``t`` are converted and computed, since neither array refers further back. A DMC-Net
    sample (one P-frame's vectors and residual) costs about half of :func:`extract_gop`'s time this way."""
    bounds = gop_bounds(frame_type)
    g = int(np.searchsorted(bounds, t, "right") - 1)
    a = int(bounds[g])
    if t == a:                                  # an I-frame: the stored fill values
        frames = extract_gop(packets, extradata, frame_type, g, t + 1, bound)
        return {k: frames[k][-1:].copy() for k in PREVIOUS_ONLY}
    pair = list(decode_packets(packets(a, t + 1), extradata, keep_from=t - 1 - a))
    if len(pair) != 2 or pair[1].pict_type != "P":
        raise IndexMismatchError(f"frames {t - 1}:{t + 1} decode to {len(pair)} frames of types "
                                 f"{[f.pict_type for f in pair]}, the index says a P-frame at {t}")
    pair[0].pict_type = "I"                     # as the reference of frame t: only its pixels are used
    video = extract(iter(pair), bound=bound, expected_frames=2, require_vectors=False)
    return {k: video.frames[k][1:].copy() for k in PREVIOUS_ONLY}


def extract_range(packets: Callable[[int, int], list[bytes]], extradata: bytes, frame_type: np.ndarray,
                  lo: int, hi: int, bound: float = BOUND, streams: Sequence[str] = ARRAY_STREAMS
                  ) -> dict[str, np.ndarray]:
    """The arrays ``streams`` of frames ``lo:hi`` of one video, decoding only from the I-frame of each GOP
    they touch to the last frame needed in it (:func:`extract_gop`). Returns {stream: (hi - lo, ...) array},
    fresh arrays."""
    n = len(frame_type)
    if not 0 <= lo < hi <= n:
        raise ValueError(f"frames {lo}:{hi} outside a video of {n} frames")
    if hi - lo == 1 and set(streams) <= set(PREVIOUS_ONLY):
        return {k: v for k, v in extract_frame(packets, extradata, frame_type, lo, bound).items() if k in streams}
    bounds = gop_bounds(frame_type)
    first, last = np.searchsorted(bounds, lo, "right") - 1, np.searchsorted(bounds, hi - 1, "right") - 1
    parts: dict[str, list[np.ndarray]] = {k: [] for k in streams}
    for g in range(first, last + 1):
        frames = extract_gop(packets, extradata, frame_type, g, hi, bound)
        a = int(bounds[g])
        for k in streams:
            parts[k].append(frames[k][max(lo, a) - a:])
    return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}


def scan_file(path: str | Path) -> tuple[PacketIndex, list[bytes], list[np.ndarray]]:
    """One demux and decode pass over an MPEG-4 Part 2 file for a ``bitstream`` mv shard: its index, its
    packets and its I-frames ((H, W, 3) uint8 RGB, one per GOP). The decode checks what reading the packets
    later relies on, with the errors of :func:`.extract.extract`: I- and P-frames only, an I-frame first, one
    frame per packet, keyframe packets exactly at the I-frames, and motion vectors exported for P-frames."""
    import av

    path = Path(path)
    index_fields: dict[str, list] = {"pos": [], "size": [], "crc": [], "ftype": []}
    packets: list[bytes] = []
    iframes: list[np.ndarray] = []
    types: list[str] = []
    vectors = 0
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise InputError(f"{path.name}: no video stream")
        s = c.streams.video[0]
        cc = s.codec_context
        if cc.name != "mpeg4":
            raise InputError(f"{path.name}: codec {cc.name!r} is not MPEG-4 Part 2; re-encode it with "
                             "`prep-cli reencode` first")
        cc.options = {"flags2": "+export_mvs"}
        s.thread_type = "NONE"
        cc.thread_count = 1
        extradata = bytes(cc.extradata or b"")
        for p in c.demux(s):
            if p.size:
                data = bytes(p)
                packets.append(data)
                index_fields["pos"].append(p.pos if p.pos is not None else -1)
                index_fields["size"].append(p.size)
                index_fields["crc"].append(zlib.crc32(data))
                index_fields["ftype"].append(I_FRAME if p.is_keyframe else P_FRAME)
            for frame in s.decode(p):
                fr = frame_of(frame)       # the frame is freed once dropped (no cycle left)
                del frame
                types.append(fr.pict_type)
                if fr.pict_type == "I":
                    iframes.append(fr.image)
                elif fr.pict_type == "P":
                    vectors += fr.has_side_data
        width, height = cc.width, cc.height
    ftype = np.array(index_fields["ftype"], np.uint8)
    if not types:
        raise GopError(f"{path.name}: the video has no frames")
    bad = sorted({t for t in types if t not in ("I", "P")})
    if bad:
        raise GopError(f"{path.name}: {'/'.join(bad)}-frames: only I- and P-frames are supported (re-encode "
                       "with `prep-cli reencode`, which uses no B-frames)")
    if types[0] != "I":
        raise GopError(f"{path.name}: the first frame is a P-frame, not an I-frame")
    decoded = np.array([I_FRAME if t == "I" else P_FRAME for t in types], np.uint8)
    if len(decoded) != len(ftype) or not np.array_equal(decoded, ftype):
        raise GopError(f"{path.name}: {len(ftype)} packets ({int((ftype == I_FRAME).sum())} keyframes) decode "
                       f"to {len(decoded)} frames ({int((decoded == I_FRAME).sum())} I-frames): the GOPs cannot "
                       "be read on their own")
    if vectors == 0 and (decoded == P_FRAME).any():
        raise NoMotionVectorsError(f"{path.name}: {int((decoded == P_FRAME).sum())} P-frames but no motion "
                                   "vectors were exported")
    index = PacketIndex("mpeg4", width, height, extradata, path.stat().st_size,
                        np.array(index_fields["pos"], np.int64), np.array(index_fields["size"], np.int32),
                        np.array(index_fields["crc"], np.uint32), ftype)
    return index, packets, iframes


__all__ = ["PADDING", "ARRAY_STREAMS", "IndexMismatchError", "PacketIndex", "gop_numbers", "index_file",
           "read_packets", "decode_packets", "gop_bounds", "extract_gop", "extract_frame", "extract_range", "scan_file", "PREVIOUS_ONLY"]
