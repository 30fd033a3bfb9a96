"""Files from elsewhere: declared sizes are checked before allocating, and nothing is ever unpickled.

Each crafted file is a few kilobytes that declares 10^12 frames (a chunked dataset with no chunk written):
reading it whole would ask for terabytes. Every reader must refuse it with a ShardError naming the file and
the limit, never a MemoryError or an out-of-memory kill.
"""

from __future__ import annotations

import ast
import pickle
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.layouts import get as get_layout
from pipeline.layouts import scan
from pipeline.shards import ShardError, ShardReader, verify
from tests.shard_fixtures import write_shards

HUGE = 10**12
REPO = Path(__file__).resolve().parents[1]


def _crafted_shard(tmp_path: Path, what: str) -> Path:
    """A real shard, then altered to declare HUGE frames (or HUGE videos) without storing them."""
    path = write_shards(tmp_path, [5, 4], flow=False)["rgb"]
    with h5py.File(path, "a") as f:
        if what == "frames":
            del f["frames/rgb"], f["videos/offset"], f["videos/num_frames"]
            f["frames"].create_dataset("rgb", shape=(HUGE,), dtype=h5py.vlen_dtype(np.uint8), chunks=(64,))
            f["frames/rgb"].attrs["encoding"] = "jpeg"
            f["videos"].create_dataset("offset", data=np.array([0, 5, HUGE], np.int64))
            f["videos"].create_dataset("num_frames", data=np.array([5, HUGE - 5], np.int64))
        elif what == "videos":
            del f["videos/video_id"]
            f["videos"].create_dataset("video_id", shape=(HUGE,), dtype=h5py.string_dtype(), chunks=(64,))
        elif what == "table":
            del f["videos/offset"]
            f["videos"].create_dataset("offset", shape=(HUGE,), dtype=np.int64, chunks=(64,))
    assert path.stat().st_size < 200_000
    return path


@pytest.mark.parametrize("what", ["frames", "videos", "table"])
def test_a_shard_declaring_huge_sizes_is_refused_before_allocating(tmp_path, what):
    path = _crafted_shard(tmp_path, what)
    with pytest.raises(ShardError, match=re.escape(str(path))) as info:
        with ShardReader(path) as r:
            r.table()
            r.decode(1, "rgb")
    assert "MOTIONPREP_MAX_" in str(info.value) or "expected" in str(info.value)
    # the command line says so in one line, under a memory limit that any allocation of it would break
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
            "from pipeline.cli import main; sys.argv = ['prep-cli', 'shards', 'inspect', sys.argv[1]]; main()")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert run.returncode == 2 and "prep-cli: error:" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert verify(path) != []          # verify lists it as a problem instead of failing


def test_the_limits_can_be_set(tmp_path, monkeypatch):
    path = write_shards(tmp_path, [5, 4], flow=False)["rgb"]
    with ShardReader(path) as r:
        assert len(r.decode(0, "rgb")) == 5
    monkeypatch.setenv("MOTIONPREP_MAX_FRAMES_PER_VIDEO", "4")
    with pytest.raises(ShardError, match="the frame count of video 0 is 5, over the limit of 4"):
        ShardReader(path).table()
    monkeypatch.setenv("MOTIONPREP_MAX_FRAMES_PER_VIDEO", "10")
    monkeypatch.setenv("MOTIONPREP_MAX_READ_BYTES", "32")       # 5 pointers of 16 bytes: 80 bytes
    with pytest.raises(ShardError, match="MOTIONPREP_MAX_READ_BYTES"):
        ShardReader(path).decode(0, "rgb")


def _foreign(tmp_path: Path, layout: str) -> Path:
    path = tmp_path / "c0" / f"{layout}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        if layout == "kenshohara":
            f.create_dataset("video", shape=(HUGE,), dtype=h5py.vlen_dtype(np.uint8), chunks=(64,))
        elif layout == "videogpt":
            f.create_dataset("train_data", shape=(HUGE, 64, 64, 3), dtype=np.uint8, chunks=(1, 64, 64, 3))
            f.create_dataset("train_idx", data=np.array([0], np.int64))
        elif layout == "hdf5_dataloader":
            f.create_group("len").create_dataset("0", data=HUGE)
            f.create_group("0")
    return path


