"""Convert foreign layouts to vidshard files (import) and vidshard files to foreign layouts (export).

Import writes ``out/rgb/shard-%05d.h5`` and, for sources with flow, ``out/flow/shard-%05d.h5`` (shard k of
both holds the same videos in the same order; a video without flow is absent from the flow shard). JPEG
bytes in the source are copied unchanged; raw or PNG frames are JPEG-encoded once at ``jpeg_quality``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

from ..media import jpeg
from ..core.paths import shard_name
from ..shards import ShardReader, ShardWriter, Stream
from . import LayoutError, VideoRef, iter_lines, read, read_side_labels, scan

EXPORT_LAYOUTS = ("rawframes", "kenshohara", "npy")


def _classes_and_labels(refs: list[VideoRef], classes: list[str] | None) -> tuple[list[str], list[int]]:
    names = [r.label for r in refs]
    given = [n for n in names if n is not None]
    if classes is None:
        if given and all(n.lstrip("-").isdigit() for n in given):
            classes = [str(i) for i in range(max(int(n) for n in given) + 1)]
        else:
            classes = sorted(set(given))
    index = {c: i for i, c in enumerate(classes)}
    labels = []
    for r, n in zip(refs, names):
        if n is None:
            labels.append(-1)
        elif n in index:
            labels.append(index[n])
        elif n.isdigit() and int(n) < len(classes):
            labels.append(int(n))
        else:
            raise LayoutError(f"video {r.video_id}: label {n!r} is not one of the {len(classes)} classes")
    return classes, labels


def _labelled(sources: Sequence[str | Path], refs: list[VideoRef], labels, classes, default_split: str
              ) -> tuple[list[VideoRef], list[str], list[int]]:
    """The references with the side file's labels and splits applied, the class list and label indices."""
    side = read_side_labels(labels) if labels else {}
    if classes is None:     # an exported folder carries its class order in classes.txt
        found = [Path(s) / "classes.txt" for s in sources if (Path(s) / "classes.txt").is_file()]
        classes = found[0] if found else None
    class_list = list(iter_lines(Path(classes))) if classes else None
    fixed = []
    for r in refs:
        label, split = r.label, r.split
        if r.video_id in side:
            label, split = side[r.video_id][0], side[r.video_id][1] or split
        fixed.append(VideoRef(r.layout, r.path, r.key, r.video_id, label, split or default_split))
    class_list, label_idx = _classes_and_labels(fixed, class_list)
    return fixed, class_list, label_idx


def _write_import_shard(k: int, chunk: list[tuple[VideoRef, int]], out_dir: Path, common: dict, fps: float,
                        jpeg_quality: int, counts: dict) -> list[Path]:
    """Shard ``k`` of the import: the RGB shard, and the flow shard when some video has flow."""
    rgb_path = out_dir / "rgb" / shard_name(k)
    flow_w = None
    with ShardWriter(rgb_path, modality="rgb", shard=k, streams=[Stream("rgb")], **common) as w:
        try:
            for ref, lab in chunk:
                frames = read(ref, jpeg_quality)
                h, wd = jpeg.decode(frames.rgb[0]).shape[:2] if frames.rgb else (0, 0)
                w.add_video(ref.video_id, lab, ref.split, fps, h, wd, {"rgb": frames.rgb})
                counts["videos"] += 1
                counts["frames"] += len(frames.rgb)
                if frames.flow_x is None:
                    continue
                if flow_w is None:
                    flow_streams = [Stream("x", color="gray"), Stream("y", color="gray")]
                    flow_w = ShardWriter(out_dir / "flow" / shard_name(k), modality="flow", shard=k,
                                         streams=flow_streams, **common)
                fh, fw = jpeg.decode(frames.flow_x[0], gray=True).shape if frames.flow_x else (h, wd)
                flow_w.add_video(ref.video_id, lab, ref.split, fps, fh, fw, {"x": frames.flow_x, "y": frames.flow_y})
                counts["flow_videos"] += 1
        except BaseException:
            if flow_w is not None:
                flow_w.abort()
            raise
    if flow_w is None:
        return [rgb_path]
    flow_w.close()
    return [rgb_path, out_dir / "flow" / shard_name(k)]


