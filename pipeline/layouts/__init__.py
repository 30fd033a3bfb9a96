"""Foreign HDF5 / folder layouts: recognise, read and write the files other video projects use.

Each layout is a module with ``NAME``, ``detect(path) -> bool``, ``scan(path, root) -> list[VideoRef]``
(cheap: ids, labels, splits, no pixels) and ``read(ref, jpeg_quality) -> VideoFrames`` (the frames as JPEG
bytes: JPEG sources are copied byte for byte, raw/PNG sources are JPEG-encoded once). Layouts that can be
written also have ``write_shard(shard_path, out_dir)`` (kenshohara) or ``write_shards`` (rawframes).

Registered layouts (see docs/layouts.md):

=================  ==========================================================================================
``kenshohara``     3D-ResNets-PyTorch: one ``.hdf5`` per video, vlen uint8 JPEG dataset ``video``; flow in
                   ``video_u`` / ``video_v``; files under ``<class>/`` folders
``videogpt``       VideoGPT: ``<split>_data`` (T, H, W, 3) uint8 with ``<split>_idx`` start offsets
``hdf5_dataloader`` mcvd-pytorch / fab-jul hdf5_dataloader shards: ``len/<i>``, ``target/<i>``, group ``<i>``
                   holding one dataset per frame (``"0"``, ``"1"``, ...)
``av2hdf5``        av2hdf5: one dataset ``/frame%05d`` per frame with an ``encoding`` attribute
                   (raw | jpeg | png)
``rawframes``      mmaction2 rawframes folders: ``<frame_dir>/img_00001.jpg``, ``flow_x_00001.jpg``, 1-based
=================  ==========================================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from ..shards import ShardError


class LayoutError(ShardError):
    """A source file is not in any known layout, or is malformed for the layout it claims (a ShardError, so
    ``prep-cli`` reports it as a one-line user error with exit status 2)."""


@dataclass(frozen=True)
class VideoRef:
    """One video found in a source: where it is and what the source says about it (no pixels)."""
    layout: str
    path: Path
    key: str                 # layout-specific locator inside ``path`` (dataset/group name, index)
    video_id: str
    label: str | None = None  # class name (or the source's integer as text); None when the source has none
    split: str | None = None


@dataclass
class VideoFrames:
    """The frames of one video as JPEG bytes: ``rgb`` (colour) and optional ``flow_x`` / ``flow_y`` (gray)."""
    rgb: list[bytes]
    flow_x: list[bytes] | None = None
    flow_y: list[bytes] | None = None
    extra: dict = field(default_factory=dict)


def _modules():
    from . import av2hdf5, hdf5_dataloader, kenshohara, rawframes, videogpt
    return {m.NAME: m for m in (kenshohara, videogpt, hdf5_dataloader, av2hdf5, rawframes)}


def names() -> list[str]:
    return list(_modules())


def get(name: str):
    mods = _modules()
    if name not in mods:
        raise LayoutError(f"unknown layout {name!r}; known: {sorted(mods)}")
    return mods[name]


def detect(path: str | Path) -> str:
    """The name of the layout of one file (or rawframes folder); LayoutError when none matches."""
    path = Path(path)
    for name, mod in _modules().items():
        try:
            if mod.detect(path):
                return name
        except OSError:
            continue
    raise LayoutError(f"{path}: not a file of any known layout ({', '.join(names())})")


def expand(sources: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Source arguments -> ``(file or frame folder, the argument it came from)``, sorted within each argument.

    A directory argument is either a rawframes folder (it has ``*/img_00001.jpg`` below it) or a tree searched
    for ``*.h5`` / ``*.hdf5`` files."""
    out: list[tuple[Path, Path]] = []
    for src in map(Path, sources):
        if not src.exists():
            raise LayoutError(f"source {src} does not exist")
        if src.is_dir():
            from . import rawframes
            if rawframes.detect(src):
                out.append((src, src))
                continue
            files = sorted(p for p in src.rglob("*") if p.suffix in (".h5", ".hdf5") and p.is_file())
            if not files:
                raise LayoutError(f"{src}: no .h5/.hdf5 files and no rawframes folders inside")
            out.extend((f, src) for f in files)
        else:
            out.append((src, src.parent))
    return out


def scan(sources: Iterable[str | Path], layout: str = "auto") -> list[VideoRef]:
    """Every video in ``sources`` (files or folders), in a stable order."""
    refs: list[VideoRef] = []
    for path, root in expand(sources):
        name = detect(path) if layout == "auto" else layout
        mod = get(name)
        if layout != "auto" and not mod.detect(path):
            raise LayoutError(f"{path} is not a {name} file")
        refs.extend(mod.scan(path, root))
    ids = [r.video_id for r in refs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise LayoutError(f"duplicate video ids across sources: {dup}")
    return refs


def read(ref: VideoRef, jpeg_quality: int) -> VideoFrames:
    return get(ref.layout).read(ref, jpeg_quality)


# -- helpers shared by the layout modules ---------------------------------------------------------------

def is_vlen_uint8(ds: h5py.Dataset) -> bool:
    base = h5py.check_vlen_dtype(ds.dtype)
    return base is not None and np.dtype(base) == np.uint8


def to_bytes(value) -> bytes:
    """A vlen/1-D uint8 element (numpy array) -> bytes."""
    return np.asarray(value, dtype=np.uint8).tobytes()


def encode_rgb(image: np.ndarray, quality: int) -> bytes:
    """Raw uint8 (H, W, 3) RGB, (H, W, 1) or (H, W) gray -> JPEG bytes (gray is replicated to RGB)."""
    from ..media import jpeg
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise LayoutError(f"cannot store a frame of shape {image.shape} as RGB")
    return jpeg.encode(np.ascontiguousarray(image), quality)


def safe_name(text: str) -> str:
    """A file-name-safe version of a video id or class name (no path separators)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "_"


def read_side_labels(path: str | Path) -> dict[str, tuple[str, str | None]]:
    """A labels side file -> ``{video_id: (label, split or None)}``.

    One video a line: ``video_id label [split]``, separated by whitespace, commas or tabs; ``#`` starts a
    comment. ``label`` is a class name or an integer class index."""
    out: dict[str, tuple[str, str | None]] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[,\t ]+", line) if p]
        if len(parts) < 2:
            raise LayoutError(f"{path}:{n}: expected 'video_id label [split]', got {line!r}")
        out[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else None)
    return out


def iter_lines(path: Path) -> Iterator[str]:
    for line in path.read_text().splitlines():
        if line.strip():
            yield line.strip()
