"""Bad inputs (issue 12, part 5), each made for real and run through the real stages.

One dataset mixes good videos with every kind of bad one: empty, truncated (MP4 twice, Matroska, AVI, and an
MPEG-TS stream, which is kept), text named ``.mp4``, audio only, a codec FFmpeg has no decoder for, 1 and 2
frames, odd and extreme sizes, rotation metadata, variable frame rate, spaces and non-ASCII in the path, a
file deleted after the manifest was made. (A 1000x2 banner, whose frames at the default short side would be
128000x256, gets its own run: this dataset keeps the sources' sizes.)
decode -> extract_flow / resframe and reencode -> extract_mv run on its two shards (once, for the module);
each test then checks one promise of the stage contract (docs/architecture.md):

* a refused video is in the failure report of the stage that refused it, with a message naming it, and in
  the report of every stage downstream, with the upstream stage named; no video is silently missing;
* the other videos complete, with the frame counts and sizes their source gives;
* strict mode stops at the first bad video with that message and leaves no output;
* nothing is written outside the results folder;
* manifest-level problems (duplicate ids, missing files, paths escaping the root) are refused when the
  manifest is built or read, naming the entries.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest
import yaml

from pipeline.core.config import Settings, resolve
from pipeline.core.errors import ManifestError, StageError
from pipeline.core.manifest import read_manifest, shard_entries
from pipeline.core.paths import output_name, video_filename
from pipeline.formats import build_manifest
from pipeline.media.videoio import ffmpeg_exe, set_rotation, write_video
from pipeline.shards import ShardReader, verify
from pipeline.steps import run_shard
from tests.conftest import counter_frames, write_timed_video

DATASET = "bad"
PER_SHARD = 10
VFR_MS = [0, 40, 50, 60, 160, 200, 330, 340, 400, 520, 560, 600]      # irregular presentation times
RESFRAME_SIZE = (32, 24)
REENCODE_SIZE = (48, 32)
STAGES = ("decode", "extract_flow", "resframe", "reencode", "extract_mv")
UPSTREAM = {"extract_flow": "decode", "resframe": "decode", "extract_mv": "reencode"}


# ----------------------------------------------------------------------------------------------------------
# Making the inputs


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def _ffv1(n: int, height: int = 48, width: int = 64) -> Callable[[Path, Path], None]:
    return lambda dst, scratch: write_video(dst, counter_frames(n, height, width), 25, "ffv1")


def _h264_30fps(dst: Path, scratch: Path) -> None:
    write_video(dst, counter_frames(9), 30, "libx264")


def _empty(dst: Path, scratch: Path) -> None:
    dst.write_bytes(b"")


def _text(dst: Path, scratch: Path) -> None:
    dst.write_text("this is a text file, not a video\n" * 20)


def _truncated_mp4(dst: Path, scratch: Path) -> None:
    """An MP4 cut in half: its index (moov, written last) is gone."""
    data = write_video(scratch / "full.mp4", counter_frames(10), 25, "libx264").read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _truncated_faststart(dst: Path, scratch: Path) -> None:
    """An MP4 with its index first (+faststart, as streamed files are), cut at 60 %: the index promises
    packets the file no longer holds."""
    full = write_video(scratch / "full_fs_src.mp4", counter_frames(10), 25, "libx264")
    _ffmpeg("-i", str(full), "-c", "copy", "-movflags", "+faststart", str(scratch / "full_fs.mp4"))
    data = (scratch / "full_fs.mp4").read_bytes()
    dst.write_bytes(data[: len(data) * 6 // 10])


def _truncated_mkv(dst: Path, scratch: Path) -> None:
    """A Matroska file of 10 frames cut in half: the header still says 0.4 s, 4 frames remain."""
    data = write_video(scratch / "full.mkv", counter_frames(10), 25, "ffv1").read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _truncated_avi(dst: Path, scratch: Path) -> None:
    """An MPEG-4 Part 2 AVI (as UCF101's and HMDB51's) of 10 frames cut exactly where the 7th frame's chunk
    starts: no packet is partial, so FFmpeg reads 6 whole frames, logs nothing and ends; only the 'movi'
    list's declared size tells."""
    data = write_video(scratch / "full.avi", counter_frames(10), 25, "mpeg4").read_bytes()
    movi, idx1 = data.index(b"movi"), data.index(b"idx1")
    chunks = [m.start() for m in re.finditer(b"00dc", data) if movi < m.start() < idx1]
    assert len(chunks) == 10
    dst.write_bytes(data[:chunks[6]])