def import_sources(sources: Sequence[str | Path], out_dir: str | Path, *, layout: str = "auto",
                   labels: str | Path | None = None, classes: str | Path | None = None,
                   dataset: str = "imported", videos_per_shard: int = 500, fps: float = 25.0,
                   jpeg_quality: int = 95, default_split: str = "train") -> dict:
    """Convert every video of ``sources`` into vidshard files under ``out_dir``; returns a summary dict.

    ``labels``: side file ``video_id label [split]`` (wins over what the source says). ``classes``: a file of
    class names, one a line, fixing the class order (default: ``classes.txt`` in a source folder, as exports
    write it; else sorted names, or 0..max for integer labels).
    """
    refs = scan(sources, layout)
    if not refs:
        raise LayoutError("no videos found in the sources")
    refs, class_list, label_idx = _labelled(sources, refs, labels, classes, default_split)
    listing = json.dumps([(r.video_id, lab, r.split) for r, lab in zip(refs, label_idx)])
    sha = hashlib.sha256(listing.encode()).hexdigest()
    num_shards = math.ceil(len(refs) / videos_per_shard)
    params = {"import": {"layouts": ",".join(sorted({r.layout for r in refs})),
                         "sources": json.dumps([str(s) for s in sources]),
                         "labels": str(labels) if labels else "", "jpeg_quality": int(jpeg_quality),
                         "fps": float(fps)}}
    common = dict(dataset=dataset, encoding="jpeg", num_shards=num_shards, classes=class_list,
                  manifest_sha256=sha, params=params)
    written: list[Path] = []
    counts = {"videos": 0, "flow_videos": 0, "frames": 0}
    pairs = list(zip(refs, label_idx))
    for k in range(num_shards):
        chunk = pairs[k * videos_per_shard:(k + 1) * videos_per_shard]
        written += _write_import_shard(k, chunk, Path(out_dir), common, fps, jpeg_quality, counts)
    return {**counts, "shards": [str(p) for p in written], "classes": len(class_list)}


def export_shards(shards: Sequence[str | Path], out_dir: str | Path, layout: str) -> list[Path]:
    """Write rgb/flow vidshard files as ``layout`` (rawframes | kenshohara) under ``out_dir``.

    Besides the layout's own files, ``classes.txt`` (class names in label order) and, for kenshohara,
    ``labels.txt`` (``<file stem> <label index> <split>``, unlabeled videos omitted) let an import restore
    labels and splits: ``prep-cli shards import OUT --labels OUT/labels.txt --classes OUT/classes.txt``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if layout == "rawframes":
        from .rawframes import write_shards
        return write_shards(shards, out_dir)
    if layout == "npy":
        return _export_npy(shards, out_dir)
    if layout != "kenshohara":
        raise LayoutError(f"cannot export to {layout!r}; export layouts: {EXPORT_LAYOUTS}")
    from .kenshohara import write_shard
    from . import safe_name
    rows, classes, files = [], None, []
    for s in shards:
        files.extend(write_shard(s, out_dir))
        with ShardReader(s) as r:
            classes = classes or r.classes
            if r.attrs["modality"] != "rgb":
                continue
            t = r.table()
            for v, vid in enumerate(t["video_id"]):
                if int(t["label"][v]) >= 0:
                    rows.append(f"{safe_name(vid.rsplit('/', 1)[-1])} {int(t['label'][v])} {t['split'][v]}")
    if classes is not None:
        (out_dir / "classes.txt").write_text("".join(c + "\n" for c in classes))
    if rows:
        (out_dir / "labels.txt").write_text("\n".join(rows) + "\n")
    return sorted(set(files))


def _export_npy(shards: Sequence[str | Path], out_dir: Path) -> list[Path]:
    """Feature shards as video_features' ``<video>_<key>.npy`` files (:mod:`.npy`), with ``classes.txt``
    and ``labels.txt`` (``<video> <label index> <split>``)."""
    from .npy import write_shard
    files, rows, classes = [], [], None
    for s in shards:
        written, names, labelled = write_shard(s, out_dir)
        files += written
        rows += labelled
        classes = classes or names
    if classes is not None:
        (out_dir / "classes.txt").write_text("".join(c + "\n" for c in classes))
    if rows:
        (out_dir / "labels.txt").write_text("\n".join(rows) + "\n")
    return sorted(set(files))
