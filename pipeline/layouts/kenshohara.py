"""kenshohara/3D-ResNets-PyTorch HDF5 videos.

Their ``util_scripts/generate_video_hdf5.py`` extracts ``image_%05d.jpg`` frames with ffmpeg and stores each
video as ``<dst>/<class>/<video>.hdf5`` holding one 1-D dataset ``video`` of variable-length uint8 (each
element is the bytes of one JPEG file, in frame order). Their flow loader reads two more datasets of the
same kind, ``video_u`` (x) and ``video_v`` (y), grayscale JPEGs. There are no labels or splits inside the
file: the class is the folder name (``test/`` holds unlabeled test videos), the split lives in their JSON
annotation, so a labels side file can supply both.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from . import LayoutError, VideoFrames, VideoRef, is_vlen_uint8, safe_name, to_bytes
from ..shards.limits import check_frames, read_checked

NAME = "kenshohara"
UNLABELED_DIR = "test"


def detect(path: Path) -> bool:
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "video" in f and isinstance(f["video"], h5py.Dataset) and is_vlen_uint8(f["video"]) \
            and f.attrs.get("format") != "vidshard"


def scan(path: Path, root: Path) -> list[VideoRef]:
    """One video per file; label = the class folder when the file sits in ``root/<class>/``."""
    label = None
    if path.parent != root and path.parent.parent == root and path.parent.name != UNLABELED_DIR:
        label = path.parent.name
    return [VideoRef(NAME, path, "video", path.stem, label, None)]


def read(ref: VideoRef, jpeg_quality: int) -> VideoFrames:
    with h5py.File(ref.path, "r") as f:
        names = ["video"] + (["video_u", "video_v"] if "video_u" in f and "video_v" in f else [])
        for name in names:           # declared sizes first: a crafted file is refused, not allocated
            check_frames(f[name].shape[0] if f[name].ndim else 1, ref.path, f"/{name}")
        rgb = [to_bytes(b) for b in read_checked(f["video"], ref.path)]
        fx = fy = None
        if len(names) > 1:
            fx = [to_bytes(b) for b in read_checked(f["video_u"], ref.path)]
            fy = [to_bytes(b) for b in read_checked(f["video_v"], ref.path)]
    return VideoFrames(rgb, fx, fy)


def _write_vlen(f: h5py.File, name: str, frames) -> None:
    ds = f.create_dataset(name, (len(frames),), dtype=h5py.vlen_dtype(np.uint8))
    for i, b in enumerate(frames):       # element by element, like the original writer
        ds[i] = np.frombuffer(bytes(b), dtype=np.uint8)


def write_shard(shard_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every video of one vidshard as ``out_dir/<class>/<video>.hdf5`` (``test/`` when unlabeled).

    RGB shards fill ``video``; flow shards add ``video_u`` / ``video_v`` to the same files (export RGB first
    or after, either order works). Returns the files written."""
    from ..shards import ShardReader
    out_dir = Path(out_dir)
    written = []
    with ShardReader(shard_path) as r:
        modality = r.attrs["modality"]
        if modality not in ("rgb", "flow"):
            raise LayoutError(f"{shard_path}: the kenshohara layout holds rgb or flow, not {modality}")
        classes = r.classes
        table = r.table()
        for v, vid in enumerate(table["video_id"]):
            label = int(table["label"][v])
            folder = safe_name(classes[label]) if label >= 0 else UNLABELED_DIR
            path = out_dir / folder / f"{safe_name(vid.rsplit('/', 1)[-1])}.hdf5"
            path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(path, "a") as f:
                streams = {"video": "rgb"} if modality == "rgb" else {"video_u": "x", "video_v": "y"}
                for name, stream in streams.items():
                    if name in f:
                        del f[name]
                    _write_vlen(f, name, r.raw(v, stream))
            written.append(path)
    return written