def _truncated_ts(dst: Path, scratch: Path) -> None:
    """An MPEG-2 transport stream of 10 frames cut at 60 %: 6 frames left. The format declares no length."""
    data = write_video(scratch / "full.ts", counter_frames(10), 25, "mpeg2video").read_bytes()
    dst.write_bytes(data[: len(data) * 6 // 10])


def _audio_only(dst: Path, scratch: Path) -> None:
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.3", "-c:a", "aac", str(dst))


def _unknown_codec(dst: Path, scratch: Path) -> None:
    """An AVI whose video stream's fourcc (XQZW) no FFmpeg decoder knows."""
    data = write_video(scratch / "ffv1.avi", counter_frames(5), 25, "ffv1").read_bytes()
    assert data.count(b"FFV1") == 2                 # the stream header's handler and the bitmap's compression
    dst.write_bytes(data.replace(b"FFV1", b"XQZW"))


def _rotated(dst: Path, scratch: Path) -> None:
    """64x48 H.264 with a display matrix of 90 degrees (phone footage): shown 48x64."""
    set_rotation(write_video(scratch / "unrotated.mp4", counter_frames(6), 25, "libx264"), dst, 90)


def _vfr(dst: Path, scratch: Path) -> None:
    """12 frames at the irregular times VFR_MS (ms), the last lasting 40 ms."""
    write_timed_video(dst, counter_frames(len(VFR_MS)), VFR_MS)


@dataclass(frozen=True)
class Case:
    """One input of the dataset. ``refused``: stage -> regex of its failure message (the first stage of each
    branch that refuses it; the stages after it list it as the upstream failure). ``frames``: stage -> the
    entries a processed video has there; ``size``: stage -> (width, height) of them."""

    kind: str
    rel: str
    make: Callable[[Path, Path], None]
    refused: dict = dataclasses.field(default_factory=dict)
    frames: dict = dataclasses.field(default_factory=dict)
    size: dict = dataclasses.field(default_factory=dict)
    xfail: str = ""             # the fix (in code another engineer owns) that the expected outcome needs

    def param(self):
        marks = [pytest.mark.xfail(strict=True, reason=self.xfail)] if self.xfail else []
        return pytest.param(self, id=self.video_id, marks=marks)

    @property
    def video_id(self) -> str:
        return Path(self.rel).stem


def _usable(n: int, w: int, h: int) -> tuple[dict, dict]:
    """Frames and sizes of a video of ``n`` frames at 25 fps, ``w`` x ``h`` as shown, through every stage."""
    frames = {"decode": n, "extract_flow": n - 1, "resframe": n - 1, "reencode": n, "extract_mv": n}
    size = {"decode": (w, h), "extract_flow": (w, h), "resframe": RESFRAME_SIZE, "reencode": REENCODE_SIZE,
            "extract_mv": REENCODE_SIZE}
    return frames, size


def _case(kind: str, rel: str, make, n: int | None = None, w: int = 64, h: int = 48, refused=None,
          xfail: str = "") -> Case:
    frames, size = _usable(n, w, h) if n is not None else ({}, {})
    refused = refused or {}
    for stage in refused:                   # a refused video has no frames there, nor downstream
        for s in (stage, *[d for d, u in UPSTREAM.items() if u == stage]):
            frames.pop(s, None)
            size.pop(s, None)
    return Case(kind, rel, make, refused, frames, size, xfail)


# reencode's messages: ffmpeg's (it decoded the sources until the frame-alignment rework) or the decode
# stage's reader's (since: the frames are VideoReader's, ffmpeg only encodes); either names the file
CASES = [
    _case("good video (FFV1 in Matroska, 25 fps)", "walk/good1.mkv", _ffv1(8), 8),
    _case("good video (H.264 in MP4, 30 fps)", "jump/good2.mp4", _h264_30fps, 8),     # 0.3 s at 25 fps
    _case("zero-byte file", "walk/empty.mp4", _empty, refused={
        "decode": r"VideoError: empty\.mp4 is empty \(0 bytes\)",
        "reencode": r"ReencodeError: .*empty\.mp4.*(Invalid data|0 bytes)"}),
    _case("truncated MP4 (index lost)", "walk/trunc.mp4", _truncated_mp4, refused={
        "decode": r"VideoError: cannot open trunc\.mp4: .*Invalid data",
        "reencode": r"ReencodeError: .*trunc\.mp4.*Invalid data"}),
    # refused by the reader before any frame (its mdat box runs past the end of the file); FFmpeg's own
    # "decoding trunc_fs.mp4 failed: Invalid data" came only when the decoder met the partial last packet
    _case("truncated MP4 (+faststart, packets lost)", "walk/trunc_fs.mp4", _truncated_faststart, refused={
        "decode": r"VideoError: trunc_fs\.mp4 is truncated: the file has \d+ bytes, but its MP4 'mdat' box "
                  r"at byte \d+ runs to byte \d+",
        "reencode": r"ReencodeError: trunc_fs\.mp4 is truncated: .*MP4 'mdat' box"}),
    _case("truncated Matroska (header says 0.4 s, 4 of 10 frames left)", "walk/trunc_mkv.mkv", _truncated_mkv,
          refused={"decode": r"VideoError: trunc_mkv\.mkv is truncated: the file has \d+ bytes, but its "
                             r"Matroska cluster at byte \d+ runs to byte \d+; the frames after the cut "
                             r"are lost",
                   "reencode": r"ReencodeError: trunc_mkv\.mkv is truncated: .*Matroska cluster"}),
    _case("truncated AVI (MPEG-4, cut between two frames, 6 of 10 left)", "walk/trunc_avi.avi",
          _truncated_avi, refused={
              "decode": r"VideoError: trunc_avi\.avi is truncated: the file has \d+ bytes, but its AVI "
                        r"'movi' list at byte \d+ runs to byte \d+",
              "reencode": r"ReencodeError: trunc_avi\.avi is truncated: .*AVI 'movi' list"}),
    # kept: a transport stream declares no length (made to be cut anywhere; broadcast and camcorder files),
    # so a cut one is a shorter recording, as the cut MPEG-1 program stream of tests/test_alignment.py
    _case("truncated MPEG-TS (no declared length, 6 of 10 frames left: kept)", "walk/trunc_ts.ts",
          _truncated_ts, 6),
    _case("text file named .mp4", "walk/text.mp4", _text, refused={
        "decode": r"VideoError: cannot open text\.mp4: .*Invalid data",
        "reencode": r"ReencodeError: .*text\.mp4.*Invalid data"}),
    _case("audio only (AAC in MP4)", "walk/audio.mp4", _audio_only, refused={
        "decode": r"VideoError: audio\.mp4 has no video stream",
        "reencode": r"ReencodeError: .*audio\.mp4.*(has no video stream|matches no streams)"}),
    _case("undecodable codec (AVI, fourcc XQZW)", "walk/codec.avi", _unknown_codec, refused={
        "decode": r"VideoError: decoding codec\.avi failed: .*Decoder not found",
        "reencode": r"ReencodeError: .*codec\.avi.*(Decoder not found|no decoder found)"}),
    _case("1-frame video (no flow pair)", "walk/one.mkv", _ffv1(1), 1, refused={
        "extract_flow": r"InputError: one has 1 frame\(s\); flow needs at least 2",
        "resframe": r"InputError: one has 1 frame\(s\); residual frames need at least 2"}),
    _case("2-frame video (one flow pair)", "walk/two.mkv", _ffv1(2), 2),
    _case("odd width and height (33x27)", "walk/odd.mkv", _ffv1(6, 27, 33), 6, 33, 27),
    _case("extreme aspect ratio (192x6, 32:1)", "walk/wide.mkv", _ffv1(6, 6, 192), 6, 192, 6),
    _case("extreme aspect ratio, 2 pixels high (64x2)", "walk/sliver.mkv", _ffv1(4, 2, 64), 4, 64, 2, refused={
        "extract_flow": r"InputError: sliver: frames of 64x2 are too small for TV-L1 \(at least 3x3"}),
    _case("rotation metadata (display matrix 90 degrees)", "walk/rot.mp4", _rotated, 6, 48, 64),
    _case("variable frame rate (12 frames at irregular times)", "walk/vfr.mkv", _vfr, 16),      # 0.64 s
    _case("spaces and non-ASCII in the path", "clâsse ü/my vidéo 1.mkv", _ffv1(4), 4),
    _case("file missing (deleted after the manifest was made)", "walk/missing.mkv", _ffv1(4), refused={
        "decode": r"VideoError: .*/walk/missing\.mkv does not exist",
        "reencode": r"ReencodeError: .*/walk/missing\.mkv(: no such file| does not exist)"}),
]
BY_ID = {c.video_id: c for c in CASES}
REFUSED = [c for c in CASES if c.refused]
USABLE = [c for c in CASES if c.frames.get("decode")]


def settings_for(base: Path, results: Path | None = None, **sections) -> Settings:
    return resolve({"results": str(results or base / "results"), "videos_per_shard": PER_SHARD,
                    "dataset": DATASET, "datasets": {DATASET: {"format": "csv", "root": str(base / "my data")}},
                    "decode": {"short_side": None}, "extract_flow": {"workers": 1},
                    "resframe": {"size": list(RESFRAME_SIZE)}, "reencode": {"size": list(REENCODE_SIZE)},
                    **sections})


def make_dataset(base: Path) -> Path:
    """The videos of CASES under ``base/my data`` (a space in the root too), its split.csv, and the manifest
    ``base/bad.tsv`` built by the csv format (before ``missing.mkv`` is deleted)."""
    root, scratch = base / "my data", base / "scratch"
    scratch.mkdir(parents=True)
    for c in CASES:
        (root / c.rel).parent.mkdir(parents=True, exist_ok=True)
        c.make(root / c.rel, scratch)
    label = {c.video_id: c.rel.split("/")[0] for c in CASES}
    (root / "split.csv").write_text("path,label,split\n" + "".join(f"{c.rel},{label[c.video_id]},train\n"
                                                                   for c in CASES), encoding="utf-8")
    m = build_manifest("csv", root, dataset=DATASET)
    m.write(base / "bad.tsv")
    (root / BY_ID["missing"].rel).unlink()
    return base / "bad.tsv"


def snapshot(folder: Path, skip: Path | None = None) -> dict:
    """Every file and folder under ``folder`` (but ``skip``) with its size and modification time."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        st = p.lstat()
        out[str(p.relative_to(folder))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The dataset, then every stage on every shard (not strict), from an empty working folder; returns
    ``(base, settings, manifest, summaries, snapshots)``."""
    base = tmp_path_factory.mktemp("bad inputs ü")
    manifest = read_manifest(make_dataset(base))
    settings = settings_for(base)
    cwd = base / "cwd"
    cwd.mkdir()
    before = snapshot(base, skip=base / "results")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        summaries = {(stage, k): run_shard(stage, settings, k, manifest=manifest, strict=False, progress=False)
                     for k in range(2) for stage in STAGES}
    finally:
        os.chdir(old)
    after = snapshot(base, skip=base / "results")
    return base, settings, manifest, summaries, (before, after)


def report(settings, stage: str, shard: int) -> list[dict]:
    return json.loads((settings.stage_dir(stage) / output_name("failures", shard)).read_text())


def shard_of(manifest, video_id: str) -> int:
    return next(k for k in range(2) if video_id in {e.video_id for e in shard_entries(manifest, k, PER_SHARD)})


def stored(settings, stage: str, shard: int) -> dict:
    """video id -> (entries, width, height) of a stage's shard (reencode: its index)."""
    path = settings.stage_dir(stage) / output_name("index" if stage == "reencode" else "shard", shard)
    with ShardReader(path) as r:
        t = r.table()
        return {v: (int(t["num_frames"][i]), int(t["width"][i]), int(t["height"][i]))
                for i, v in enumerate(r.video_ids())}


# ----------------------------------------------------------------------------------------------------------
# The outcome of each input


def test_dataset_has_two_shards_with_good_and_bad_videos(run):
    base, settings, manifest, summaries, _ = run
    assert len(manifest) == len(CASES) and {e.video_id for e in manifest.entries} == set(BY_ID)
    for k in range(2):
        ids = {e.video_id for e in shard_entries(manifest, k, PER_SHARD)}
        assert ids & {c.video_id for c in REFUSED} and ids & {c.video_id for c in USABLE}


@pytest.mark.parametrize("case", [c.param() for c in REFUSED])
def test_a_refused_input_is_reported_by_its_stage_and_downstream(run, case):
    """The stage that refuses the video records it with a message naming it; every later stage of the
    branch lists the same record (the upstream stage named); no stage stores it."""
    base, settings, manifest, _, _ = run
    k = shard_of(manifest, case.video_id)
    for stage in STAGES:
        records = [r for r in report(settings, stage, k) if r["video_id"] == case.video_id]
        refused_by = next((s for s in (stage, UPSTREAM.get(stage)) if s in case.refused), None)
        if refused_by is None:
            assert records == [], f"{stage} should have processed {case.video_id}: {records}"
            assert case.video_id in stored(settings, stage, k)
            continue
        assert len(records) == 1, f"{stage}: {case.video_id} is not in the failure report exactly once"
        rec = records[0]
        assert rec["stage"] == refused_by
        assert re.search(case.refused[refused_by], rec["error"]), rec["error"]
        assert case.video_id not in stored(settings, stage, k)
        if refused_by != stage:             # carried unchanged from the upstream report
            assert rec in report(settings, refused_by, k)


@pytest.mark.parametrize("case", [c.param() for c in USABLE])
def test_a_usable_input_is_processed_with_its_frames_and_size(run, case):
    base, settings, manifest, _, _ = run
    k = shard_of(manifest, case.video_id)
    for stage, n in case.frames.items():
        got = stored(settings, stage, k)[case.video_id]
        assert got == (n, *case.size[stage]), f"{stage}: {case.video_id} {got}"
    if "reencode" in case.frames:       # frame i of the RGB shard is frame i of the MPEG-4 file
        assert case.frames["reencode"] == case.frames["decode"]


def test_every_video_is_stored_or_reported_in_every_shard_of_every_stage(run):
    """Nothing is silently missing: each manifest entry of shard K is in stage S's shard K or in its failure
    report (never both, never twice), and the shard's own failure list is the report."""
    base, settings, manifest, summaries, _ = run
    for k in range(2):
        ids = sorted(e.video_id for e in shard_entries(manifest, k, PER_SHARD))
        for stage in STAGES:
            rep = report(settings, stage, k)
            have = list(stored(settings, stage, k))
            assert sorted(have + [r["video_id"] for r in rep]) == ids, (stage, k)
            assert summaries[stage, k]["failures"] == len(rep)
            path = settings.stage_dir(stage) / output_name("index" if stage == "reencode" else "shard", k)
            with ShardReader(path) as r:
                assert [dict(f) for f in r.failures] == rep
            if stage in UPSTREAM:           # the upstream report comes first, unchanged
                up = report(settings, UPSTREAM[stage], k)
                assert rep[:len(up)] == up and all(r["stage"] == stage for r in rep[len(up):])


def test_shards_are_sound(run):
    base, settings, _, _, _ = run
    for k in range(2):
        for stage in ("decode", "extract_flow", "resframe", "extract_mv"):
            assert verify(settings.stage_dir(stage) / output_name("shard", k)) == [], (stage, k)


def test_variable_frame_rate_shows_the_frame_of_each_slot(run):
    """Slot n of the 25 fps output shows the last source frame whose time rounds to a slot <= n; the last
    frame lasts its 40 ms (ffmpeg's fps filter)."""
    base, settings, manifest, _, _ = run
    slots = [math.floor(Fraction(t, 1000) * 25 + Fraction(1, 2)) for t in VFR_MS]
    total = math.floor(Fraction(VFR_MS[-1] + 40, 1000) * 25 + Fraction(1, 2))
    want = [max(i for i, s in enumerate(slots) if s <= n) for n in range(total)]
    with ShardReader(settings.stage_dir("decode") / output_name("shard", shard_of(manifest, "vfr"))) as r:
        v = r.video_ids().index("vfr")
        got = [int(round(f[..., 0].mean())) // 10 for f in r.decode(v, "rgb")]    # red = 10 * source index
        assert r.table()["source_frames"][v] == len(VFR_MS)
    assert got == want and len(got) == total == 16


def test_rotation_is_applied_the_same_way_in_both_branches(run):
    """The display matrix turns the 64x48 frames into 48x64 ones; the source's left-to-right blue ramp runs
    from bottom to top in the decoded frames and in the re-encoded file alike."""
    base, settings, manifest, _, _ = run
    k = shard_of(manifest, "rot")
    with ShardReader(settings.stage_dir("decode") / output_name("shard", k)) as r:
        v = r.video_ids().index("rot")
        assert r.table()["rotation"][v] == 90
        rgb = r.decode(v, "rgb", 0, 1)[0]
    with av.open(str(settings.stage_dir("reencode") / output_name("folder", k) / video_filename("rot"))) as c:
        reencoded = next(c.decode(video=0)).to_ndarray(format="rgb24")
    for img in (rgb, reencoded):
        blue = img[..., 2].astype(float)
        assert blue[0].mean() > 240 and blue[-1].mean() < 15                    # top bright, bottom dark
        assert np.ptp(blue.mean(axis=0)) < 10                                   # constant across a row


def test_non_ascii_ids_and_labels_survive(run):
    base, settings, manifest, _, _ = run
    vid = "my vidéo 1"
    k = shard_of(manifest, vid)
    assert "clâsse ü" in manifest.classes
    with ShardReader(settings.stage_dir("extract_mv") / output_name("shard", k)) as r:
        assert vid in r.video_ids() and "clâsse ü" in r.classes
    assert (settings.stage_dir("reencode") / output_name("folder", k) / video_filename(vid)).is_file()


# ----------------------------------------------------------------------------------------------------------
# Where outputs go, determinism, both flow backends, sizes with short_side


def test_nothing_is_written_outside_the_results_folder(run):
    base, settings, _, _, (before, after) = run
    assert after == before                              # the dataset, the manifest, the working folder
    assert not any((base / "cwd").iterdir())
    results = base / "results"
    names = {str(p.relative_to(results)) for p in results.rglob("*")}
    assert not [n for n in names if Path(n).name.startswith(".")]     # no temporaries left
    assert {n.split("/")[0] for n in names} == set(STAGES)
    for stage in STAGES:
        kinds = ("folder", "index", "done", "failures") if stage == "reencode" else \
            ("shard", "iframes", "failures") if stage == "extract_mv" else ("shard", "failures")
        want = {f"{stage}/{DATASET}/{output_name(kind, k)}" for kind in kinds for k in range(2)}
        got = {n for n in names if n.count("/") == 2 and n.startswith(f"{stage}/")}
        assert got == want, stage


def test_failure_reports_are_the_same_bytes_every_run(run, tmp_path):
    """FFmpeg's messages carry memory addresses ("[in#0 @ 0x55d06fbae040]"): removed, so that a rerun writes
    the same failure report and the same index shard. (The videos refused when they are opened: an ffmpeg
    that fails later may report from whichever of its threads ends last.)"""
    base, settings, manifest, _, _ = run
    keep = {"good1", "empty", "trunc", "text", "audio", "codec", "missing"}
    m = dataclasses.replace(manifest, entries=tuple(e for e in manifest.entries if e.video_id in keep))
    for out in ("a", "b"):
        run_shard("reencode", settings, 0, manifest=m, out_dir=tmp_path / out, strict=False, progress=False)
    text = (tmp_path / "a" / output_name("failures", 0)).read_text()
    assert len(json.loads(text)) == len(keep) - 1 and " @ 0x" not in text
    for kind in ("failures", "index", "done"):
        assert (tmp_path / "a" / output_name(kind, 0)).read_bytes() == \
            (tmp_path / "b" / output_name(kind, 0)).read_bytes(), kind


def test_torch_flow_backend_refuses_the_same_videos(run, tmp_path):
    base, settings, manifest, _, _ = run
    fast = dict(backend="torch", batch_size=4, nscales=3, warps=2, outer_iterations=2, inner_iterations=10)
    for k in range(2):
        cfg = dataclasses.replace(settings.extract_flow, **fast)
        run_shard("extract_flow", settings, k, manifest=manifest, config=cfg, out_dir=tmp_path / str(k),
                  strict=False, progress=False)
        with ShardReader(tmp_path / str(k) / output_name("shard", k)) as r:
            t = r.table()
            got = {v: (int(t["num_frames"][i]), int(t["width"][i]), int(t["height"][i]))
                   for i, v in enumerate(r.video_ids())}
        assert got == stored(settings, "extract_flow", k)
        assert json.loads((tmp_path / str(k) / output_name("failures", k)).read_text()) == \
            report(settings, "extract_flow", k)


def test_odd_extreme_and_rotated_sizes_with_a_short_side(run, tmp_path):
    """With decode.short_side 24 the short side is 24, the aspect kept, both sides even."""
    base, _, manifest, _, _ = run
    s = settings_for(base, results=tmp_path, decode={"short_side": 24})
    keep = {"odd": (30, 24), "wide": (768, 24), "sliver": (768, 24), "rot": (24, 32), "good1": (32, 24)}
    m = dataclasses.replace(manifest, entries=tuple(e for e in manifest.entries if e.video_id in keep))
    run_shard("decode", s, 0, manifest=m, strict=True, progress=False)
    got = stored(s, "decode", 0)
    assert {v: g[1:] for v, g in got.items()} == keep


def test_a_banner_is_refused_at_the_default_short_side_and_the_others_complete(tmp_path):
    """A 1000x2 banner at the default decode.short_side (256) would be 128000x256 frames, 98 MB an RGB
    frame (before the limit the JPEG encoder refused it with a ValueError, which stopped the whole stage as a
    bug): decode refuses it, naming it, its size, the output size and the limit (MAX_OUTPUT_SIDE), and
    resframe carries the refusal; the 192x6 strip's 8192x256, at the limit, and a 64x48 video complete."""
    root = tmp_path / "ds"
    videos = {"walk/banner.mkv": (3, 2, 1000), "walk/wide.mkv": (6, 6, 192), "walk/good.mkv": (4, 48, 64)}
    for rel, (n, h, w) in videos.items():
        write_video(root / rel, counter_frames(n, h, w), 25, "ffv1")
    (root / "split.csv").write_text("path,label,split\n" + "".join(f"{rel},walk,train\n" for rel in videos))
    manifest = build_manifest("csv", root, dataset=DATASET)
    s = resolve({"results": str(tmp_path / "results"), "videos_per_shard": PER_SHARD, "dataset": DATASET,
                 "datasets": {DATASET: {"format": "csv", "root": str(root)}},
                 "resframe": {"size": list(RESFRAME_SIZE)}})
    assert s.decode.short_side == 256 and s.decode.size is None
    for stage in ("decode", "resframe"):
        run_shard(stage, s, 0, manifest=manifest, strict=False, progress=False)
    rec = report(s, "decode", 0)
    assert [(r["video_id"], r["stage"]) for r in rec] == [("banner", "decode")]
    assert rec[0]["error"] == ("VideoError: banner.mkv of 1000x2 would be resized to 128000x256 (short side "
                               "256), over the limit of 8192 pixels a side (aspect 500:1)")
    assert stored(s, "decode", 0) == {"wide": (6, 8192, 256), "good": (4, 342, 256)}
    assert report(s, "resframe", 0) == rec
    assert stored(s, "resframe", 0) == {"wide": (5, *RESFRAME_SIZE), "good": (3, *RESFRAME_SIZE)}


# ----------------------------------------------------------------------------------------------------------
# Strict mode


@pytest.mark.parametrize("stage", STAGES)
def test_strict_mode_stops_at_the_first_bad_video(run, tmp_path, stage):
    """The message names the stage and the first video of the shard it refuses, with the report's text; no
    output is left. Videos refused upstream are carried, not refused again: a stage refusing none of its
    own (extract_mv here) completes in strict mode too."""
    base, settings, manifest, _, _ = run
    for k in range(2):
        order = [e.video_id for e in shard_entries(manifest, k, PER_SHARD)]
        rep = report(settings, stage, k)
        own = [r for r in rep if r["stage"] == stage]
        out = tmp_path / str(k)
        if not own:
            s = run_shard(stage, settings, k, manifest=manifest, out_dir=out, strict=True, progress=False)
            assert s["failures"] == len(rep) and json.loads((out / output_name("failures", k)).read_text()) == rep
            continue
        first = min(own, key=lambda r: order.index(r["video_id"]))
        with pytest.raises(StageError) as err:
            run_shard(stage, settings, k, manifest=manifest, out_dir=out, strict=True, progress=False)
        assert str(err.value) == f"{stage}: video {first['video_id']}: {first['error']}"
        left = sorted(p.name for p in out.iterdir()) if out.exists() else []
        if stage == "reencode":         # the files re-encoded before it stay; no index, report or done-marker
            assert left == [output_name("folder", k)]
        else:
            assert left == []


def test_strict_mode_from_the_command_line(run, tmp_path):
    base, settings, manifest, _, _ = run
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"results": str(tmp_path / "results"), "videos_per_shard": PER_SHARD,
                                   "datasets": {DATASET: {"format": "csv", "root": str(base / "my data")}}}))
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "decode", "--config", str(cfg), "--manifest",
                           str(base / "bad.tsv"), "--shard", "0", "--strict", "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    order = [e.video_id for e in shard_entries(manifest, 0, PER_SHARD)]
    first = min(report(settings, "decode", 0), key=lambda r: order.index(r["video_id"]))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"prep-cli: error: decode: video {first['video_id']}: {first['error']}\n"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "decode" / DATASET / output_name("shard", 0)).exists()


