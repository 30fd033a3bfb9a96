"""MPEG-4 Part 2 re-encoding for the compressed domain (CoViAR / DMC-Net §3.1), checked picture by picture.

ffmpeg (the binary shipped with imageio-ffmpeg) is driven through ffmpeg-python; every encoder setting is
given explicitly::

    ffmpeg -i SRC -an -vf fps=25,scale=340:256,setsar=1 -c:v mpeg4 -g 12 -bf 0 -q:v 1
           -sc_threshold 1000000000 -pix_fmt yuv420p -f avi DST

``-sc_threshold 1000000000`` disables scene-cut I-frames, so I-frames are exactly every ``gop`` frames. After
encoding, the picture types are read from the MPEG-4 VOP headers of the packets (no decoding) and the file is
rejected unless frame ``i`` is an I-frame exactly when ``i % gop == 0`` and every other frame is a P-frame.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import ffmpeg

from ..core.atomic import atomic_path
from ..core.config import DecodeConfig, ReencodeConfig
from ..core.errors import InputError
from ..media.video import list_frame_files
from ..media.videoio import ffmpeg_exe

VOP_START = b"\x00\x00\x01\xb6"
VOP_TYPES = "IPBS"
FFMPEG_TIMEOUT_S = 3600      # per video; a hung ffmpeg becomes a recorded failure instead of a stuck job


class ReencodeError(InputError):
    """ffmpeg failed on a video, or the result does not have the required picture structure."""


def ffmpeg_command(src: str | Path, dst: str | Path, cfg: ReencodeConfig, folder_fps: float | None = None
                   ) -> list[str]:
    """The ffmpeg argument list (built with ffmpeg-python) for one file, or for a folder of frames
    (``00001.jpg``, ... in name order, read at ``folder_fps``: Something-Something v1 is 12 fps)."""
    w, h = cfg.size
    folder_fps = folder_fps or DecodeConfig().folder_fps
    rate = Fraction(cfg.fps).limit_denominator(1001)
    src = Path(src)
    if src.is_dir():
        suffix = list_frame_files(src)[0].suffix
        pattern = str(src / f"*{suffix}").replace("[", "[[]")
        inp = ffmpeg.input(pattern, pattern_type="glob", framerate=str(Fraction(folder_fps).limit_denominator(1001)))
    else:
        inp = ffmpeg.input(str(src))
    v = inp.video.filter("fps", fps=str(rate)).filter("scale", w, h).filter("setsar", 1)
    out = ffmpeg.output(v, str(dst), an=None, vcodec=cfg.codec, g=cfg.gop, bf=cfg.bframes,
                        threads=1, **{"q:v": cfg.qscale, "sc_threshold": 1000000000, "pix_fmt": "yuv420p",
                                      "f": "avi"})
    return [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *out.get_args()]


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


def reencode_file(src: str | Path, dst: str | Path, cfg: ReencodeConfig, folder_fps: float | None = None
                  ) -> dict:
    """Re-encode ``src`` (a video file, or a folder of frames at ``folder_fps``) to ``dst`` (written
    atomically) and check its picture types; return ``{"frames": n, "gops": g}``. Raises
    :class:`ReencodeError` naming the file."""
    src, dst = Path(src), Path(dst)
    if cfg.size[0] % 2 or cfg.size[1] % 2:
        raise ReencodeError(f"reencode.size {list(cfg.size)} must be even (MPEG-4 4:2:0)")
    if not src.exists():
        raise ReencodeError(f"{src}: no such file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        cmd = ffmpeg_command(src, tmp, cfg, folder_fps)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ReencodeError(f"{src.name}: ffmpeg did not finish within {FFMPEG_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()
            raise ReencodeError(f"{src.name}: ffmpeg failed ({proc.returncode}): {' | '.join(err[-3:])}")
        types = picture_types(tmp)
        try:
            check_gop(types, cfg.gop)
        except ReencodeError as exc:
            raise ReencodeError(f"{src.name}: {exc}") from None
    return {"frames": len(types), "gops": types.count("I")}


__all__ = ["ReencodeError", "ffmpeg_command", "picture_types", "check_gop", "reencode_file", "VOP_START"]
