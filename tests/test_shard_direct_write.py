"""Uncompressed array streams are written partly by whole-chunk direct writes: same content as ds[...] = arr."""

from __future__ import annotations

import numpy as np

from pipeline.shards import ShardReader, ShardWriter, Stream, verify


def test_direct_chunk_writes_give_the_same_frames(tmp_path):
    rng = np.random.default_rng(0)
    lengths = [5, 12, 30, 1, 25, 7]                    # videos crossing, filling and inside 12-frame chunks
    videos = [rng.integers(0, 256, (n, 3, 4, 2), dtype=np.uint8) for n in lengths]
    for compression in (None, 1):
        path = tmp_path / f"s{compression}.h5"
        with ShardWriter(path, dataset="toy", modality="mv", encoding="raw", shard=0, num_shards=1,
                         classes=["a"], manifest_sha256="0" * 64, params={}, chunk_frames=12,
                         streams=[Stream("a", kind="array", shape=(3, 4, 2), compression=compression),
                                  Stream("t", kind="array", shape=(), dtype="int32")]) as w:
            for i, v in enumerate(videos):
                w.add_video(f"v{i}", 0, "train", 25.0, 3, 4, {"a": v, "t": np.arange(len(v))})
        assert verify(path) == []
        with ShardReader(path) as r:
            for i, v in enumerate(videos):
                np.testing.assert_array_equal(r.decode(i, "a"), v)
                assert r.decode(i, "t").tolist() == list(range(len(v)))
            np.testing.assert_array_equal(r.file["frames/a"][()], np.concatenate(videos))