# ----------------------------------------------------------------------------------------------------------
# Manifest-level problems


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_duplicate_ids_are_refused_naming_both_entries(tmp_path):
    root = tmp_path / "ds"
    _touch(root, "walk/x.mp4", "run/x.avi", "run/y.mp4")
    with pytest.raises(ManifestError, match=r"^manifest: .*/ds/walk/x\.mp4: duplicate video id 'x' "
                                            r"\(first seen at .*/ds/run/x\.avi\)"):
        build_manifest("folder", root)
    (root / "split.csv").write_text("path,label\nwalk/x.mp4,walk\nrun/y.mp4,run\nrun/x.avi,run\n")
    with pytest.raises(ManifestError, match=r"^manifest: .*split\.csv:4: duplicate video id 'x' "
                                            r"\(first seen at .*split\.csv:2\)"):
        build_manifest("csv", root)
    (root / "split.csv").write_text("path,label\nwalk/x.mp4,walk\nrun/y.mp4,run\n")
    build_manifest("csv", root).write(tmp_path / "m.tsv")
    text = (tmp_path / "m.tsv").read_text()
    (tmp_path / "m.tsv").write_text(text + "x\trun/x.avi\trun\t0\ttest\n")         # edited by hand
    with pytest.raises(ManifestError, match=r"1 duplicate video ids, first: \['x'\] \('x' at .*m\.tsv:8 "
                                            r"\(walk/x\.mp4\) and .*m\.tsv:10 \(run/x\.avi\)\)"):
        read_manifest(tmp_path / "m.tsv")


