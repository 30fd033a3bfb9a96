"""mcvd-pytorch / fab-jul hdf5_dataloader video shards.

mcvd-pytorch's ``datasets/h5.py`` (``HDF5Maker`` with ``video=True``, from fab-jul/hdf5_dataloader) and its
converters (e.g. ``ucf101_convert.py``) write ``shard_0001.hdf5`` files where video ``i`` (counted from 0
in each shard) is: a scalar dataset ``len/<i>`` (frame count), a group ``<i>`` holding one dataset per frame
named ``"0"``, ``"1"``, ... (uint8 (H, W, 3) RGB or (H, W) gray, lzf-compressed), and, when the converter
has labels, a scalar uint8 ``target/<i>``. UCF-101 shards also carry ``num_train`` / ``num_test`` (the first
``num_train`` videos are the training split). Class names are not stored: labels import as the integer text.
Video ids are ``<file stem>_<index:06d>``.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from . import LayoutError, VideoFrames, VideoRef, encode_rgb
from ..shards.limits import check_frames, read_checked

NAME = "hdf5_dataloader"


def detect(path: Path) -> bool:
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "len" in f and isinstance(f["len"], h5py.Group) and all(k.isdigit() for k in f["len"])


def scan(path: Path, root: Path) -> list[VideoRef]:
    refs = []
    with h5py.File(path, "r") as f:
        keys = sorted(f["len"].keys(), key=int)
        num_train = int(f["num_train"][()]) if "num_train" in f else None
        for k in keys:
            if k not in f or not isinstance(f[k], h5py.Group):
                raise LayoutError(f"{path}: len/{k} has no group {k}")
            label = str(int(f["target"][k][()])) if "target" in f and k in f["target"] else None
            split = None if num_train is None else ("train" if int(k) < num_train else "test")
            refs.append(VideoRef(NAME, path, k, f"{path.stem}_{int(k):06d}", label, split))
    return refs


def read(ref: VideoRef, jpeg_quality: int) -> VideoFrames:
    with h5py.File(ref.path, "r") as f:
        n = int(f["len"][ref.key][()])
        check_frames(n, ref.path, f"len/{ref.key}")
        group = f[ref.key]
        if len(group) != n:
            raise LayoutError(f"{ref.path}: len/{ref.key} says {n} frames, group {ref.key} has {len(group)}")
        return VideoFrames([encode_rgb(read_checked(group[str(i)], ref.path, what=f"{ref.key}/{i}"),
                                       jpeg_quality) for i in range(n)])
