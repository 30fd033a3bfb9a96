"""av2hdf5 files (rjw57/av2hdf5, written with PyTables).

One file per video; frame ``k`` is the root dataset ``/frame%05d`` (``frame00000``, ...) with attributes
``encoding`` (``raw``: an (H, W, 3) uint8 RGB array; ``jpeg`` / ``png``: a 1-D uint8 array of the encoded
file), ``original_idx`` (its index in the source video), ``content_id`` and ``encoded_id`` (SHA-1 hex of the
pixels and of the stored bytes). PyTables also adds ``CLASS``, ``VERSION``, ``TITLE`` attributes. No labels.
JPEG frames are copied; raw and PNG frames are JPEG-encoded once. Video id: the file stem.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import h5py
import numpy as np

from . import LayoutError, VideoFrames, VideoRef, encode_rgb, to_bytes
from ..shards.limits import check_frames, check_read

NAME = "av2hdf5"
_FRAME = re.compile(r"^frame\d{5,}$")


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.shape == () else value[0]
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


def _frames(f: h5py.File) -> list[str]:
    return sorted((k for k in f.keys() if _FRAME.match(k)), key=lambda k: int(k[5:]))


def detect(path: Path) -> bool:
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        keys = _frames(f)
        return bool(keys) and "encoding" in f[keys[0]].attrs


def scan(path: Path, root: Path) -> list[VideoRef]:
    return [VideoRef(NAME, path, "", path.stem, None, None)]


def read(ref: VideoRef, jpeg_quality: int) -> VideoFrames:
    out = []
    with h5py.File(ref.path, "r") as f:
        keys = _frames(f)
        check_frames(len(keys), ref.path, "the frame datasets")
        for k in keys:
            ds = f[k]
            check_read(ds, ds.shape[0] if ds.ndim else 1, ref.path, k)
            enc = _text(ds.attrs.get("encoding", "raw"))
            if enc == "jpeg":
                out.append(to_bytes(ds[()]))
            elif enc == "png":
                img = cv2.imdecode(np.asarray(ds[()], np.uint8), cv2.IMREAD_COLOR)
                if img is None:
                    raise LayoutError(f"{ref.path}/{k}: PNG data does not decode")
                out.append(encode_rgb(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), jpeg_quality))
            elif enc == "raw":
                out.append(encode_rgb(ds[()], jpeg_quality))
            else:
                raise LayoutError(f"{ref.path}/{k}: unknown encoding {enc!r}")
    return VideoFrames(out)
