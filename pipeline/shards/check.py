"""Looking at shards: :func:`inspect` (a summary for people) and :func:`verify` (every problem found)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media import jpeg
from .format import ShardError, _json
from .reader import ShardReader


def inspect(path: str | Path) -> str:
    """A human-readable summary of a shard."""
    with ShardReader(path) as r:
        a = r.attrs
        t = r.table()
        lines = [f"{path}", f"  format      {a['format']} v{a['format_version']} by {a.get('producer')}",
                 f"  dataset     {a['dataset']}  modality {a['modality']}  encoding {a['encoding']}",
                 f"  shard       {a['shard']} of {a['num_shards']}  manifest sha256 {a['manifest_sha256'][:16]}...",
                 f"  videos      {len(r)}  frames {int(t['offset'][-1]) if len(t['offset']) else 0}"
                 f"  classes {len(r.classes)}  failures {len(r.failures)}"]
        for name in r.streams:
            ds = r.file["frames"][name]
            size = ds.id.get_storage_size()
            lines.append(f"  stream      {name}: {ds.attrs.get('encoding')} {ds.shape} {ds.dtype}"
                         + (f" {ds.attrs.get('color')}" if ds.attrs.get("encoding") == "jpeg" else "")
                         + f" ({size / 2**20:.1f} MiB index/data)")
        if len(r):
            nf = t["num_frames"]
            lines.append(f"  frames/video min {nf.min()} mean {nf.mean():.1f} max {nf.max()}; "
                         f"size {t['width'][0]}x{t['height'][0]}; fps {t['fps'][0]:g}")
        for fail in r.failures[:10]:
            lines.append(f"  failed      {fail['video_id']} ({fail['stage']}): {fail['error']}")
        params = r.params
        for section, values in params.items():
            lines.append(f"  params      {section}: {_json(values)}")
    return "\n".join(lines)


def verify(path: str | Path, decode_jpeg: bool = True) -> list[str]:
    """Check structure, counts, offsets and (optionally) that every JPEG decodes at the recorded size.

    Returns the list of problems found; empty means the shard is sound.
    """
    problems: list[str] = []
    try:
        r = ShardReader(path)
        f = r.file
    except (OSError, ShardError) as exc:
        return [f"cannot open: {exc}"]
    try:
        for key in ("format_version", "dataset", "modality", "encoding", "shard", "num_shards",
                    "manifest_sha256", "producer", "params"):
            if key not in f.attrs:
                problems.append(f"attribute {key!r} is missing")
        for key in ("classes", "videos/video_id", "videos/label", "videos/split", "videos/num_frames",
                    "videos/fps", "videos/height", "videos/width", "videos/offset", "frames"):
            if key not in f:
                problems.append(f"dataset {key!r} is missing")
        if problems:
            return problems
        n = len(r)
        for key, ds in f["videos"].items():
            if key != "offset" and ds.shape != (n,):
                problems.append(f"videos/{key} has shape {ds.shape}, expected ({n},)")
        off = f["videos/offset"][()]
        nf = f["videos/num_frames"][()]
        if off[0] != 0 or np.any(np.diff(off) < 0):
            problems.append("videos/offset does not start at 0 or decreases")
        elif not np.array_equal(np.diff(off), nf):
            problems.append("videos/num_frames does not match the offset differences")
        labels = f["videos/label"][()]
        if np.any((labels < -1) | (labels >= len(f["classes"]))):
            problems.append("videos/label has values outside [-1, number of classes)")
        heights, widths = f["videos/height"][()], f["videos/width"][()]
        for name, ds in f["frames"].items():
            if ds.shape[0] != off[-1]:
                problems.append(f"frames/{name} has {ds.shape[0]} frames, offset says {off[-1]}")
                continue
            if decode_jpeg and ds.attrs.get("encoding") == "jpeg":
                gray = ds.attrs.get("color") == "gray"
                for v in range(n):
                    for i in range(off[v], off[v + 1]):
                        try:
                            img = jpeg.decode(ds[i], gray=gray)
                        except ValueError:
                            problems.append(f"frames/{name}[{i}] (video {v}, frame {i - off[v]}) does not decode")
                            continue
                        if img.shape[:2] != (heights[v], widths[v]):
                            problems.append(f"frames/{name}[{i}] decodes to {img.shape[:2]}, video {v} "
                                            f"records {(int(heights[v]), int(widths[v]))}")
                        if len(problems) > 20:
                            return problems + ["(stopped after 20 problems)"]
    except (OSError, KeyError, ValueError, IndexError) as exc:  # what a damaged file raises inside HDF5
        problems.append(f"unreadable: {type(exc).__name__}: {exc}")
    finally:
        r.close()
    return problems


def _attrs(obj) -> dict:
    return {k: obj.attrs[k] for k in obj.attrs}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype == object or b.dtype == object:
            return a.shape == b.shape and all(np.array_equal(np.asarray(x), np.asarray(y))
                                              for x, y in zip(a.ravel(), b.ravel()))
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def diff(path_a: str | Path, path_b: str | Path, ignore_attrs: tuple[str, ...] = ()) -> list[str]:
    """Every difference between two HDF5 files' content: root and dataset attributes (except the root
    attributes named in ``ignore_attrs``), the set of datasets, and each dataset's shape, dtype, storage
    filters and values. Empty means the files hold the same data (their bytes may still differ)."""
    import h5py

    out: list[str] = []
    with h5py.File(path_a, "r") as fa, h5py.File(path_b, "r") as fb:
        aa, ab = _attrs(fa), _attrs(fb)
        for key in sorted(set(aa) | set(ab)):
            if key in ignore_attrs:
                continue
            if key not in aa or key not in ab:
                out.append(f"attribute {key!r} only in {'the first' if key in aa else 'the second'} file")
            elif not _same(aa[key], ab[key]):
                out.append(f"attribute {key!r}: {aa[key]!r} != {ab[key]!r}")
        names_a, names_b = [], []
        fa.visititems(lambda n, o: names_a.append(n) if isinstance(o, h5py.Dataset) else None)
        fb.visititems(lambda n, o: names_b.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in sorted(set(names_a) ^ set(names_b)):
            out.append(f"dataset {name!r} only in {'the first' if name in names_a else 'the second'} file")
        for name in sorted(set(names_a) & set(names_b)):
            da, db = fa[name], fb[name]
            layout_a = (da.shape, da.dtype, da.chunks, da.compression, da.compression_opts, da.shuffle)
            layout_b = (db.shape, db.dtype, db.chunks, db.compression, db.compression_opts, db.shuffle)
            if layout_a != layout_b:
                out.append(f"dataset {name!r}: layout {layout_a} != {layout_b}")
                continue
            if not _same(da[()], db[()]):
                out.append(f"dataset {name!r}: values differ")
            xa, xb = _attrs(da), _attrs(db)
            for key in sorted(set(xa) | set(xb)):
                if key not in xa or key not in xb or not _same(xa[key], xb[key]):
                    out.append(f"dataset {name!r} attribute {key!r} differs")
    return out
