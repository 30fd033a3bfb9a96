"""MPEG-4 Part 2 re-encoding for the compressed domain (CoViAR / DMC-Net §3.1), checked picture by picture.

The frames are **ours, not ffmpeg's**: the source is decoded by :class:`pipeline.media.video.VideoReader`
(a frame folder by :func:`pipeline.media.video.folder_frames`), the decode stage's reader, so the rate
conversion (ffmpeg ``fps`` filter semantics, in Python) picks the same source frame for every output slot as
the RGB shards do: frame ``i`` of the MPEG-4 file is frame ``i`` of the video's RGB frames, and the counts are
equal, on irregular timestamps too. Each frame is resized to ``reencode.size`` with the decode stage's
:func:`pipeline.media.video.resize` (``decode.interpolation``, ``area`` by default: pixel-area averaging when
shrinking, bilinear when enlarging) and piped as raw yuv420p into the ffmpeg binary shipped with
imageio-ffmpeg, which only encodes; every encoder setting is given explicitly (built with ffmpeg-python)::

    ffmpeg -f rawvideo -pix_fmt yuv420p -r 25 -s 340x256 -i pipe: -an -vf setsar=1 -c:v mpeg4 -g 12 -bf 0
           -q:v 1 -sc_threshold 1000000000 -pix_fmt yuv420p -threads 1 -f avi DST

``-sc_threshold 1000000000`` disables scene-cut I-frames, so I-frames are exactly every ``gop`` frames. After
encoding, the picture types are read from the MPEG-4 VOP headers of the packets (no decoding) and the file is
rejected unless it holds exactly the frames it was given and frame ``i`` is an I-frame exactly when
``i % gop == 0`` and every other frame is a P-frame.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import ffmpeg

from ..core.atomic import atomic_path, disk_full_error, says_disk_full
from ..core.config import DecodeConfig, ReencodeConfig
from ..core.errors import InputError, VideoError
from ..media.video import VideoReader, folder_frames, resize, rgb_to_yuv420
from ..media.videoio import ffmpeg_exe

VOP_START = b"\x00\x00\x01\xb6"
VOP_TYPES = "IPBS"
FFMPEG_TIMEOUT_S = 3600      # per video; a hung ffmpeg becomes a recorded failure instead of a stuck job


class ReencodeError(InputError):
    """ffmpeg failed on a video, or the result does not have the required picture structure."""


def reader_config(cfg: ReencodeConfig, interpolation: str | None = None) -> DecodeConfig:
    """The decode settings that give the re-encode's frames: ``cfg.fps`` and ``cfg.size``, the decode
    stage's rate conversion and resize (``interpolation``: ``decode.interpolation``, default ``area``), one
    decoder thread."""
    return dataclasses.replace(DecodeConfig(), fps=cfg.fps, size=tuple(cfg.size), short_side=None, threads=1,
                               interpolation=interpolation or DecodeConfig().interpolation)


def source_frames(src: str | Path, cfg: ReencodeConfig, folder_fps: float | None = None,
                  interpolation: str | None = None) -> Iterator[bytes]:
    """The frames to encode, as yuv420p bytes (I420, ``cfg.size``, BT.601 limited range), one per output
    frame at ``cfg.fps``: exactly the decode stage's frames of ``src`` at that rate (a video file through
    :class:`VideoReader`, a folder of frames at ``folder_fps`` through :func:`folder_frames`). Raises
    :class:`pipeline.core.errors.VideoError` for a source that cannot be decoded."""
    src = Path(src)
    rcfg = reader_config(cfg, interpolation)
    if src.is_dir():
        last, data = -1, b""
        for i, _, img in folder_frames(src, folder_fps or DecodeConfig().folder_fps, cfg.fps):
            if i != last:
                last, data = i, rgb_to_yuv420(resize(img, tuple(rcfg.size), rcfg.interpolation))
            yield data
    else:
        for _, data in VideoReader(src, rcfg).yuv420_frames():
            yield data


def ffmpeg_command(dst: str | Path, cfg: ReencodeConfig) -> list[str]:
    """The ffmpeg argument list (built with ffmpeg-python) that encodes raw yuv420p frames of ``cfg.size``
    read from its standard input, at ``cfg.fps``, to ``dst``."""
    w, h = cfg.size
    rate = Fraction(cfg.fps).limit_denominator(1001)
    inp = ffmpeg.input("pipe:", f="rawvideo", pix_fmt="yuv420p", s=f"{w}x{h}", r=str(rate))
    v = inp.video.filter("setsar", 1)
    out = ffmpeg.output(v, str(dst), an=None, vcodec=cfg.codec, g=cfg.gop, bf=cfg.bframes,
                        threads=1, **{"q:v": cfg.qscale, "sc_threshold": 1000000000, "pix_fmt": "yuv420p",
                                      "f": "avi"})
    return [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *out.get_args()]


def encode_frames(frames: Iterator[bytes], dst: str | Path, cfg: ReencodeConfig, name: str,
                  timeout: float = FFMPEG_TIMEOUT_S) -> int:
    """Pipe raw yuv420p ``frames`` into ffmpeg, which writes ``dst``; return how many were given. ffmpeg's
    messages go to a temporary file (a full pipe cannot block it); a watchdog kills it after ``timeout``
    seconds (the frames' decoding included); an ffmpeg that exits early ends the writing (its return code
    and messages then say why). An error while producing the frames kills ffmpeg and propagates. Raises
    :class:`ReencodeError` naming ``name``."""
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(ffmpeg_command(dst, cfg), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=err)

        def kill() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        n = 0
        try:
            try:
                for data in frames:
                    proc.stdin.write(data)
                    n += 1
                proc.stdin.close()
            except BrokenPipeError:                    # ffmpeg is gone (or was killed): see its return code
                pass
            rc = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:                    # the frames failed: ffmpeg must not outlive the call
                proc.kill()
                proc.wait()
            if not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
        if timed_out.is_set():
            raise ReencodeError(f"{name}: decoding and re-encoding did not finish within {timeout:g} s")
        if rc != 0:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            if says_disk_full(text):
                raise disk_full_error(dst, f"video {name}")     # the disk's fault, not the video's: stop
            lines = text.splitlines()
            raise ReencodeError(f"{name}: ffmpeg failed ({rc}): {' | '.join(lines[-3:])}")
    return n


def picture_types(path: str | Path) -> str:
    """Picture types of an MPEG-4 Part 2 file in decode order, one letter per frame ("IPPP..."), read from
    the VOP headers of the packets without decoding (``vop_coding_type``: I, P, B or S)."""
    import av
    types = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if stream.codec_context.name != "mpeg4":
            raise ReencodeError(f"{Path(path).name}: codec {stream.codec_context.name!r} is not mpeg4")
        for packet in c.demux(stream):
            data = bytes(packet)
            if not data:
                continue
            at = data.find(VOP_START)
            while at >= 0 and at + 4 < len(data):
                types.append(VOP_TYPES[data[at + 4] >> 6])
                at = data.find(VOP_START, at + 4)
    return "".join(types)


def check_gop(types: str, gop: int) -> None:
    """Raise :class:`ReencodeError` unless I-frames are exactly at multiples of ``gop`` and the rest are P."""
    if not types:
        raise ReencodeError("the re-encoded file has no frames")
    for i, t in enumerate(types):
        want = "I" if i % gop == 0 else "P"
        if t != want:
            raise ReencodeError(f"frame {i} is a {t}-frame, expected {want} (GOP {gop}, no B-frames): "
                                f"{types[:48]}")


def reencode_file(src: str | Path, dst: str | Path, cfg: ReencodeConfig, folder_fps: float | None = None,
                  interpolation: str | None = None) -> dict:
    """Re-encode ``src`` (a video file, or a folder of frames at ``folder_fps``) to ``dst`` (written
    atomically) with the decode stage's frames at ``cfg.fps`` (:func:`source_frames`; ``interpolation``:
    ``decode.interpolation``, default ``area``) and check its picture types; return ``{"frames": n, "gops":
    g}``. Raises :class:`ReencodeError` naming the file (a source that does not decode too)."""
    src, dst = Path(src), Path(dst)
    if cfg.size[0] % 2 or cfg.size[1] % 2:
        raise ReencodeError(f"reencode.size {list(cfg.size)} must be even (MPEG-4 4:2:0)")
    if not src.exists():
        raise ReencodeError(f"{src}: no such file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        try:
            given = encode_frames(source_frames(src, cfg, folder_fps, interpolation), tmp, cfg, src.name)
        except VideoError as exc:                      # the source does not decode: this video's failure
            raise ReencodeError(str(exc)) from None
        types = picture_types(tmp)
        if len(types) != given:
            raise ReencodeError(f"{src.name}: ffmpeg wrote {len(types)} frames of the {given} it was given")
        try:
            check_gop(types, cfg.gop)
        except ReencodeError as exc:
            raise ReencodeError(f"{src.name}: {exc}") from None
    return {"frames": len(types), "gops": types.count("I")}


__all__ = ["ReencodeError", "reader_config", "source_frames", "ffmpeg_command", "encode_frames",
           "picture_types", "check_gop", "reencode_file", "VOP_START"]
