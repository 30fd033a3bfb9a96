"""Reading videos (PyAV) and frame folders into RGB frames at a fixed rate and size.

The rate conversion follows ffmpeg's ``fps`` filter (rounding "near"): every input frame gets the output slot
``round(t * fps)``; output slot ``n`` shows the last input frame whose slot is ``<= n`` (earlier frames in the
same slot are dropped, gaps are filled by repeating); the last frame lasts until ``round(end * fps)``, where
``end`` is its timestamp plus its duration. A 10 s clip at 30 fps gives 250 frames; a 12.5 fps clip shows
every frame twice.

This is the one resampling rule of the package: the decode stage (RGB shards) and the reencode stage (the
MPEG-4 files that motion vectors and residuals come from) both take their frames from :class:`VideoReader`
(:meth:`VideoReader.jpeg_frames`, :meth:`VideoReader.yuv420_frames`) and frame folders from
:func:`frame_folder_indices`, so frame ``i`` of every modality of a video is the same instant and every
modality has the same number of frames. (ffmpeg's own ``fps`` filter, behind ``ffmpeg -vf fps=25``, sees
other timestamps: the ffmpeg command line shifts them by the file's start time, glues timestamp
discontinuities and keeps the later of two frames with one timestamp, so on irregular files it picks other
frames and other counts; nothing uses it.)
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import cv2
import numpy as np

from ..core.config import DecodeConfig
from ..core.errors import ConfigError, VideoError

_INTERP = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def resample_indices(times: Sequence[Fraction], end: Fraction, fps: Fraction | float) -> list[int]:
    """Input frame index shown at each output slot (ffmpeg ``fps`` filter semantics).

    ``times``: presentation times of the input frames in seconds, increasing; ``end``: end of the last frame.
    Returns a list of length ``round(end * fps) - round(times[0] * fps)`` (at least 1 when there is a frame).
    """
    if not times:
        return []
    fps = Fraction(fps).limit_denominator(1_000_000) if not isinstance(fps, Fraction) else fps
    base = _round_half_up(Fraction(times[0]) * fps)
    slots = [_round_half_up(Fraction(t) * fps) - base for t in times]
    total = max(_round_half_up(Fraction(end) * fps) - base, slots[-1] + 1 if len(times) == 1 else 1)
    out: list[int] = []
    j = 0
    for n in range(total):
        while j + 1 < len(slots) and slots[j + 1] <= n:
            j += 1
        out.append(j)
    return out


# The longest side, in pixels, of a decoded frame. At the default short side (256, MARS) real footage stays
# far below it (16:9 gives 456x256, a 3.6:1 panorama 922x256), and it still admits a 32:1 strip (the 192x6
# video of tests/test_bad_inputs.py: 8192x256, 2.1 Mpx, as many pixels as a 1080p frame) and any source kept
# at its own size up to 8K UHD (7680x4320). Past it frames come from blowing up slivers (a 1000x2 banner at
# short side 256: 128000x256, 98 MB an RGB frame, beyond JPEG's 65,500-pixel limit, and TV-L1 on such
# frames takes gigabytes) or from sources larger than any action dataset holds.
MAX_OUTPUT_SIDE = 8192


def output_size(width: int, height: int, cfg: DecodeConfig, name: str | None = None) -> tuple[int, int]:
    """Target (width, height): ``cfg.size`` if set, else short side ``cfg.short_side`` with the aspect kept
    and both sides rounded to even numbers; ``short_side`` None keeps the source size.

    Neither side may exceed :data:`MAX_OUTPUT_SIDE`: a source whose frames would is refused with a
    :class:`VideoError` naming it (``name``), its size, the output size and the limit; a configured size or
    short side over the limit is a :class:`ConfigError` (every video would be refused)."""
    if cfg.size:
        w, h = int(cfg.size[0]), int(cfg.size[1])
        if max(w, h) > MAX_OUTPUT_SIDE:
            raise ConfigError(f"the configured output size {w}x{h} is over the limit of {MAX_OUTPUT_SIDE} "
                              f"pixels a side")
        return w, h
    if cfg.short_side and cfg.short_side > MAX_OUTPUT_SIDE:
        raise ConfigError(f"the configured short side {cfg.short_side} is over the limit of "
                          f"{MAX_OUTPUT_SIDE} pixels a side")
    if not cfg.short_side:
        w, h = width, height
        how = "kept at its size (decode.short_side null)"
    else:
        scale = cfg.short_side / min(width, height)
        w = max(2, 2 * round(width * scale / 2))
        h = max(2, 2 * round(height * scale / 2))
        how = f"resized to {w}x{h} (short side {cfg.short_side})"
    if max(w, h) > MAX_OUTPUT_SIDE:
        aspect = max(width, height) / min(width, height)
        raise VideoError(f"{name or 'a video'} of {width}x{height} would be {how}, over the limit of "
                         f"{MAX_OUTPUT_SIDE} pixels a side (aspect {aspect:.3g}:1)")
    return w, h


def resize(img: np.ndarray, size: tuple[int, int], interpolation: str = "area") -> np.ndarray:
    """Resize an (H, W[, C]) uint8 image to ``size`` = (width, height); INTER_AREA is used only to shrink."""
    w, h = size
    if img.shape[1] == w and img.shape[0] == h:
        return img
    mode = _INTERP[interpolation]
    if mode == cv2.INTER_AREA and (w > img.shape[1] or h > img.shape[0]):
        mode = cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=mode)


@dataclass
class DecodedVideo:
    """Frames of one video after rate conversion and resizing."""

    frames: list[np.ndarray]    # (H, W, 3) uint8 RGB, at ``fps``
    fps: float                  # output frame rate
    source_fps: float           # average rate of the source
    source_frames: int          # frames decoded from the source
    rotation: int               # display rotation applied (degrees counter-clockwise)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the output frames."""
        return self.frames[0].shape[1], self.frames[0].shape[0]


