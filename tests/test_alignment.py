"""Every modality of a video has the same frames (issue 12, part 3).

The decode stage (RGB shards, and the flow and residual frames computed from them) and the reencode stage
(the MPEG-4 files that motion vectors and residuals come from) take their frames by one rule,
:class:`pipeline.media.video.VideoReader`'s rate conversion: the same number of frames, and frame ``i`` the
same instant. On files with irregular timestamps ffmpeg's own ``fps`` filter, which reencode used before,
chose other frames and other counts (see docs/compressed-domain.md). Where modalities meet (the datasets,
extract_mv and its re-encoded files) a video whose counts disagree is an error naming it.

The fixture videos show their frame number as 8 black or white column blocks (bit ``b`` of ``k`` in block
``b``), which survives lossy codecs and resizing, so the source frame behind every output frame can be read.
"""

from __future__ import annotations

import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.compressed import mpeg4
from pipeline.compressed.mpeg4 import ReencodeError, encode_frames, reencode_file
from pipeline.core.config import DecodeConfig, ExtractMvConfig, ReencodeConfig
from pipeline.core.errors import InputError, ShardError, VideoError
from pipeline.core.manifest import Entry
from pipeline.core.paths import video_filename
from pipeline.data.dataset import ShardClips
from pipeline.media import jpeg
from pipeline.media.video import rgb_to_yuv420
from pipeline.media.videoio import ffmpeg_exe
from pipeline.steps.decode import decode_entry
from pipeline.steps.extract_mv import extract_entry
from tests.conftest import write_timed_video
from tests.shard_fixtures import write_mv_and_resframes, write_shards

W, H = 64, 48
SIZE = (W, H)


def code_frame(k: int, width: int = W, height: int = H) -> np.ndarray:
    """(H, W, 3) uint8: frame number ``k`` (0..255) as 8 column blocks, block ``b`` white when bit ``b``
    is 1."""
    img = np.zeros((height, width, 3), np.uint8)
    for b in range(8):
        if (k >> b) & 1:
            img[:, b * width // 8:(b + 1) * width // 8] = 255
    return img


def read_code(img: np.ndarray) -> int:
    """The frame number shown by :func:`code_frame` (any size; the middle of each block is read)."""
    g = img.mean(axis=2) if img.ndim == 3 else img
    h, w = g.shape
    k = 0
    for b in range(8):
        block = g[h // 4:3 * h // 4, b * w // 8 + w // 32:(b + 1) * w // 8 - w // 32]
        k |= int(block.mean() > 128) << b
    return k


def _raw_to_file(path: Path, n: int, rate: str, args: list[str]) -> Path:
    """Frames 0..n-1 at a constant ``rate``, encoded by the ffmpeg binary with ``args``."""
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{W}x{H}", "-r", rate, "-i", "pipe:", *args, str(path)]
    raw = b"".join(code_frame(k).tobytes() for k in range(n))
    subprocess.run(cmd, input=raw, check=True, capture_output=True)
    return path


def _vfr_mkv(path: Path, pts_ms: list[int]) -> Path:
    """Frame ``k`` at ``pts_ms[k]`` milliseconds (any gaps, repeats allowed), lossless, in Matroska."""
    return write_timed_video(path, [code_frame(k) for k in range(len(pts_ms))], pts_ms, pix_fmt="yuv420p")


# Irregular gaps (ms) of the variable-rate sources: 12 to 105 ms, no pattern (fixed, for reproducible files).
GAPS = [40, 23, 67, 12, 88, 40, 31, 56, 105, 19, 44, 72, 28, 61, 15, 93, 37, 50, 26, 81,
        40, 64, 33, 17, 99, 45, 22, 70, 58, 36, 14, 86, 48, 29, 77, 40, 53, 20, 66, 39]


@pytest.fixture(scope="module")
def irregular(tmp_path_factory) -> dict[str, Path]:
    """Three small files whose timestamps are irregular in the ways real datasets are (2 s or less each):

    * ``cinepak``: a Cinepak AVI of a variable-rate source at a 1 ms time base: 41 frames at irregular
      instants, the gaps as empty chunks, every frame lasting one tick;
    * ``mpeg1``: an MPEG-1 program stream at 29.97 fps, cut short, so the container's duration (estimated
      from the bit rate) is wrong, and starting at 0.53 s as MPEG-PS does;
    * ``vfr``: a variable-rate Matroska file starting at 130 ms, with two frames at one timestamp.
    """
    d = tmp_path_factory.mktemp("irregular")
    pts = [0, *np.cumsum(GAPS).tolist()]
    src = _vfr_mkv(d / "cinepak_src.mkv", pts)
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(src), "-c:v", "cinepak",
                    "-fps_mode", "passthrough", "-enc_time_base", "1/1000", str(d / "cinepak.avi")],
                   check=True, capture_output=True)
    full = _raw_to_file(d / "mpeg1_full.mpg", 60, "30000/1001",
                        ["-c:v", "mpeg1video", "-q:v", "2", "-g", "12", "-f", "mpeg"])
    data = full.read_bytes()
    (d / "mpeg1.mpg").write_bytes(data[:int(len(data) * 0.7)])
    vfr_pts = [130 + p for p in pts[:30]]
    vfr_pts[12] = vfr_pts[11]                  # two frames at one timestamp
    _vfr_mkv(d / "vfr.mkv", vfr_pts)
    return {"cinepak": d / "cinepak.avi", "mpeg1": d / "mpeg1.mpg", "vfr": d / "vfr.mkv"}


