"""ShardClips under a real DataLoader with worker processes (spawn and fork start methods)."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.data import ShardClips, group_scores, worker_init
from .shard_fixtures import write_shards


def _busy_parent() -> None:
    """What a training script may have done before its DataLoader forks: run OpenCV's thread pool, and leave
    a PyAV frame with a threaded swscale context in a reference cycle. Either used to hang forked workers."""
    import av
    import cv2
    import numpy as np

    cv2.setNumThreads(2)
    cv2.resize(np.zeros((1080, 1920, 3), np.uint8), (960, 540))
    frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
    cycle = [frame.reformat(width=32, height=32, format="yuv420p", threads=2)]
    cycle.append(cycle)
    del cycle, frame


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_two_workers(tmp_path, method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    _busy_parent()
    paths = write_shards(tmp_path, [12, 7, 20, 9], h=40, w=48)
    ds = ShardClips({"rgb": [paths["rgb"]], "flow": [paths["flow"]]}, "rgb+flow", mode="test",
                    length=4, crop=32)
    _ = ds[0]                       # the parent has open handles before the workers start
    loader = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context=method,
                        worker_init_fn=worker_init, persistent_workers=False, timeout=120)  # fail, never hang
    videos, starts, rgb_means = [], [], []
    for batch in loader:
        assert batch["rgb"].shape[1:] == (3, 4, 32, 32) and batch["flow"].shape[1:] == (2, 4, 32, 32)
        videos += batch["video"].tolist()
        starts += batch["start"].tolist()
        rgb_means.append(batch["rgb"].mean(dim=(1, 2, 3, 4)))
    assert videos == ds.item_video.tolist()
    assert starts == [int(ds[i]["start"]) for i in range(len(ds))]
    scores = torch.cat(rgb_means)[:, None].numpy()
    per_video = group_scores(scores, videos)
    assert sorted(per_video) == [0, 1, 2, 3]
    ds.close()


def test_plain_h5py_reader_in_the_docs_runs(tmp_path):
    """The dozen-line reader in docs/shard-format.md works on a real shard (short videos loop)."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "shard-format.md").read_text()
    section = text[text.index("## Using shards in another project"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    paths = write_shards(tmp_path, [20, 5], flow=False)
    ds = namespace["ShardVideos"](str(paths["rgb"]))
    clip, label = ds[1]
    assert clip.shape == (3, 16, 48, 64) and clip.dtype == torch.uint8 and label == 1
