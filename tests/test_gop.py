"""Compact compressed-domain storage: the MPEG-4 packets kept in a ``bitstream`` mv shard, or read from the
re-encoded files through reencode's index, decode GOP by GOP to exactly the arrays an ``arrays`` shard stores."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pipeline.compressed.extract import extract_file
from pipeline.compressed.gop import (IndexMismatchError, decode_packets, extract_range, index_file, read_packets,
                                     scan_file)
from pipeline.core.config import resolve
from pipeline.core.errors import InputError
from pipeline.core.manifest import make_manifest, read_manifest
from pipeline.core.paths import output_name, video_filename
from pipeline.data import ShardClips
from pipeline.data.mv_source import MvShard
from pipeline.media.videoio import write_video
from pipeline.shards import ShardReader, verify
from pipeline.steps import run_shard

from .compressed_fixtures import translation_frames, write_translation

W, H = 92, 60           # neither a multiple of the 8-pixel cell nor of the 16-pixel macroblock
STREAMS = ("frame_type", "gop_index", "gop_pos", "mv", "mv_acc", "residual", "residual_acc")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """One shard of three videos (30 frames: GOPs of 12, 12 and 6; 12 frames: one whole GOP; 5 frames),
    re-encoded (with its index) and extracted with both storages."""
    tmp = tmp_path_factory.mktemp("gop")
    root = tmp / "videos"
    write_translation(root / "r" / "long.avi", 30, 1.5, 0.5, height=H, width=W)
    write_translation(root / "l" / "gop.avi", 12, -1, 1, height=H, width=W, seed=1)
    write_translation(root / "l" / "short.avi", 5, -2.5, 0, height=H, width=W, seed=2)
    rng = np.random.default_rng(5)                  # random content: large residuals, vectors anywhere
    write_video(root / "r" / "noise.avi", [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(17)],
                25, "ffv1")
    rows = [("long", "r/long.avi", "r", "train"), ("gop", "l/gop.avi", "l", "train"),
            ("short", "l/short.avi", "l", "test"), ("noise", "r/noise.avi", "r", "test")]
    make_manifest("toy", "csv", root, ["l", "r"], rows).write(tmp / "toy.tsv")
    m = read_manifest(tmp / "toy.tsv")
    base = {"results": str(tmp / "results"), "videos_per_shard": 10, "dataset": "toy",
            "datasets": {"toy": {"format": "csv", "root": str(root)}}, "reencode": {"size": [W, H]}}
    re_dir = tmp / "results" / "reencode" / "toy"
    run_shard("reencode", resolve(base), 0, manifest=m, out_dir=re_dir, progress=False)
    out = {}
    for name, section in (("arrays", {"storage": "arrays"}), ("bitstream", {"storage": "bitstream"}),
                          ("zstd", {"storage": "arrays", "compression": "zstd"})):
        d = tmp / name
        run_shard("extract_mv", resolve({**base, "extract_mv": section}), 0, manifest=m, input_dir=re_dir, out_dir=d,
                  progress=False)
        out[name] = d / "shard-00000.h5"
    out["index"] = re_dir / output_name("index", 0)
    out["folder"] = re_dir / output_name("folder", 0)
    return out


def test_every_storage_gives_the_stored_arrays_bit_for_bit(shards):
    arrays, bitstream, index = (MvShard(shards[k]) for k in ("arrays", "bitstream", "index"))
    assert (arrays.encoding, bitstream.encoding, index.encoding) == ("coviar-uint8", "mpeg4-bitstream", "mpeg4-index")
    with ShardReader(shards["arrays"]) as r:
        n = r.table()["num_frames"].tolist()
        ids = r.video_ids()
    assert dict(zip(ids, n)) == {"long": 30, "gop": 12, "short": 5, "noise": 17}
    zstd = MvShard(shards["zstd"])                  # the arrays compressed losslessly: the same values
    for v, frames in enumerate(n):
        a, z = arrays.arrays(v, 0, frames, STREAMS), zstd.arrays(v, 0, frames, STREAMS)
        assert all(np.array_equal(a[k], z[k]) for k in STREAMS)
    assert shards["zstd"].stat().st_size < shards["arrays"].stat().st_size
    for v, frames in enumerate(n):
        ref = arrays.arrays(v, 0, frames, STREAMS)
        assert ref["gop_index"].tolist() == [i // 12 for i in range(frames)]
        for src in (bitstream, index):
            got = src.arrays(v, 0, frames, STREAMS)                         # every frame of every GOP
            for k in STREAMS:
                np.testing.assert_array_equal(got[k], ref[k], err_msg=f"{src.encoding} {ids[v]} {k}")
            for lo, hi in ((0, 1), (frames - 1, frames), (min(11, frames - 1), frames), (1, min(frames, 14))):
                part = src.arrays(v, lo, hi, ("mv", "residual_acc", "gop_pos"))   # first / last GOP, across GOPs
                for k, a in part.items():
                    np.testing.assert_array_equal(a, ref[k][lo:hi], err_msg=f"{src.encoding} {lo}:{hi} {k}")
    for src in (MvShard(shards["bitstream"]), MvShard(shards["index"])):    # one frame at a time, no cache:
        for v, frames in enumerate(n):                                      # the DMC-Net sample's fast path
            ref = arrays.arrays(v, 0, frames, ("mv", "residual"))
            for t in range(frames):
                got = src.arrays(v, t, t + 1, ("mv", "residual"))
                for k in ("mv", "residual"):
                    np.testing.assert_array_equal(got[k], ref[k][t:t + 1], err_msg=f"{src.encoding} {v} {t} {k}")
    for src in (bitstream, index):          # the decoded streams carry the stored streams' attributes
        assert src.stream_attrs("mv")["grid"] == 8 and list(src.stream_attrs("mv")["dense_shape"]) == [2, H, W]
        assert src.stream_shape("residual") == (H, W, 3)


def test_the_pass_over_the_file_and_the_index_agree_with_a_full_extraction(shards):
    path = shards["folder"] / video_filename("long")
    ref = extract_file(path, 20.0)
    scanned, packets, iframes = scan_file(path)
    indexed = index_file(path)
    for k in ("pos", "size", "crc32", "frame_type"):
        np.testing.assert_array_equal(getattr(scanned, k), getattr(indexed, k))
    assert len(iframes) == 3 and all(np.array_equal(a, b) for a, b in zip(iframes, ref.iframes))
    assert read_packets(path, indexed, 0, len(packets)) == packets
    got = extract_range(lambda a, b: packets[a:b], indexed.extradata, indexed.frame_type, 13, 29,
                        streams=("mv_acc", "residual"))
    np.testing.assert_array_equal(got["mv_acc"], ref.frames["mv_acc"][13:29])
    np.testing.assert_array_equal(got["residual"], ref.frames["residual"][13:29])
    # a GOP decoded on its own gives the full decode's pixels: FFmpeg reads past a packet's end, and the
    # padding must be zeros (PyAV's Packet(bytes) leaves it uninitialised)
    images = [f.image for f in decode_packets(packets[12:24], indexed.extradata)]
    assert len(images) == 12


def test_bitstream_shard_is_the_size_of_the_mpeg4_files(shards):
    assert verify(shards["bitstream"]) == [] and verify(shards["index"]) == []
    files = sum(p.stat().st_size for p in shards["folder"].iterdir())
    stored, raw = shards["bitstream"].stat().st_size, shards["arrays"].stat().st_size
    assert stored < 1.1 * files + 64 * 1024 and 5 * stored < raw    # HDF5's tables on top of the packets
    with ShardReader(shards["bitstream"]) as r:
        assert set(r.streams) == {"frame_type", "gop_index", "gop_pos", "packet"}
        assert r.file["frames/packet"].attrs["encoding"] == "mpeg4-packet"
    with ShardReader(shards["index"]) as r:
        assert r.attrs["modality"] == "mv" and r.attrs["encoding"] == "mpeg4-index"
        assert r.table()["file"][0].startswith("shard-00000/")


def test_shard_clips_read_the_same_tensors_from_every_storage(shards):
    clips = {k: ShardClips({"mv": [shards[k]]}, "mv+residual", mode="test", length=8, crop=32, seed=0)
             for k in ("arrays", "bitstream", "index")}
    assert len(clips["arrays"]) == len(clips["bitstream"]) == len(clips["index"]) > 3
    for i in range(len(clips["arrays"])):
        ref = clips["arrays"][i]
        for k in ("bitstream", "index"):
            got = clips[k][i]
            for key in ("mv", "residual"):
                assert torch_equal(got[key], ref[key]), (k, i, key)
    train = {k: ShardClips({"mv": [shards[k]]}, "mv+residual", mode="train", length=8, crop=32, seed=3,
                           streams={"mv": ["mv_acc"], "residual": ["residual_acc"]}) for k in ("arrays", "index")}
    for i in range(len(train["arrays"])):
        a, b = train["arrays"][i], train["index"][i]
        assert torch_equal(a["mv"], b["mv"]) and torch_equal(a["residual"], b["residual"])


def torch_equal(a, b) -> bool:
    import torch
    return bool(torch.equal(a, b))


def test_a_file_that_no_longer_matches_its_index_is_refused(shards, tmp_path):
    import shutil
    folder = tmp_path / "shard-00000"
    shutil.copytree(shards["folder"], folder)
    index = tmp_path / "shard-00000.index.h5"
    shutil.copy(shards["index"], index)
    with ShardReader(index) as r:
        video = r.video_ids().index("long")
    src = MvShard(index)
    assert src.arrays(video, 0, 3, ("mv",))["mv"].shape[0] == 3        # the copy, found beside its index
    path = folder / video_filename("long")
    data = bytearray(path.read_bytes())
    data[int(src.index(video).pos[13]) + 10] ^= 0xFF       # one byte inside the packet of frame 13
    path.write_bytes(bytes(data))
    src = MvShard(index)
    assert src.arrays(video, 0, 12, ("residual",))["residual"].shape[0] == 12    # the first GOP is untouched
    with pytest.raises(IndexMismatchError, match=r"long\.avi: packet 13 does not match its index"):
        src.arrays(video, 12, 14, ("residual",))
    path.write_bytes(bytes(data[:-100]))
    with pytest.raises(IndexMismatchError, match=r"long\.avi: .* bytes, its index says"):
        MvShard(index).arrays(video, 0, 2, ("mv",))
    os.remove(path)
    with pytest.raises(IndexMismatchError, match="no such file.*video_root"):
        MvShard(index).arrays(video, 0, 2, ("mv",))
    assert MvShard(index, video_root=shards["folder"].parent).arrays(video, 0, 2, ("mv",))["mv"].shape[0] == 2


def test_scan_refuses_what_gop_reads_cannot_handle(tmp_path):
    frames = translation_frames(14, 1, 0, height=48, width=64)
    b = write_video(tmp_path / "b.avi", frames, 25, "mpeg4", {"bf": "2", "g": "12"})
    with pytest.raises(InputError, match="B-frames"):
        scan_file(b)
    h264 = write_video(tmp_path / "h.mp4", frames, 25, "libx264")
    with pytest.raises(InputError, match="not MPEG-4 Part 2"):
        scan_file(h264)
    with pytest.raises(InputError, match="not MPEG-4 Part 2"):
        index_file(h264)
