"""Decoding at 25 fps: ffmpeg `fps` filter semantics, sizes and their limit, colours, rotation, bad inputs
(truncated files among them)."""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.core.config import DecodeConfig
from pipeline.core.errors import ConfigError
from pipeline.media.video import (MAX_OUTPUT_SIDE, VideoError, decode_video, find_cut, frame_folder_indices,
                                  output_size, resample_indices)
from pipeline.media.videoio import ffmpeg_exe, set_rotation, write_video
from tests.conftest import counter_frames

KEEP = DecodeConfig(short_side=None)


def red_sequence(frames) -> list[int]:
    return [int(round(f[..., 0].mean())) for f in frames]


def ffmpeg_fps25(path, height, width) -> list[int]:
    """What ffmpeg's own fps=25 filter shows, as the red value of each output frame."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", "fps=25", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)
    return [int(round(f[..., 0].mean())) for f in frames]


@pytest.mark.parametrize("fps,n,expected", [(30, 300, 250), (24, 48, 50), (12.5, 10, 20), (60, 30, 12)])
def test_frame_counts_match_ffmpeg_fps_filter(make_video, fps, n, expected):
    path = make_video(f"v{fps}.mkv", n, fps)
    d = decode_video(path, KEEP)
    assert len(d.frames) == expected
    assert red_sequence(d.frames) == ffmpeg_fps25(path, 48, 64)
    assert d.fps == 25.0 and d.source_fps == pytest.approx(fps) and d.source_frames == n


def test_half_rate_clip_duplicates_every_frame(make_video):
    d = decode_video(make_video("slow.mkv", 6, Fraction(25, 2)), KEEP)
    assert red_sequence(d.frames) == [0, 0, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50]


def test_lossless_pixels_survive_exactly(make_video):
    d = decode_video(make_video("exact.mkv", 5, 25), KEEP)
    assert len(d.frames) == 5
    for i, f in enumerate(d.frames):
        assert f.dtype == np.uint8 and f.shape == (48, 64, 3)
        assert np.all(f[..., 0] == 10 * i) and np.all(f[..., 1] == 200)
        assert np.array_equal(f[0, :, 2], np.linspace(0, 255, 64, dtype=np.uint8))


def test_keep_source_rate(make_video):
    d = decode_video(make_video("keep.mkv", 9, 30), DecodeConfig(fps=None, short_side=None))
    assert red_sequence(d.frames) == [10 * i for i in range(9)]


def test_resample_indices_pure():
    times = [Fraction(i, 30) for i in range(300)]
    idx = resample_indices(times, Fraction(10), 25)
    assert len(idx) == 250 and idx[:6] == [0, 1, 2, 4, 5, 6] and idx[-1] == 299
    assert resample_indices([Fraction(0)], Fraction(1, 30), 25) == [0]
    assert resample_indices([], Fraction(0), 25) == []
    assert frame_folder_indices(6, 12.0, None) == list(range(6))
    assert len(frame_folder_indices(12, 12.0, 25.0)) == 25


@pytest.mark.parametrize("w,h,short,size,expected", [
    (320, 240, 256, None, (342, 256)),
    (240, 320, 256, None, (256, 342)),
    (63, 47, 256, None, (344, 256)),
    (1920, 1080, 256, None, (456, 256)),
    (320, 240, 256, (340, 256), (340, 256)),
    (63, 47, None, None, (63, 47)),
])
def test_output_size(w, h, short, size, expected):
    out = output_size(w, h, DecodeConfig(short_side=short, size=size))
    assert out == expected
    if size is None and short:
        assert out[0] % 2 == 0 and out[1] % 2 == 0 and min(out) == short


def test_output_size_has_a_limit():
    """No side over MAX_OUTPUT_SIDE (8192): a 32:1 strip at short side 256 is exactly at it; a 1000x2 banner
    (128000x256) or a source kept at a size over it is the video's error, naming it, both sizes and the limit;
    a configured size or short side over it is a configuration error."""
    assert MAX_OUTPUT_SIDE == 8192
    assert output_size(192, 6, DecodeConfig()) == (8192, 256)                  # the default short side, 256
    assert output_size(6, 192, DecodeConfig()) == (256, 8192)
    assert output_size(7680, 4320, DecodeConfig(short_side=None)) == (7680, 4320)      # 8K UHD kept
    with pytest.raises(VideoError, match=r"^banner\.mkv of 1000x2 would be resized to 128000x256 \(short "
                                         r"side 256\), over the limit of 8192 pixels a side "
                                         r"\(aspect 500:1\)$"):
        output_size(1000, 2, DecodeConfig(), "banner.mkv")
    with pytest.raises(VideoError, match=r"^a video of 2x194 would be resized to 256x24832 .*limit of 8192"):
        output_size(2, 194, DecodeConfig())
    with pytest.raises(VideoError, match=r"^big\.mp4 of 15360x8640 would be kept at its size "
                                         r"\(decode\.short_side null\), over the limit of 8192"):
        output_size(15360, 8640, DecodeConfig(short_side=None), "big.mp4")
    with pytest.raises(ConfigError, match=r"output size 9000x100 is over the limit of 8192"):
        output_size(64, 48, DecodeConfig(size=(9000, 100)))
    with pytest.raises(ConfigError, match=r"short side 9000 is over the limit of 8192"):
        output_size(64, 48, DecodeConfig(short_side=9000))


def test_a_sliver_is_refused_before_any_frame_is_blown_up(make_video):
    path = make_video("banner.mkv", 3, 25, height=2, width=1000)
    with pytest.raises(VideoError, match=r"^banner\.mkv of 1000x2 would be resized to 128000x256"):
        decode_video(path, DecodeConfig())
    assert decode_video(path, KEEP).size == (1000, 2)


def test_resize_short_side_and_odd_source(make_video):
    d = decode_video(make_video("odd.mkv", 3, 25, height=47, width=63), DecodeConfig(short_side=128))
    assert d.size == (172, 128) and d.frames[0].shape == (128, 172, 3)
    d = decode_video(make_video("fixed.mkv", 3, 25), DecodeConfig(size=(340, 256)))
    assert d.size == (340, 256)


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_metadata_is_applied_like_ffmpeg(tmp_path, degrees):
    img = np.zeros((40, 64, 3), np.uint8)
    img[:10, :20] = 255  # a white block in the top-left corner
    src = write_video(tmp_path / "r.mp4", [img] * 3, 25, "libx264rgb")
    rotated = set_rotation(src, tmp_path / f"r{degrees}.mp4", degrees)
    d = decode_video(rotated, KEEP)
    h, w = (64, 40) if degrees % 180 else (40, 64)
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    ref = np.frombuffer(out, np.uint8).reshape(h, w, 3)
    assert d.frames[0].shape == (h, w, 3)
    assert np.abs(d.frames[0].astype(int) - ref.astype(int)).max() <= 2
    assert d.rotation == degrees % 360


def test_one_frame_video(make_video):
    d = decode_video(make_video("one.mkv", 1, 30), KEEP)
    assert len(d.frames) == 1


def test_bad_inputs_raise_video_error(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(VideoError):
        decode_video(corrupt, KEEP)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(VideoError):
        decode_video(empty, KEEP)
    with pytest.raises(VideoError, match="does not exist"):
        decode_video(tmp_path / "missing.avi", KEEP)
    audio = tmp_path / "audio.wav"
    with av.open(str(audio), "w") as out:
        s = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    with pytest.raises(VideoError, match="no video stream"):
        decode_video(audio, KEEP)


def test_yuv_fast_path_matches_the_rgb_path(tmp_path):
    """4:2:0 BT.601 frames are JPEG-encoded straight from their planes: colours are as close to the source as
    the RGB route's (PyAV RGB conversion, then JPEG), including the range conversion."""
    from pipeline.media import jpeg
    from pipeline.media.video import VideoReader

    rng = np.random.default_rng(0)
    base = (rng.random((3, 4, 3)) * 255).astype(np.uint8)
    frames = [np.kron(np.roll(base, i, axis=1), np.ones((16, 16, 1), np.uint8)) for i in range(4)]  # 48x64
    path = write_video(tmp_path / "yuv.mp4", frames, 25, "libx264", {"crf": "0"})
    with av.open(str(path)) as c:
        assert next(c.decode(video=0)).format.name == "yuv420p"  # so the fast path is taken
    cfg = DecodeConfig(size=(64, 48))
    fast = [jpeg.decode(b) for _, b in VideoReader(path, cfg).jpeg_frames(95)]
    slow = [jpeg.decode(jpeg.encode(img, 95)) for _, img in VideoReader(path, cfg)]
    assert len(fast) == len(slow) == 4
    for src, a, b in zip(frames, fast, slow):
        err_fast = np.abs(a.astype(int) - src).mean()
        err_slow = np.abs(b.astype(int) - src).mean()
        assert err_fast < 6.0 and err_fast <= err_slow + 0.5  # saturated 4:2:0 edges: JPEG alone gives ~3.7
        bias = (a.astype(float) - src).reshape(-1, 3).mean(0)
        assert np.all(np.abs(bias) < 1.5)  # no colour or range shift
    big = [jpeg.decode(b) for _, b in VideoReader(path, DecodeConfig(short_side=96)).jpeg_frames(95)]
    assert big[0].shape == (96, 128, 3)