# Finding truncated files. FFmpeg keeps what it can read of a file that ends early and says nothing to its
# caller (a Matroska file cut in half gives its first frames and an end of file), so a cut file would be
# stored with part of its frames and no message. The containers that declare the size of the element
# holding the frames tell a cut from a complete file: an AVI 'movi' list (every RIFF, OpenDML's included),
# an MP4/MOV 'mdat' box (each fragment's too), a Matroska cluster. A file ending inside one of them has
# lost frames, wherever the cut falls (between two frames too); one ending after its last frames lacks
# only an index (AVI's idx1, Matroska's cues), which FFmpeg does without: it keeps all its frames and is
# accepted. This reads a few bytes at a few offsets: the headers of the top-level elements (Matroska's are
# walked only when its segment declares more bytes than the file has). MPEG program and transport streams
# (.mpg, .vob, .ts, .mts) declare no length: they are made to be cut anywhere, a cut one cannot be told from
# a shorter recording, and the decoder conceals a partial last picture, so they are kept with the frames
# they hold; so are elementary streams and any other container.
_EBML, _SEGMENT, _CLUSTER = 0x1A45DFA3, 0x18538067, 0x1F43B675


def _read_at(f, pos: int, n: int) -> bytes:
    f.seek(pos)
    return f.read(n)


def _ebml_vint(buf: bytes, i: int, marker: bool) -> tuple[int | None, int] | None:
    """The EBML variable-size integer at ``buf[i:]``: ``(value, length)``; value None for an unknown size
    (all value bits set); None if it is malformed or cut. ``marker``: keep the length marker (element IDs)."""
    if i >= len(buf) or buf[i] == 0:
        return None
    n = 9 - buf[i].bit_length()
    if i + n > len(buf):
        return None
    value = buf[i] if marker else buf[i] & (0xFF >> n)
    for b in buf[i + 1:i + n]:
        value = (value << 8) | b
    unknown = not marker and value == (1 << (7 * n)) - 1
    return (None if unknown else value), n


def _ebml_element(f, pos: int) -> tuple[int, int, int | None] | None:
    """(ID, header length, data size or None if unknown) of the EBML element at ``pos``; None if its header
    is malformed or cut."""
    buf = _read_at(f, pos, 12)
    ident = _ebml_vint(buf, 0, True)
    if ident is None or ident[1] > 4:
        return None
    size = _ebml_vint(buf, ident[1], False)
    if size is None:
        return None
    return ident[0], ident[1] + size[1], size[0]


def _matroska_cut(f, file_size: int) -> tuple[str, int, int] | None:
    head = _ebml_element(f, 0)
    if head is None or head[0] != _EBML or head[2] is None:
        return None
    seg_pos = head[1] + head[2]
    seg = _ebml_element(f, seg_pos)
    if seg is None or seg[0] != _SEGMENT:
        return None
    pos = seg_pos + seg[1]
    if seg[2] is not None and pos + seg[2] <= file_size:
        return None                     # the segment is whole (a finished file: one look)
    while pos < file_size:              # a segment cut (or written live, of unknown size): walk its children
        el = _ebml_element(f, pos)
        if el is None or el[2] is None:
            return None                 # an element of unknown size (live clusters): nothing more to tell
        end = pos + el[1] + el[2]
        if el[0] == _CLUSTER and end > file_size:
            return "Matroska cluster", pos, end
        pos = end
    return None


