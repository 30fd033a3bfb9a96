"""Motion vectors stored per 8x8 cell (``grid`` attribute) read back exactly like dense maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.compressed.encoding import dense_mv
from pipeline.data.dataset import ShardClips
from pipeline.shards import ShardWriter, Stream


def test_dense_mv_repeats_cells_and_cuts_edges():
    q = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    d = dense_mv(q, 8, 13, 20)
    assert d.shape == (2, 13, 20)
    assert np.all(d[:, :8, :8] == q[:, :1, :1]) and np.all(d[:, 8:, 16:] == q[:, 1:, 2:])
    np.testing.assert_array_equal(dense_mv(q[None], 8, 13, 20)[0], d)          # leading frame axis
    with pytest.raises(ValueError):
        dense_mv(q, 8, 32, 20)


def _write(path, grid: bool, mv_cells, h, w, lengths):
    shape = mv_cells.shape[2:] if grid else (h, w)
    attrs = {"grid": 8, "dense_shape": [2, h, w]} if grid else {}
    streams = [Stream("mv", kind="array", shape=(2, *shape), attrs=attrs),
               Stream("residual", kind="array", shape=(h, w, 3))]
    with ShardWriter(path, dataset="toy", modality="mv", encoding="coviar-uint8", streams=streams, shard=0,
                     num_shards=1, classes=["a", "b"], manifest_sha256="0" * 64, params={}) as wr:
        off = 0
        for v, n in enumerate(lengths):
            mv = mv_cells[off:off + n]
            off += n
            res = np.full((n, h, w, 3), 128, np.uint8)
            wr.add_video(f"v{v}", v % 2, "train", 25.0, h, w,
                         {"mv": mv if grid else dense_mv(mv, 8, h, w), "residual": res})


def test_dataset_gives_identical_tensors_for_grid_and_dense_mv(tmp_path):
    h, w, lengths = 44, 60, [20, 9]
    rng = np.random.default_rng(0)
    cells = rng.integers(1, 256, (sum(lengths), 2, -(-h // 8), -(-w // 8)), dtype=np.uint8)
    _write(tmp_path / "grid.h5", True, cells, h, w, lengths)
    _write(tmp_path / "dense.h5", False, cells, h, w, lengths)
    for mode in ("train", "test"):
        a = ShardClips({"mv": [tmp_path / "grid.h5"]}, "mv+residual", mode=mode, length=4, crop=16, seed=3)
        b = ShardClips({"mv": [tmp_path / "dense.h5"]}, "mv+residual", mode=mode, length=4, crop=16, seed=3)
        assert len(a) == len(b)
        for i in range(min(len(a), 12)):
            sa, sb = a[i], b[i]
            assert torch.equal(sa["mv"], sb["mv"]) and torch.equal(sa["residual"], sb["residual"])
