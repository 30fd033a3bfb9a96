"""Pictures of stored shards, for people and for the report: the flow of one video of a flow shard
(:func:`visualize_video`, ``prep-cli visualize-flow``) and the motion vectors and residuals of one video
of an mv shard (:func:`visualize_shard_video`, ``prep-cli visualize-mv``).

Flow: ``color_00001.png`` ... (Middlebury colour coding of each dequantized flow, 1-based like the
exported frames) and ``strip.png``: one row per shown flow with the RGB frame, the stored x and y
components (grey, 128 = no motion) and the colour picture. Motion vectors: per P-frame a row of panels
(GOP I-frame | mv | mv_acc | residual | residual_acc) and ``<video>-overview.png`` stacking the rows.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..compressed.encoding import decode_mv, dense_mv
from ..data.mv_source import MvShard
from ..compressed.viz import draw_arrows, label, motion_to_rgb, residual_to_rgb, write_png
from ..core.paths import (FLOW_PICTURE, FLOW_STRIP, MV_OVERVIEW, MV_PICTURE, output_name, shard_index,
                           stage_dir, video_stem)
from ..flow.quantize import dequantize
from ..flow.visualize import flow_to_color, strip
from ..shards import ShardError, ShardReader

WHAT = "visualize-flow"


def _attr(reader: ShardReader, stream: str, key: str):
    """A stream attribute the pictures need; a shard without it is refused (no guessed default)."""
    value = reader.file["frames"][stream].attrs.get(key)
    if value is None:
        raise ShardError(f"{reader.path}: stream {stream!r} has no {key!r} attribute")
    return value


def _find_video(reader: ShardReader, video: str) -> int:
    ids = reader.video_ids()
    if video in ids:
        return ids.index(video)
    if video.isdigit() and int(video) < len(ids):
        return int(video)
    raise ShardError(f"{WHAT}: video {video!r} is not in {reader.path} (neither an id nor an index below "
                     f"{len(ids)}; first ids: {ids[:5]})")


def default_rgb_path(flow_path: Path) -> Path:
    """The RGB shard a flow shard was computed from, where the stages put it:
    ``<results>/extract_flow/<dataset>/shard-K.h5`` -> ``<results>/decode/<dataset>/shard-K.h5``."""
    flow_path = Path(flow_path)
    folder = flow_path.parent
    if folder.parent.name != "extract_flow":
        return flow_path
    return stage_dir(folder.parent.parent, "decode", folder.name) / flow_path.name


def visualize_video(flow_path: str | Path, out_dir: str | Path, video: str = "0", rgb_path: str | Path | None = None,
                    max_frames: int = 8, max_flow: float | None = None) -> list[Path]:
    """Write the colour PNGs of every flow of ``video`` and a strip of its first ``max_frames`` flows.

    Returns the written paths (strip last). Without an RGB shard the strip shows the grey x component
    in place of the frame.
    """
    flow_path, out = Path(flow_path), Path(out_dir)
    with ShardReader(flow_path) as fr:
        if fr.attrs.get("modality") != "flow":
            raise ShardError(f"{WHAT}: {flow_path} is not a flow shard (modality {fr.attrs.get('modality')!r})")
        v = _find_video(fr, video)
        vid = fr.video_ids()[v]
        bound = float(_attr(fr, "x", "bound"))
        qx, qy = fr.decode(v, "x"), fr.decode(v, "y")
    rgb = None
    rgb_path = Path(rgb_path) if rgb_path else default_rgb_path(flow_path)
    if rgb_path.exists() and rgb_path != flow_path:
        with ShardReader(rgb_path) as rr:
            ids = rr.video_ids()
            if vid in ids:
                rgb = rr.decode(ids.index(vid), "rgb", 0, min(len(qx), max_frames))
    out.mkdir(parents=True, exist_ok=True)
    flows = np.stack([dequantize(qx, bound), dequantize(qy, bound)], axis=-1)
    # one saturation for the whole video, so pictures compare; dequantized zero is 0.078 px, keep it white
    scale = max_flow or max(float(np.abs(flows).max()), 1.0)
    written = []
    for i, f in enumerate(flows):
        p = out / FLOW_PICTURE.format(i + 1)
        cv2.imwrite(str(p), cv2.cvtColor(flow_to_color(f, scale), cv2.COLOR_RGB2BGR))
        written.append(p)
    rows = []
    for i in range(min(len(flows), max_frames)):
        frame = rgb[i] if rgb is not None and i < len(rgb) else np.repeat(qx[i][..., None], 3, axis=2)
        rows.append(strip(frame, qx[i], qy[i], flows[i], scale))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    p = out / FLOW_STRIP
    cv2.imwrite(str(p), cv2.cvtColor(np.concatenate(rows[:-1]), cv2.COLOR_RGB2BGR))
    written.append(p)
    return written


def visualize_shard_video(shard: str | Path, video_id: str | None, out_dir: Path,
                          count: int = 12) -> list[Path]:
    """PNGs for the first ``count`` frames of one video of an ``mv`` shard: per P-frame a row of panels
    (GOP I-frame from the ``.iframes.h5`` file beside it | mv | mv_acc | residual | residual_acc), plus
    ``<video>-overview.png`` stacking the rows."""
    shard = Path(shard)
    k = shard_index(shard)
    iframes_path = shard.with_name(output_name("iframes", k)) if k is not None else None
    with ShardReader(shard) as r:
        ids = r.video_ids()
        if video_id is None:
            video_id = ids[0]
        if video_id not in ids:
            raise ShardError(f"{shard}: video {video_id!r} is not in the shard")
        v = ids.index(video_id)
        n = min(count, r.frame_range(v)[1] - r.frame_range(v)[0])
    src = MvShard(shard)                          # any storage: stored arrays, or decoded from the packets
    try:
        bound = float(src.stream_attrs("mv")["bound"])
        keys = ("frame_type", "gop_index", "gop_pos", "mv", "mv_acc", "residual", "residual_acc")
        get = src.arrays(v, 0, n, keys) if n else {k: np.zeros((0, *src.stream_shape(k)), np.uint8) for k in keys}
    finally:
        src.close()
    h, w = src.stream_shape("mv_acc")[1:]
    get["mv"] = dense_mv(get["mv"], int(src.stream_attrs("mv")["grid"]), h, w)
    iframes = None
    if iframes_path is not None and iframes_path.exists():
        with ShardReader(iframes_path) as ri:
            gops = int(get["gop_index"][-1]) + 1 if n else 0
            if video_id in ri.video_ids():
                iframes = list(ri.decode(ri.video_ids().index(video_id), "iframe", 0, gops))
    rows, paths = [], []
    safe = video_stem(video_id)
    for i in range(n):
        if get["frame_type"][i] == 0:
            continue
        mv, acc = decode_mv(get["mv"][i], bound), decode_mv(get["mv_acc"][i], bound)
        top = max(float(np.abs(acc).max()), 1.0)
        iframe = iframes[int(get["gop_index"][i])] if iframes else np.zeros((h, w, 3), np.uint8)
        panels = [label(iframe, "I-frame"),
                  label(draw_arrows(motion_to_rgb(mv, top), mv), f"mv (P{get['gop_pos'][i]})"),
                  label(draw_arrows(motion_to_rgb(acc, top), acc), "mv accumulated"),
                  label(residual_to_rgb(get["residual"][i]), "residual x4"),
                  label(residual_to_rgb(get["residual_acc"][i]), "residual accumulated x4")]
        row = np.concatenate(panels, axis=1)
        rows.append(row)
        paths.append(write_png(out_dir / MV_PICTURE.format(video=safe, index=i), row))
    if rows:
        paths.append(write_png(out_dir / MV_OVERVIEW.format(video=safe), np.concatenate(rows, axis=0)))
    return paths


__all__ = ["visualize_video", "default_rgb_path", "visualize_shard_video"]