_UNKNOWN_32 = 0xFFFFFFFF     # a RIFF size left unset by a writer that could not seek back


def _avi_cut(f, file_size: int) -> tuple[str, int, int] | None:
    pos = 0
    while pos + 12 <= file_size:        # RIFF 'AVI ', then OpenDML's RIFF 'AVIX' chunks
        head = _read_at(f, pos, 12)
        if head[:4] != b"RIFF":
            return None
        riff_size = struct.unpack("<I", head[4:8])[0]
        riff_end = pos + 8 + riff_size
        child = pos + 12
        while child + 12 <= min(riff_end, file_size):
            chunk = _read_at(f, child, 12)
            size = struct.unpack("<I", chunk[4:8])[0]
            if size == _UNKNOWN_32:
                return None             # written to a pipe: the writer could not go back to fill in sizes
            if chunk[:4] == b"LIST" and chunk[8:12] == b"movi":
                if size and child + 8 + size > file_size:
                    return "AVI 'movi' list", child, child + 8 + size
            child += 8 + size + (size & 1)
        if riff_size in (0, _UNKNOWN_32):
            return None
        pos = riff_end + (riff_size & 1)
    return None


def _mp4_cut(f, file_size: int) -> tuple[str, int, int] | None:
    pos = 0
    while pos + 8 <= file_size:
        head = _read_at(f, pos, 16)
        size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
        if not all(32 <= b < 127 for b in kind):
            return None                 # not a box: trailing bytes after the last one
        if size == 1 and len(head) == 16:
            size = struct.unpack(">Q", head[8:16])[0]
            if size < 16:
                return None             # malformed (a 64-bit size must cover its 16-byte header)
        elif size < 8:
            return None                 # 0: the box runs to the end of the file; else malformed
        if kind == b"mdat" and pos + size > file_size:
            return "MP4 'mdat' box", pos, pos + size
        pos += size
    return None


def find_cut(path: str | Path, format_name: str) -> tuple[str, int, int] | None:
    """Where a video file of the demuxer ``format_name`` (PyAV's ``container.format.name``) was cut:
    ``(element, start, end)`` of the element holding frames that ends past the end of the file, or None for
    a whole file, one missing only its index, or a format that declares no sizes (see above)."""
    path = Path(path)
    finder = (_matroska_cut if format_name.startswith("matroska") else _avi_cut if format_name == "avi" else
              _mp4_cut if format_name.startswith("mov,") else None)
    if finder is None:
        return None
    with path.open("rb") as f:
        return finder(f, path.stat().st_size)


def _iter_source(path: Path, threads: int) -> Iterator[tuple[av.VideoFrame, int, Fraction, Fraction]]:
    """Yield (frame, ticks, unit, rate) for every decoded frame of the first video stream.

    The frame's time is ``ticks * unit`` seconds: ``unit`` is the stream's time base (constant), so times can
    be compared and rounded in integers. Frames without a timestamp continue from the previous one at
    ``rate``.
    """
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"cannot open {path.name}: {exc}") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path.name} has no video stream")
        cut = find_cut(path, container.format.name)
        if cut is not None:
            element, start, end = cut
            raise VideoError(f"{path.name} is truncated: the file has {path.stat().st_size} bytes, but "
                             f"its {element} at byte {start} runs to byte {end}; the frames after the cut "
                             f"are lost (an interrupted download or copy?)")
        stream = container.streams.video[0]
        if threads != 1:
            stream.thread_type = "AUTO"
            stream.thread_count = threads
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        unit = Fraction(stream.time_base) if stream.time_base else 1 / rate
        step = max(1, round(1 / (rate * unit)))    # ticks per frame at the average rate
        ticks = -step
        try:
            for frame in container.decode(stream):
                ticks = frame.pts if frame.pts is not None else ticks + step
                yield frame, ticks, unit, rate
        except av.FFmpegError as exc:
            raise VideoError(f"decoding {path.name} failed: {exc}") from None