@pytest.mark.parametrize("layout", ["kenshohara", "videogpt", "hdf5_dataloader"])
def test_a_foreign_file_declaring_huge_videos_is_refused(tmp_path, layout):
    path = _foreign(tmp_path, layout)
    assert path.stat().st_size < 100_000
    refs = scan([path])
    assert refs and refs[0].layout == layout
    with pytest.raises(ShardError, match="MOTIONPREP_MAX_FRAMES_PER_VIDEO"):
        get_layout(layout).read(refs[0], 95)


class _Boom:
    """Unpickling this creates a marker file: proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickles_inside_files_are_never_unpickled(tmp_path):
    marker = tmp_path / "UNPICKLED"
    payload = pickle.dumps(_Boom(marker))
    path = write_shards(tmp_path, [3, 2], flow=False)["rgb"]
    with h5py.File(path, "a") as f:               # a pickle everywhere a reader looks
        f.attrs["pickle"] = np.void(payload)
        f["videos"].create_dataset("extra", data=np.array([np.void(payload)] * 2))
        f["frames/rgb"].attrs["pickle"] = np.void(payload)
    with ShardReader(path) as r:
        r.table(), r.attrs, r.decode(0, "rgb")
    verify(path)
    from pipeline.shards import inspect
    inspect(path)
    kens = tmp_path / "c0" / "k.h5"
    kens.parent.mkdir(exist_ok=True)
    with h5py.File(kens, "w") as f:
        ds = f.create_dataset("video", shape=(1,), dtype=h5py.vlen_dtype(np.uint8))
        ds[0] = np.frombuffer(payload, np.uint8)
    ref = scan([kens])[0]
    get_layout("kenshohara").read(ref, 95)          # the bytes are a (bad) JPEG to it, never a pickle
    assert not marker.exists()


def test_no_code_path_can_unpickle():
    """No reader of files uses an unpickling loader: the one torch.load passes weights_only=True."""
    bad = re.compile(r"pickle\.loads?\(|allow_pickle\s*=\s*True|read_pickle|read_hdf|joblib\.load|dill")
    loads = []
    for p in sorted((REPO / "pipeline").rglob("*.py")):
        text = p.read_text()
        assert not bad.search(text), f"{p}: {bad.search(text).group(0)}"
        # every call of torch.load in the code (not a hint in a message telling users how to re-save)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                safe = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                loads.append((p.name, node.lineno, safe))
    assert loads and all(safe for *_, safe in loads), loads


def test_a_long_video_is_read_in_clips_not_refused(tmp_path, monkeypatch):
    # the byte limit is for one read: a video longer than it in total stays readable clip by clip
    path = write_shards(tmp_path, [40, 4], flow=False)["rgb"]
    monkeypatch.setenv("MOTIONPREP_MAX_READ_BYTES", str(16 * 16))          # 16 frames' pointers
    with ShardReader(path) as r:
        assert len(r.raw(0, "rgb", 0, 16)) == 16
        with pytest.raises(ShardError, match="MOTIONPREP_MAX_READ_BYTES"):
            r.raw(0, "rgb")


@pytest.mark.parametrize("damage", ["frames a dataset", "offset a group", "classes a group", "bad format"])
def test_a_damaged_shard_is_a_shard_error_every_time(tmp_path, damage):
    path = write_shards(tmp_path, [3, 2], flow=False)["rgb"]
    with h5py.File(path, "a") as f:
        if damage == "frames a dataset":
            del f["frames"]
            f["frames"] = np.zeros(5)
        elif damage == "offset a group":
            del f["videos/offset"]
            f["videos"].create_group("offset")
        elif damage == "classes a group":
            del f["classes"]
            f.create_group("classes")
        else:
            f.attrs["format"] = "other"
    r = ShardReader(path)
    for _ in range(2):          # refused again on the next access, never used unchecked
        with pytest.raises(ShardError, match=re.escape(str(path))):
            r.frame_range(0)
