"""VideoGPT HDF5 files.

VideoGPT's HDF5 dataset (``videogpt/data.py``; ``scripts/create_moving_mnist_hdf5_dataset.py`` writes one)
keeps every split as two plain datasets: ``<split>_data`` of shape (total frames, H, W, 3) uint8 RGB, all
videos of the split concatenated, and ``<split>_idx`` (videos,) int64, the first frame of each video; a
video ends where the next starts (the last at the end of ``<split>_data``). Splits are usually ``train``
and ``test``. There are no labels. Video ids here are ``<file stem>_<split>_<index:06d>``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from . import LayoutError, VideoFrames, VideoRef, encode_rgb
from ..shards.limits import check_count, check_frames, max_videos_per_file, read_checked

NAME = "videogpt"


def _splits(f: h5py.File) -> list[str]:
    return sorted(k[:-5] for k in f.keys() if k.endswith("_data") and f"{k[:-5]}_idx" in f
                  and isinstance(f[k], h5py.Dataset) and f[k].ndim == 4)


def detect(path: Path) -> bool:
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return bool(_splits(f))


def _bounds(f: h5py.File, split: str) -> np.ndarray:
    path = f.filename
    check_count(f[f"{split}_idx"].size, max_videos_per_file(), path, f"the length of {split}_idx",
                "MAX_VIDEOS_PER_FILE")
    idx = np.asarray(read_checked(f[f"{split}_idx"], path), dtype=np.int64).reshape(-1)
    total = f[f"{split}_data"].shape[0]
    bounds = np.append(idx, total)
    if np.any(np.diff(bounds) < 0) or (len(idx) and (idx[0] < 0 or idx[-1] > total)):
        raise LayoutError(f"{split}_idx is not an increasing list of start frames inside {split}_data")
    return bounds


def scan(path: Path, root: Path) -> list[VideoRef]:
    refs = []
    with h5py.File(path, "r") as f:
        for split in _splits(f):
            for i in range(len(_bounds(f, split)) - 1):
                refs.append(VideoRef(NAME, path, f"{split}:{i}", f"{path.stem}_{split}_{i:06d}", None, split))
    return refs


def read(ref: VideoRef, jpeg_quality: int) -> VideoFrames:
    split, i = ref.key.rsplit(":", 1)
    with h5py.File(ref.path, "r") as f:
        bounds = _bounds(f, split)
        a, b = int(bounds[int(i)]), int(bounds[int(i) + 1])
        check_frames(b - a, ref.path, f"video {i} of {split}_data")
        data = read_checked(f[f"{split}_data"], ref.path, a, b, f"video {i} of {split}_data")
    return VideoFrames([encode_rgb(frame, jpeg_quality) for frame in data])
