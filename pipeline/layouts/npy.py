"""video_features' layout of feature files: ``<video>_<key>.npy`` per video, written from feature shards.

`video_features <https://github.com/v-iashin/video_features>`_ saves, for each video and feature type,
``<video>_<feature_type>.npy`` (clips x D), ``<video>_timestamps_ms.npy`` and ``<video>_fps.npy``. An export of
a feature shard (modality ``feature``, ``prep-cli extract-features``) writes the same per video::

    <video>_<key>.npy            (K, D) the clip features, in the shard's dtype (float16 or float32)
    <video>_timestamps_ms.npy    (K,) float64: the time of each clip's last frame in milliseconds (video_features
                                 records the reader's position when a stack of frames is complete)
    <video>_fps.npy              () float64: the frame rate of the frames the features were computed from
    <video>_frame_range.npy      (K, 2) int32: each clip's first and last frame index (inclusive)
    <video>_logits.npy           (K, C) float32, when the shard holds logits

``<key>`` is the feature set's name (the shard's ``extract_features.name``); ``<video>`` the video id made
file-name safe. ``classes.txt`` and ``labels.txt`` (``<video> <label> <split>``) sit beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..shards import ShardReader
from . import LayoutError, safe_name

NAME = "npy"


def feature_key(attrs: dict) -> str:
    """The ``<key>`` of a feature shard's files: its set's name (``features`` when it records none)."""
    return safe_name(str(attrs.get("extract_features.name") or "features"))


def video_files(out_dir: Path, video_id: str, key: str) -> dict[str, Path]:
    """The files of one video: ``{"features", "timestamps_ms", "fps", "frame_range", "logits"}``."""
    stem = safe_name(video_id)
    return {"features": out_dir / f"{stem}_{key}.npy", "timestamps_ms": out_dir / f"{stem}_timestamps_ms.npy",
            "fps": out_dir / f"{stem}_fps.npy", "frame_range": out_dir / f"{stem}_frame_range.npy",
            "logits": out_dir / f"{stem}_logits.npy"}


def write_shard(shard: str | Path, out_dir: str | Path) -> tuple[list[Path], list[str], list[str]]:
    """Write every video of a feature shard; returns the files written, the class names and the
    ``labels.txt`` rows of its labelled videos."""
    out_dir = Path(out_dir)
    files: list[Path] = []
    rows: list[str] = []
    with ShardReader(shard) as r:
        a = r.attrs
        if a.get("modality") != "feature":
            raise LayoutError(f"{shard}: the npy layout holds features; this is a {a.get('modality')!r} shard "
                              "(prep-cli extract-features writes feature shards)")
        key = feature_key(a)
        t = r.table()
        logits = "logits" in r.streams
        for v, vid in enumerate(t["video_id"]):
            fps = float(t["fps"][v])
            frames = np.asarray(r.decode(v, "frame_range"))
            out = video_files(out_dir, str(vid), key)
            np.save(out["features"], np.asarray(r.decode(v, "feature")))
            np.save(out["timestamps_ms"], frames[:, 1].astype(np.float64) / fps * 1000.0)
            np.save(out["fps"], np.float64(fps))
            np.save(out["frame_range"], frames)
            kinds = ["features", "timestamps_ms", "fps", "frame_range"]
            if logits:
                np.save(out["logits"], np.asarray(r.decode(v, "logits")))
                kinds.append("logits")
            files += [out[k] for k in kinds]
            if int(t["label"][v]) >= 0:
                rows.append(f"{safe_name(str(vid))} {int(t['label'][v])} {t['split'][v]}")
        return files, r.classes, rows


def read_video(out_dir: str | Path, video_id: str, key: str) -> dict[str, np.ndarray]:
    """One exported video's arrays (``features``, ``timestamps_ms``, ``fps``, ``frame_range`` and, when
    written, ``logits``)."""
    out = {k: p for k, p in video_files(Path(out_dir), video_id, key).items() if p.exists()}
    if "features" not in out:
        raise LayoutError(f"{out_dir}: no {safe_name(video_id)}_{key}.npy")
    return {k: np.load(p) for k, p in out.items()}
