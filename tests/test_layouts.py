"""Foreign layouts: files written with h5py the way each project writes them, imported and checked; and
export -> import round trips giving back the same JPEG bytes and labels."""

from __future__ import annotations

import numpy as np
import pytest
import h5py
from click.testing import CliRunner

from pipeline import layouts
from pipeline.media import jpeg
from pipeline.cli import cli
from pipeline.layouts.convert import export_shards, import_sources
from pipeline.shards import ShardReader
from .shard_fixtures import rgb_frame, tagged, write_shards


def _video(v: int, n: int, h: int = 24, w: int = 32) -> list[np.ndarray]:
    return [rgb_frame(v, i, h, w) for i in range(n)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _shard_videos(path) -> dict[str, tuple[int, str, list[bytes]]]:
    with ShardReader(path) as r:
        t = r.table()
        return {vid: (int(t["label"][v]), t["split"][v], [b.tobytes() for b in r.raw(v, r.streams[0])])
                for v, vid in enumerate(t["video_id"])}


def _write_kenshohara(path, frames: list[bytes], flow: tuple[list[bytes], list[bytes]] | None = None):
    """As generate_video_hdf5.py: create the vlen dataset, then store frame i reopening the file each time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = {"video": frames} if flow is None else {"video": frames, "video_u": flow[0], "video_v": flow[1]}
    with h5py.File(path, "w") as f:
        for name, data in names.items():
            f.create_dataset(name, (len(data),), dtype=h5py.special_dtype(vlen="uint8"))
    for name, data in names.items():
        for i, b in enumerate(data):
            with h5py.File(path, "r+") as f:
                f[name][i] = np.frombuffer(b, dtype="uint8")


def test_kenshohara_import_copies_jpeg_bytes_and_class_folders(tmp_path):
    src = tmp_path / "k"
    vids = {"jump/v_jump_01": (0, 7), "run/v_run_02": (1, 5), "test/v_unknown_03": (2, 6)}
    want = {}
    for name, (v, n) in vids.items():
        frames = [tagged(jpeg.encode(f), i) for i, f in enumerate(_video(v, n))]
        flow = ([tagged(jpeg.encode(np.full((24, 32), 100 + i, np.uint8)), i) for i in range(n - 1)],
                [tagged(jpeg.encode(np.full((24, 32), 50 + i, np.uint8)), i) for i in range(n - 1)])
        _write_kenshohara(src / f"{name}.hdf5", frames, flow if v == 0 else None)
        want[name.split("/")[1]] = frames
    assert layouts.detect(src / "jump" / "v_jump_01.hdf5") == "kenshohara"
    summary = import_sources([src], tmp_path / "out")
    assert summary["videos"] == 3 and summary["flow_videos"] == 1
    got = _shard_videos(tmp_path / "out" / "rgb" / "shard-00000.h5")
    assert {k: v[2] for k, v in got.items()} == want
    with ShardReader(tmp_path / "out" / "rgb" / "shard-00000.h5") as r:
        assert r.classes == ["jump", "run"]
    assert got["v_jump_01"][0] == 0 and got["v_run_02"][0] == 1 and got["v_unknown_03"][0] == -1
    with ShardReader(tmp_path / "out" / "flow" / "shard-00000.h5") as r:
        assert r.video_ids() == ["v_jump_01"]
        assert r.decode(0, "x")[3].mean() == pytest.approx(103, abs=1)


def test_videogpt_import_with_side_labels(tmp_path):
    lengths = {"train": [5, 8], "test": [6]}
    path = tmp_path / "ucf.h5"
    with h5py.File(path, "w") as f:                      # as VideoGPT's create_*_hdf5_dataset scripts
        for split, lens in lengths.items():
            data = np.concatenate([np.stack(_video(v, n)) for v, n in enumerate(lens)])
            f.create_dataset(f"{split}_data", data=data)
            f.create_dataset(f"{split}_idx", data=np.cumsum([0] + lens[:-1]).astype(np.int64))
    (tmp_path / "labels.txt").write_text(
        "ucf_train_000000 walk\nucf_train_000001,swim\n# c\nucf_test_000000\tswim\n")
    assert layouts.detect(path) == "videogpt"
    import_sources([path], tmp_path / "out", labels=tmp_path / "labels.txt", jpeg_quality=95)
    got = _shard_videos(tmp_path / "out" / "rgb" / "shard-00000.h5")
    assert sorted(got) == ["ucf_test_000000", "ucf_train_000000", "ucf_train_000001"]
    assert [got[k][:2] for k in ("ucf_train_000000", "ucf_train_000001", "ucf_test_000000")] == \
        [(1, "train"), (0, "train"), (0, "test")]                         # classes sorted: swim, walk
    frames = got["ucf_train_000001"][2]
    assert len(frames) == 8
    for i, b in enumerate(frames):
        assert _psnr(jpeg.decode(b), rgb_frame(1, i, 24, 32)) > 38


def test_hdf5_dataloader_import_targets_and_splits(tmp_path):
    path = tmp_path / "shard_0001.hdf5"
    with h5py.File(path, "w") as f:                      # as mcvd-pytorch's UCF101_HDF5Maker
        for g in ("len", "data", "target"):
            f.create_group(g)
        f.create_dataset("num_train", data=2)
        f.create_dataset("num_test", data=1)
        for count, (n, target) in enumerate([(4, 3), (6, 0), (5, 1)]):
            f["len"].create_dataset(str(count), data=n)
            f["target"].create_dataset(str(count), data=target, dtype="uint8")
            f.create_group(str(count))
            for i, frame in enumerate(_video(count, n)):
                f[str(count)].create_dataset(str(i), data=frame, dtype="uint8", compression="lzf")
    assert layouts.detect(path) == "hdf5_dataloader"
    import_sources([path], tmp_path / "out", videos_per_shard=2)
    a = _shard_videos(tmp_path / "out" / "rgb" / "shard-00000.h5")
    b = _shard_videos(tmp_path / "out" / "rgb" / "shard-00001.h5")
    assert [(k, v[0], v[1], len(v[2])) for k, v in {**a, **b}.items()] == \
        [("shard_0001_000000", 3, "train", 4), ("shard_0001_000001", 0, "train", 6),
         ("shard_0001_000002", 1, "test", 5)]
    with ShardReader(tmp_path / "out" / "rgb" / "shard-00000.h5") as r:
        assert r.classes == ["0", "1", "2", "3"] and r.attrs["num_shards"] == 2
        assert _psnr(r.decode(1, "rgb")[5], rgb_frame(1, 5, 24, 32)) > 38


@pytest.mark.parametrize("encoding", ["jpeg", "raw", "png"])
def test_av2hdf5_import(tmp_path, encoding):
    import cv2
    path = tmp_path / f"clip_{encoding}.h5"
    frames = _video(2, 5)
    stored = []
    with h5py.File(path, "w") as f:                      # PyTables create_array + attrs, as av2hdf5 writes
        f.attrs["CLASS"] = np.bytes_("GROUP")
        for i, frame in enumerate(frames):
            if encoding == "raw":
                data = frame
            elif encoding == "jpeg":
                data = np.frombuffer(tagged(jpeg.encode(frame, 100), i), np.uint8)
            else:
                data = np.frombuffer(cv2.imencode(".png", frame[..., ::-1])[1].tobytes(), np.uint8)
            stored.append(data.tobytes())
            ds = f.create_dataset(f"frame{i:05d}", data=data)
            for key, value in (("CLASS", "ARRAY"), ("VERSION", "2.4"), ("TITLE", "")):
                ds.attrs[key] = np.bytes_(value)
            ds.attrs["original_idx"] = i
            ds.attrs["encoding"] = np.bytes_(encoding)
    assert layouts.detect(path) == "av2hdf5"
    (tmp_path / "labels.txt").write_text(f"clip_{encoding} 0\n")
    import_sources([path], tmp_path / "out", labels=tmp_path / "labels.txt")
    (label, split, got), = _shard_videos(tmp_path / "out" / "rgb" / "shard-00000.h5").values()
    assert label == 0 and split == "train" and len(got) == 5
    if encoding == "jpeg":
        assert got == stored
    for i, b in enumerate(got):
        assert _psnr(jpeg.decode(b), frames[i]) > 38


def test_unknown_file_is_a_clear_error(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("something", data=np.zeros(3))
    with pytest.raises(layouts.LayoutError, match="not a file of any known layout"):
        import_sources([path], tmp_path / "out")


@pytest.mark.parametrize("layout", ["kenshohara", "rawframes"])
def test_export_then_import_gives_back_the_same_bytes(tmp_path, layout):
    paths = write_shards(tmp_path / "shards", [6, 9, 4], h=24, w=32)
    runner = CliRunner()
    res = runner.invoke(cli, ["shards", "export", "--layout", layout, "--out", str(tmp_path / "exp"),
                              str(paths["rgb"]), str(paths["flow"])])
    assert res.exit_code == 0, res.output
    if layout == "rawframes":
        assert (tmp_path / "exp" / "v1" / "img_00009.jpg").exists()
        assert (tmp_path / "exp" / "v1" / "flow_x_00008.jpg").exists()
        assert (tmp_path / "exp" / "toy_train_rawframes.txt").read_text() == "v0 6 0\nv2 4 2\n"
        extra = []                                   # classes.txt in the folder is used by itself
    else:
        assert layouts.detect(tmp_path / "exp" / "b" / "v1.hdf5") == "kenshohara"
        extra = ["--labels", str(tmp_path / "exp" / "labels.txt"),
                 "--classes", str(tmp_path / "exp" / "classes.txt")]
    res = runner.invoke(cli, ["shards", "import", "--layout", "auto", str(tmp_path / "exp"),
                              "--out", str(tmp_path / "back"), *extra])
    assert res.exit_code == 0, res.output
    for mod in ("rgb", "flow"):
        before = _shard_videos(paths[mod])
        after = _shard_videos(tmp_path / "back" / mod / "shard-00000.h5")
        assert after == before
        with ShardReader(paths[mod]) as r0, ShardReader(tmp_path / "back" / mod / "shard-00000.h5") as r1:
            assert r1.classes == r0.classes
            if mod == "flow":
                j = r1.video_ids().index(r0.video_ids()[1])
                assert np.array_equal(r1.decode(j, "y"), r0.decode(1, "y"))


def test_rawframes_export_of_ids_that_are_not_folder_names(tmp_path):
    """Ids with spaces or '..' get safe folder names (the exporter's own writer), 1-based numbering kept."""
    paths = write_shards(tmp_path / "shards", [5, 4], h=24, w=32, flow=False, prefix="../odd id ")
    lists = export_shards([paths["rgb"]], tmp_path / "exp", "rawframes")
    assert sorted(p.name for p in lists) == ["toy_test_rawframes.txt", "toy_train_rawframes.txt"]
    assert (tmp_path / "exp" / "toy_train_rawframes.txt").read_text() == "odd_id_0 5 0\n"
    assert (tmp_path / "exp" / "odd_id_1" / "img_00004.jpg").read_bytes() == \
        _shard_videos(paths["rgb"])["../odd id 1"][2][3]
    assert not (tmp_path / "exp" / "odd_id_0" / "img_00006.jpg").exists()