def test_unsupported_codec_is_a_video_error(tmp_path):
    """An AVI whose FourCC names a codec no decoder knows (FFV1 renamed to ZZZ9)."""
    path = write_video(tmp_path / "u.avi", [np.zeros((16, 16, 3), np.uint8)] * 3, 25, "ffv1")
    path.write_bytes(path.read_bytes().replace(b"FFV1", b"ZZZ9"))
    with pytest.raises(VideoError, match="u.avi"):
        decode_video(path, KEEP)


# ----------------------------------------------------------------------------------------------------------
# Truncated files


def _cut(src, dst, n: int):
    data = src.read_bytes()
    dst.write_bytes(data[:n] if n >= 0 else data[:len(data) + n])
    return dst


def _with_audio(path):
    """2 s of 64x48 H.264 and 2.5 s of AAC (the audio longer than the video, as often)."""
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2.5",
                    "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(path)],
                   check=True, capture_output=True)
    return path


@pytest.mark.parametrize("kind,element", [
    ("mkv", "Matroska cluster"),                # FFV1 in Matroska cut in half
    ("webm", "Matroska cluster"),               # VP9 in WebM cut at 80 %
    ("mkv+audio", "Matroska cluster"),
    ("avi", "AVI 'movi' list"),                 # MPEG-4 in AVI, cut inside the 8th frame's chunk
    ("avi between frames", "AVI 'movi' list"),  # ... exactly where the 8th frame's chunk starts
    ("mp4 faststart", "MP4 'mdat' box"),        # the index first, packets cut off
    ("mp4+audio faststart", "MP4 'mdat' box"),
])
def test_a_truncated_file_is_refused_naming_it(tmp_path, kind, element):
    """Each of these was decoded with the frames before the cut, silently, or (some cuts of MP4 and FFV1)
    failed on the partial last packet with FFmpeg's 'Invalid data'. Now the element holding the frames that
    runs past the end of the file is found before any frame is decoded."""
    if kind == "mkv":
        full = write_video(tmp_path / "full.mkv", counter_frames(10), 25, "ffv1")
        cut = _cut(full, tmp_path / "x.mkv", full.stat().st_size // 2)
    elif kind == "webm":
        full = write_video(tmp_path / "full.webm", counter_frames(10), 25, "libvpx-vp9")
        cut = _cut(full, tmp_path / "x.webm", full.stat().st_size * 8 // 10)
    elif kind.startswith("avi"):
        full = write_video(tmp_path / "full.avi", counter_frames(10), 25, "mpeg4")
        data = full.read_bytes()
        movi, idx1 = data.index(b"movi"), data.index(b"idx1")
        chunks = [i for i in range(movi, idx1) if data.startswith(b"00dc", i)]
        assert len(chunks) == 10
        cut = _cut(full, tmp_path / "x.avi", chunks[7] + (0 if "between" in kind else 20))
    elif "audio" in kind:
        src = _with_audio(tmp_path / ("src.mp4" if "mp4" in kind else "full.mkv"))
        if "mp4" in kind:
            full = tmp_path / "full.mp4"
            subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(src), "-c", "copy",
                            "-movflags", "+faststart", str(full)], check=True, capture_output=True)
        else:
            full = src
        cut = _cut(full, tmp_path / f"x{full.suffix}", full.stat().st_size * 6 // 10)
    else:
        src = write_video(tmp_path / "src.mp4", counter_frames(10), 25, "mpeg4")
        full = tmp_path / "full.mp4"
        subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(src), "-c", "copy",
                        "-movflags", "+faststart", str(full)], check=True, capture_output=True)
        cut = _cut(full, tmp_path / "x.mp4", full.stat().st_size * 8 // 10)
    assert len(decode_video(full, KEEP).frames) > 0
    with pytest.raises(VideoError, match=rf"^{re.escape(cut.name)} is truncated: the file has "
                                         rf"{cut.stat().st_size} bytes, but its {element} at byte \d+ runs "
                                         rf"to byte \d+; the frames after the cut are lost"):
        decode_video(cut, KEEP)
    with av.open(str(cut)) as c, av.open(str(full)) as f:    # FFmpeg alone: fewer frames, or an error
        try:
            n = sum(1 for _ in c.decode(video=0))
        except av.FFmpegError:
            n = -1
        assert n < sum(1 for _ in f.decode(video=0))


def test_a_file_missing_only_its_index_keeps_all_its_frames(tmp_path):
    """An AVI cut inside its idx1 index, after the last frame, and a Matroska file cut inside its cues:
    FFmpeg reads every frame without the index, so nothing is lost and they are decoded, not refused."""
    avi = write_video(tmp_path / "full.avi", counter_frames(10), 25, "mpeg4")
    mkv = write_video(tmp_path / "full.mkv", counter_frames(10), 25, "ffv1")
    avi_cut = _cut(avi, tmp_path / "idx1.avi", avi.read_bytes().index(b"idx1") + 40)
    mkv_cut = _cut(mkv, tmp_path / "cues.mkv", mkv.read_bytes().rindex(bytes.fromhex("1C53BB6B")) + 6)
    for full, cut, fmt in ((avi, avi_cut, "avi"), (mkv, mkv_cut, "matroska,webm")):
        assert find_cut(full, fmt) is None and find_cut(cut, fmt) is None
        assert red_sequence(decode_video(cut, KEEP).frames) == red_sequence(decode_video(full, KEEP).frames)
        assert len(decode_video(cut, KEEP).frames) == 10


def test_streams_without_a_declared_length_are_kept_when_cut(tmp_path):
    """An MPEG transport stream (and a program stream, tests/test_alignment.py) declares no length: a cut one
    is a shorter stream, decoded with the frames it holds."""
    full = write_video(tmp_path / "full.ts", counter_frames(10), 25, "mpeg2video")
    cut = _cut(full, tmp_path / "x.ts", full.stat().st_size * 6 // 10)
    with av.open(str(cut)) as c:
        assert c.format.name == "mpegts" and find_cut(cut, c.format.name) is None
    assert decode_video(cut, KEEP).source_frames == 6


def _piped(tmp_path, fmt: str, suffix: str, args: list[str]):
    """A 30-frame clip that ffmpeg wrote to a pipe (it cannot go back to fill in sizes)."""
    from pipeline.media.videoio import ffmpeg_exe
    out = tmp_path / f"pipe{suffix}"
    with out.open("wb") as f:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1.2",
                        *args, "-f", fmt, "-"], stdout=f, check=True, timeout=60)
    return out


def test_a_whole_file_written_to_a_pipe_is_not_called_truncated(tmp_path):
    # ffmpeg (and other streaming writers) leave an AVI's RIFF and 'movi' sizes at 0xFFFFFFFF on a pipe
    path = _piped(tmp_path, "avi", ".avi", ["-c:v", "mpeg4"])
    with av.open(str(path)) as c:
        fmt = c.format.name
    assert find_cut(path, fmt) is None
    assert len(decode_video(path, DecodeConfig(fps=None, short_side=None)).frames) == 30


def test_a_malformed_64bit_box_size_does_not_hang_the_check(tmp_path):
    # a box of 64-bit size 0 after the real ones: FFmpeg reads every frame; the check must end (it looped)
    import struct
    src = tmp_path / "a.mp4"
    from pipeline.media.videoio import ffmpeg_exe
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1.2",
                    "-c:v", "mpeg4", "-movflags", "+faststart", str(src)], check=True, timeout=60)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(src.read_bytes() + struct.pack(">I4sQ", 1, b"free", 0))
    code = ("import sys; from pipeline.media.video import find_cut; "
            "print(find_cut(sys.argv[1], 'mov,mp4,m4a,3gp,3g2,mj2'))")
    import sys
    run = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "None", run.stderr