@pytest.mark.parametrize("bad", ["../outside.mkv", "walk/../../outside.mkv", "/etc/passwd"])
def test_paths_escaping_the_root_are_refused(tmp_path, bad):
    """In the split file (manifest stage), in a manifest edited by hand (any stage reading it), and in a
    manifest built in Python without the checks (the stage itself): refused, naming the entry; nothing read
    or written."""
    root = tmp_path / "ds"
    write_video(root / "walk" / "good.mkv", counter_frames(3), 25, "ffv1")
    write_video(tmp_path / "outside.mkv", counter_frames(3), 25, "ffv1")       # what ../ would reach
    (root / "split.csv").write_text(f"path,label\nwalk/good.mkv,walk\n{bad},walk\n")
    with pytest.raises(ManifestError, match=rf"^manifest: .*split\.csv:3: unsafe path '{re.escape(bad)}'"):
        build_manifest("csv", root, check_files=False)
    (root / "split.csv").write_text("path,label\nwalk/good.mkv,walk\n")
    good = build_manifest("csv", root, dataset="ds")
    good.write(tmp_path / "m.tsv")
    vid = Path(bad).stem
    with (tmp_path / "m.tsv").open("a") as f:
        f.write(f"{vid}\t{bad}\twalk\t0\ttrain\n")
    with pytest.raises(ManifestError, match=rf"m\.tsv:9: video '{vid}' has an unsafe path '{re.escape(bad)}'"):
        read_manifest(tmp_path / "m.tsv")
    sneaky = dataclasses.replace(good, entries=(*good.entries, dataclasses.replace(good.entries[0], video_id=vid,
                                                                                   path=bad)))
    s = resolve({"results": str(tmp_path / "results"), "dataset": "ds",
                 "datasets": {"ds": {"format": "csv", "root": str(root)}}, "reencode": {"size": [48, 32]}})
    for stage in ("decode", "reencode"):
        with pytest.raises(ManifestError, match=rf"^{stage}: video '{vid}' of ds has the unsafe path "
                                                rf"'{re.escape(bad)}'"):
            run_shard(stage, s, 0, manifest=sneaky, strict=False, progress=False)
    assert not (tmp_path / "results").exists()


def test_missing_files_are_refused_or_dropped_when_the_manifest_is_built(tmp_path, caplog):
    root = tmp_path / "ds"
    _touch(root, "walk/a.mp4", "walk/b.mp4")
    (root / "split.csv").write_text("path,label\nwalk/a.mp4,walk\nwalk/gone.mp4,walk\nwalk/b.mp4,walk\n")
    with pytest.raises(ManifestError, match=r"^manifest: ds: 1 of 3 entries are missing under .*/ds, "
                                            r"first: \['walk/gone\.mp4'\]"):
        build_manifest("csv", root, dataset="ds")
    m = build_manifest("csv", root, dataset="ds", allow_missing=True)
    assert [e.video_id for e in m.entries] == ["a", "b"]
    assert "dropped 1 of 3 entries missing" in caplog.text and "walk/gone.mp4" in caplog.text