def _decode_codes(path: Path, root: Path | None = None, kind: str = "video",
                  folder_fps: float = 12.0) -> list[int]:
    """The decode stage's RGB frames of a file (or frame folder) at 25 fps, 64x48, as frame numbers."""
    cfg = DecodeConfig(fps=25.0, short_side=None, folder_fps=folder_fps, size=SIZE, interpolation="area",
                       jpeg_quality=95, threads=1)
    entry = Entry(path.stem, path.name, "a", 0, "train")
    r = decode_entry(entry, str(root or path.parent), kind, cfg)
    return [read_code(jpeg.decode(b)) for b in r.frames["rgb"]]


def _mpeg4_codes(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [read_code(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def test_the_fixtures_are_irregular(irregular):
    with av.open(str(irregular["cinepak"])) as c:
        assert c.streams.video[0].codec_context.name == "cinepak"
        pts = [f.pts for f in c.decode(video=0)]
    assert len(set(np.diff(pts).tolist())) > 10                # irregular instants, not a constant rate
    with av.open(str(irregular["mpeg1"])) as c:
        declared = c.duration / 1e6
        n = sum(1 for _ in c.decode(video=0))
    assert abs(declared - n / (30000 / 1001)) > 0.1            # the container's duration is wrong
    with av.open(str(irregular["vfr"])) as c:
        pts = [f.pts for f in c.decode(video=0)]
    assert pts[0] == 130 and pts[11] == pts[12]


@pytest.mark.parametrize("kind", ["cinepak", "mpeg1", "vfr"])
def test_reencode_has_the_decode_stages_frames(irregular, kind, tmp_path):
    """RGB frame i and MPEG-4 frame i show the same source frame, and the counts are equal. (With ffmpeg's
    fps filter choosing reencode's frames: 50 MPEG-4 frames for the 49 RGB frames of the Cinepak file; 44
    for the 45 of the cut MPEG-1 file, 17 of them another instant; 6 of the 37 frames of the Matroska file
    another instant.)"""
    rgb = _decode_codes(irregular[kind])
    info = reencode_file(irregular[kind], tmp_path / "x.avi", ReencodeConfig(size=list(SIZE)))
    mp4 = _mpeg4_codes(tmp_path / "x.avi")
    assert info["frames"] == len(mp4) == len(rgb)
    assert mp4 == rgb
    assert len(set(rgb)) > len(rgb) // 2                      # the frames really are read back


def test_frame_folders_are_reencoded_like_decode(tmp_path):
    """A frame folder (12 fps, Something-Something v1) gives the same frames in both stages."""
    folder = tmp_path / "folders" / "clip"
    folder.mkdir(parents=True)
    for k in range(17):
        (folder / f"{k + 1:05d}.jpg").write_bytes(jpeg.encode(code_frame(k), 95))
    rgb = _decode_codes(folder, root=tmp_path / "folders", kind="frames")
    info = reencode_file(folder, tmp_path / "clip.avi", ReencodeConfig(size=list(SIZE)), folder_fps=12.0)
    assert info["frames"] == len(rgb) == 35                   # 17 / 12 s at 25 fps = 35.4
    assert _mpeg4_codes(tmp_path / "clip.avi") == rgb


def test_a_dataset_refuses_modalities_of_different_lengths(tmp_path):
    # consistent: rgb and mv have N frames, flow and residual frames N - 1 (pairs i -> i+1)
    ok = {**write_shards(tmp_path / "ok", [20, 30]), **write_mv_and_resframes(tmp_path / "ok", [20, 30])}
    ds = ShardClips({k: [p] for k, p in ok.items()}, "rgb+flow+mv+resframe", mode="test", length=4)
    assert [v.num_frames for v in ds.videos] == [19, 29]
    assert [dict(v.frames) for v in ds.videos][1] == {"rgb": 30, "flow": 29, "mv": 30, "resframe": 29}
    # the re-encoded video of v1 has one frame more than its RGB frames
    mv = write_mv_and_resframes(tmp_path / "mv", [20, 31])
    with pytest.raises(ShardError, match=r"video 'v1': rgb 30 frames .*mv 31 frames") as exc:
        ShardClips({"rgb": [ok["rgb"]], "mv": [mv["mv"]]}, "rgb+mv", mode="test", length=4)
    assert "'v0'" not in str(exc.value) and "1 video(s)" in str(exc.value)
    # flow of another decode: 30 pairs are 31 frames, the RGB shard has 30
    other = write_shards(tmp_path / "other", [20, 31])
    with pytest.raises(ShardError, match=r"video 'v1': rgb 30 frames .*flow 30 pairs, so 31 frames"):
        ShardClips({"rgb": [ok["rgb"]], "flow": [other["flow"]]}, "rgb+flow", mode="train", length=4)
    with pytest.raises(ShardError, match=r"'v1': mv 30 frames .*resframe 30 pairs, so 31 frames"):
        ShardClips({"mv": [ok["mv"]], "resframe": [mv["resframe"]]}, "mv+resframe", length=4)


def test_extract_mv_refuses_a_file_of_another_length(irregular, tmp_path):
    folder = tmp_path / "shard-00000"
    entry = Entry("clip", "clip.mkv", "a", 0, "train")
    info = reencode_file(irregular["vfr"], folder / video_filename("clip"), ReencodeConfig(size=list(SIZE)))
    cfg = ExtractMvConfig()
    r = extract_entry(entry, folder, cfg, SIZE, 25.0, num_frames=info["frames"])
    assert len(r.frames["frame_type"]) == info["frames"]
    n = info["frames"]
    with pytest.raises(InputError, match=rf"'clip': .* has {n} frames, the reencode stage recorded {n + 1}"):
        extract_entry(entry, folder, cfg, SIZE, 25.0, num_frames=info["frames"] + 1)


# -- the pipe into ffmpeg never hangs ---------------------------------------------------------------------

@contextmanager
def _deadline(seconds: int):
    def fail(*_):
        raise TimeoutError(f"no answer within {seconds} s: the pipe into ffmpeg is stuck")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _frames(n: int, fail_at: int | None = None, pause: float = 0.0):
    for k in range(n):
        if k == fail_at:
            raise VideoError("decoding src.mkv failed: broken packet")
        if pause:
            time.sleep(pause)
        yield rgb_to_yuv420(code_frame(k % 256))


def test_a_source_that_fails_midway_stops_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(mpeg4, "source_frames", lambda *a, **k: _frames(50, fail_at=20))
    with _deadline(60), pytest.raises(ReencodeError, match="src.mkv failed: broken packet"):
        reencode_file(tmp_path, tmp_path / "out" / "x.avi", ReencodeConfig(size=list(SIZE)))
    assert not list((tmp_path / "out").iterdir())            # no file, no temporary


def test_an_ffmpeg_that_exits_at_once_is_reported(tmp_path, monkeypatch):
    real = mpeg4.ffmpeg_command
    monkeypatch.setattr(mpeg4, "ffmpeg_command",
                        lambda dst, cfg: [a if a != cfg.codec else "no_such_encoder" for a in real(dst, cfg)])
    cfg = ReencodeConfig(size=list(SIZE))
    with _deadline(60), pytest.raises(ReencodeError, match=r"x: ffmpeg failed \(\d+\): .*Encoder not found"):
        encode_frames(_frames(2000), tmp_path / "x.avi", cfg, "x")       # 9 MB: more than a pipe holds


def test_a_hung_encode_times_out(tmp_path):
    with _deadline(60), pytest.raises(ReencodeError, match="x: decoding and re-encoding did not finish within 0.3 s"):
        encode_frames(_frames(20, pause=0.1), tmp_path / "x.avi", ReencodeConfig(size=list(SIZE)), "x",
                      timeout=0.3)