class VideoReader:
    """Stream the frames of one video file at ``cfg.fps`` and size, without holding the video in memory.

    Iterating yields ``(source_index, frame)`` pairs: ``frame`` is (H, W, 3) uint8 RGB (BGR if ``bgr``), and a
    repeated ``source_index`` means the same source frame is shown again (callers may reuse its encoding).
    :meth:`jpeg_frames` yields JPEG bytes instead, by the cheapest exact path. Frames that fall in the same
    output slot are dropped before any conversion. After iteration, ``fps``, ``source_fps``,
    ``source_frames``, ``rotation`` and ``size`` describe the result. Raises :class:`VideoError` for unreadable
    files, files without a video stream, truncated files (:func:`find_cut`, before any frame), zero frames,
    and frames that would exceed :data:`MAX_OUTPUT_SIDE` (:func:`output_size`, at the first frame).
    """

    def __init__(self, path: str | Path, cfg: DecodeConfig, bgr: bool = False):
        self.path = Path(path)
        self.cfg = cfg
        self.pixel_format = "bgr24" if bgr else "rgb24"
        self.fps: float = cfg.fps or 0.0
        self.source_fps = 0.0
        self.source_frames = 0
        self.rotation = 0
        self.size: tuple[int, int] | None = None

    def _set_size(self, frame: av.VideoFrame) -> tuple[int, int]:
        if self.size is None:
            w, h = (frame.height, frame.width) if self.rotation in (90, 270) else (frame.width, frame.height)
            self.size = output_size(w, h, self.cfg, self.path.name)
        return self.size

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for index, frame in self.av_frames():
            # threads=1: swscale on this thread (PyAV's default gives each frame's new swscale context a
            # thread pool of its own: more CPU a frame, and threads the stage does not ask for)
            img = frame.to_ndarray(format=self.pixel_format, threads=1)
            if self.rotation:
                img = np.rot90(img, k=self.rotation // 90)
            yield index, np.ascontiguousarray(resize(img, self._set_size(frame), self.cfg.interpolation))

    def jpeg_frames(self, quality: int) -> Iterator[tuple[int, bytes]]:
        """``(source_index, JPEG bytes)`` per output frame; a repeated source frame reuses its encoding."""
        last, data = -1, b""
        for index, frame in self.av_frames():
            if index != last:
                last, data = index, frame_to_jpeg(frame, self._set_size(frame), self.rotation,
                                                  self.cfg.interpolation, quality)
            yield index, data

    def yuv420_frames(self) -> Iterator[tuple[int, bytes]]:
        """``(source_index, yuv420p bytes)`` per output frame, for an encoder's raw input: planar Y, U, V
        (I420) of the output size (both sides even), BT.601 limited range (:func:`frame_to_yuv420`). The
        frames are those of iteration and :meth:`jpeg_frames` (the same rate conversion, rotation and
        resizing); a repeated source frame reuses its bytes."""
        last, data = -1, b""
        for index, frame in self.av_frames():
            if index != last:
                last, data = index, frame_to_yuv420(frame, self._set_size(frame), self.rotation,
                                                    self.cfg.interpolation)
            yield index, data

    def av_frames(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(source_index, decoded frame)`` per output frame, after rate conversion, before any conversion."""
        if not self.path.exists():
            raise VideoError(f"{self.path} does not exist")
        if self.path.is_file() and self.path.stat().st_size == 0:     # the commonest bad input: a failed download
            raise VideoError(f"{self.path.name} is empty (0 bytes)")
        fps = Fraction(self.cfg.fps).limit_denominator(1001) if self.cfg.fps else None
        base = None
        out_n = 0                      # next output slot to fill
        prev = None                    # (index, frame, ticks, duration ticks) of the last kept input frame
        last = None                    # ticks of the last kept frame
        n_kept = 0
        interval = None                # smallest gap between kept frames, in ticks
        num = den = 1
        for frame, ticks, unit, rate in _iter_source(self.path, self.cfg.threads):
            if last is None:
                self.source_fps = float(rate)
                if fps is not None:    # slot = round_half_up(ticks * unit * fps) = (2 ticks num + den) // 2 den
                    num, den = unit.numerator * fps.numerator, unit.denominator * fps.denominator
            elif ticks <= last:
                continue  # repeated or out-of-order timestamp: dropped, as ffmpeg's fps filter does
            else:
                interval = ticks - last if interval is None else min(interval, ticks - last)
            last = ticks
            self.rotation = int(getattr(frame, "rotation", 0) or 0) % 360
            n_kept += 1
            self.source_frames = n_kept
            if fps is None:
                yield n_kept - 1, frame
                continue
            slot = (2 * ticks * num + den) // (2 * den)
            base = slot if base is None else base
            if prev is not None:
                # the previous frame covers slots [out_n, slot - base); zero slots: it is dropped unconverted
                for _ in range(slot - base - out_n):
                    yield prev[0], prev[1]
                    out_n += 1
            prev = (n_kept - 1, frame, ticks, frame.duration or 0)
        if not n_kept:
            raise VideoError(f"{self.path.name} has no decodable video frames")
        if fps is None:
            self.fps = self.source_fps
            return
        step = prev[3] or interval or max(1, round(den / (num * self.source_fps) * float(fps)))
        end_slot = (2 * (prev[2] + step) * num + den) // (2 * den)
        for _ in range(max(end_slot - base - out_n, 1 if out_n == 0 else 0)):
            yield prev[0], prev[1]


# Limited-range (MPEG) to full-range (JPEG) lookup tables for BT.601 YCbCr.
_Y_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
_C_FULL = np.clip(np.round((np.arange(256) - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)
_BT601_OR_UNSPECIFIED = {2, 5, 6}   # AVCOL_SPC_UNSPECIFIED, BT470BG, SMPTE170M


def _plane(frame: av.VideoFrame, i: int, h: int, w: int) -> np.ndarray:
    p = frame.planes[i]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w]


def _resized_planes(frame: av.VideoFrame, size: tuple[int, int], rotation: int, interpolation: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes of an 8-bit 4:2:0 frame, rotated and resized to ``size`` (Y) and half of it."""
    w, h = size
    fw, fh = frame.width, frame.height
    cw, ch = (fw + 1) // 2, (fh + 1) // 2
    planes = [_plane(frame, 0, fh, fw), _plane(frame, 1, ch, cw), _plane(frame, 2, ch, cw)]
    if rotation:
        planes = [np.rot90(p, k=rotation // 90) for p in planes]
    return (resize(planes[0], (w, h), interpolation), resize(planes[1], (w // 2, h // 2), interpolation),
            resize(planes[2], (w // 2, h // 2), interpolation))


def frame_to_jpeg(frame: av.VideoFrame, size: tuple[int, int], rotation: int, interpolation: str,
                  quality: int) -> bytes:
    """Rotate, resize to ``size`` = (width, height) and JPEG-encode one decoded frame.

    8-bit 4:2:0 BT.601 frames (nearly all of UCF101, HMDB51, Kinetics' SD clips) go straight from their YCbCr
    planes to JPEG's YCbCr planes: no RGB round trip, which roughly halves the cost; limited (MPEG) range is
    expanded to JPEG's full range by lookup tables. Other frames (BT.709, 4:2:2/4:4:4, RGB, 10-bit, odd
    output sizes) go through BGR and OpenCV's encoder.
    """
    from . import jpeg

    w, h = size
    fmt = frame.format.name
    if fmt in ("yuv420p", "yuvj420p") and w % 2 == 0 and h % 2 == 0 and \
            int(getattr(frame, "colorspace", 2)) in _BT601_OR_UNSPECIFIED:
        y, u, v = _resized_planes(frame, size, rotation, interpolation)
        if not (fmt == "yuvj420p" or int(getattr(frame, "color_range", 0)) == 2):
            y, u, v = cv2.LUT(y, _Y_FULL), cv2.LUT(u, _C_FULL), cv2.LUT(v, _C_FULL)
        return jpeg.encode_yuv420(y, u, v, quality)
    img = frame.to_ndarray(format="bgr24", threads=1)
    if rotation:
        img = np.rot90(img, k=rotation // 90)
    return jpeg.encode(np.ascontiguousarray(resize(img, (w, h), interpolation)), quality, bgr=True)


# Full-range (JPEG) to limited-range (MPEG) lookup tables for BT.601 YCbCr (the inverse of the above).
_Y_LIMITED = np.clip(np.round(np.arange(256) * 219 / 255 + 16), 0, 255).astype(np.uint8)
_C_LIMITED = np.clip(np.round((np.arange(256) - 128) * 224 / 255 + 128), 0, 255).astype(np.uint8)


def rgb_to_yuv420(img: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB with H, W even -> yuv420p bytes (I420: Y, then U and V at half size), BT.601
    limited range (OpenCV's ``COLOR_RGB2YUV_I420``, what swscale gives for the same pixels)."""
    if img.shape[0] % 2 or img.shape[1] % 2:
        raise ValueError(f"yuv420p needs even sides, got {img.shape[1]}x{img.shape[0]}")
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2YUV_I420).tobytes()


def frame_to_yuv420(frame: av.VideoFrame, size: tuple[int, int], rotation: int, interpolation: str) -> bytes:
    """Rotate and resize one decoded frame to ``size`` = (width, height), both even, as yuv420p bytes
    (I420, BT.601 limited range: what an MPEG-4 encoder is fed).

    8-bit 4:2:0 frames (``yuv420p``, ``yuvj420p``) are resized plane by plane with :func:`resize`, as
    :func:`frame_to_jpeg` does: no colour conversion, the source's YCbCr kept (full range is mapped to
    limited range by lookup tables). Other frames (RGB and palettes such as Cinepak's, 4:2:2/4:4:4, 10-bit)
    go through RGB (:func:`rgb_to_yuv420`).
    """
    w, h = size
    if w % 2 or h % 2:
        raise ValueError(f"yuv420p needs an even size, got {w}x{h}")
    fmt = frame.format.name
    if fmt in ("yuv420p", "yuvj420p"):
        y, u, v = _resized_planes(frame, size, rotation, interpolation)
        if fmt == "yuvj420p" or int(getattr(frame, "color_range", 0)) == 2:
            y, u, v = cv2.LUT(y, _Y_LIMITED), cv2.LUT(u, _C_LIMITED), cv2.LUT(v, _C_LIMITED)
        return b"".join(np.ascontiguousarray(p).tobytes() for p in (y, u, v))
    img = frame.to_ndarray(format="rgb24", threads=1)
    if rotation:
        img = np.rot90(img, k=rotation // 90)
    return rgb_to_yuv420(resize(img, (w, h), interpolation))


def decode_video(path: str | Path, cfg: DecodeConfig) -> DecodedVideo:
    """Decode a whole video to memory (see :class:`VideoReader`; for tests and small clips)."""
    reader = VideoReader(path, cfg)
    frames = [img for _, img in reader]
    return DecodedVideo(frames, reader.fps, reader.source_fps, reader.source_frames, reader.rotation)


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files of a frame folder in name order (``00001.jpg``, ``00002.jpg``, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"frame folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise VideoError(f"frame folder {folder.name} has no image files")
    return files


def read_folder_frame(path: Path, folder: Path) -> tuple[bytes, np.ndarray]:
    """One image file of a frame folder: its bytes and the decoded (H, W, 3) uint8 RGB image. An unreadable
    or undecodable file is a :class:`VideoError` naming it and its folder."""
    from . import jpeg

    try:
        data = path.read_bytes()
        return data, jpeg.decode(data)
    except (OSError, ValueError) as exc:
        raise VideoError(f"frame {path.name} of {folder.name} cannot be read: {exc}") from None


def folder_frames(folder: str | Path, folder_fps: float, fps: float | None,
                  files: Sequence[Path] | None = None) -> Iterator[tuple[int, bytes, np.ndarray]]:
    """``(file index, file bytes, (H, W, 3) uint8 RGB image)`` per output frame of a frame folder read at
    ``folder_fps`` and shown at ``fps`` (:func:`frame_folder_indices`, the decode stage's rule); each file is
    read and decoded once (a repeated index repeats its values). ``files``: the folder's
    :func:`list_frame_files`, when the caller has them. Raises :class:`VideoError` for a file that cannot be
    read or decoded, or whose size is not the first's."""
    folder = Path(folder)
    files = list_frame_files(folder) if files is None else files
    first, last, data, img = None, -1, b"", None
    for i in frame_folder_indices(len(files), folder_fps, fps):
        if i != last:
            data, img = read_folder_frame(files[i], folder)
            first = img.shape if first is None else first
            if img.shape != first:
                raise VideoError(f"frame {files[i].name} of {folder.name} is {img.shape[1]}x{img.shape[0]}, "
                                 f"the first is {first[1]}x{first[0]}")
            last = i
        yield i, data, img


def frame_folder_indices(n: int, source_fps: float, fps: float | None) -> list[int]:
    """Which of ``n`` frames at ``source_fps`` are shown at ``fps`` (None: all, unchanged)."""
    if fps is None:
        return list(range(n))
    src = Fraction(source_fps).limit_denominator(1001)
    times = [Fraction(i) / src for i in range(n)]
    return resample_indices(times, Fraction(n) / src, Fraction(fps).limit_denominator(1001))
