"""``prep-cli visualize-flow``: PNG pictures of the flow of one video of a flow shard.

Writes ``color_00001.png`` ... (Middlebury colour coding of each dequantized flow, 1-based like the
exported frames) and ``strip.png``: one row per shown flow with the RGB frame, the stored x and y
components (grey, 128 = no motion) and the colour picture.
"""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from .flow.quantize import dequantize
from .flow.visualize import flow_to_color, strip
from .shards import ShardError, ShardReader

STAGE = "visualize_flow"


def _find_video(reader: ShardReader, video: str) -> int:
    ids = reader.video_ids()
    if video in ids:
        return ids.index(video)
    if video.isdigit() and int(video) < len(ids):
        return int(video)
    raise ShardError(f"{STAGE}: video {video!r} is not in {reader.path} (neither an id nor an index below "
                     f"{len(ids)}; first ids: {ids[:5]})")


def default_rgb_path(flow_path: Path) -> Path:
    """results/extract_flow/<dataset>/shard-K.h5 -> results/decode/<dataset>/shard-K.h5."""
    parts = list(flow_path.parts)
    if "extract_flow" in parts:
        parts[len(parts) - 1 - parts[::-1].index("extract_flow")] = "decode"
    return Path(*parts)


def visualize_video(flow_path: str | Path, out_dir: str | Path, video: str = "0", rgb_path: str | Path | None = None,
                    max_frames: int = 8, max_flow: float | None = None) -> list[Path]:
    """Write the colour PNGs of every flow of ``video`` and a strip of its first ``max_frames`` flows.

    Returns the written paths (strip last). Without an RGB shard the strip shows the grey x component
    in place of the frame.
    """
    flow_path, out = Path(flow_path), Path(out_dir)
    with ShardReader(flow_path) as fr:
        if fr.attrs.get("modality") != "flow":
            raise ShardError(f"{STAGE}: {flow_path} is not a flow shard (modality {fr.attrs.get('modality')!r})")
        v = _find_video(fr, video)
        vid = fr.video_ids()[v]
        bound = float(fr.file["frames/x"].attrs.get("bound", 20.0))
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
        p = out / f"color_{i + 1:05d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(flow_to_color(f, scale), cv2.COLOR_RGB2BGR))
        written.append(p)
    rows = []
    for i in range(min(len(flows), max_frames)):
        frame = rgb[i] if rgb is not None and i < len(rgb) else np.repeat(qx[i][..., None], 3, axis=2)
        rows.append(strip(frame, qx[i], qy[i], flows[i], scale))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    p = out / "strip.png"
    cv2.imwrite(str(p), cv2.cvtColor(np.concatenate(rows[:-1]), cv2.COLOR_RGB2BGR))
    written.append(p)
    return written


@click.command("visualize-flow")
@click.argument("flow_shard", type=click.Path(exists=True, dir_okay=False))
@click.option("--video", default="0", show_default=True, help="Video id, or its index in the shard.")
@click.option("--rgb", "rgb_shard", type=click.Path(dir_okay=False), default=None,
              help="The matching RGB shard for the strip (default: the decode shard of the same name).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: results/visualize_flow/<shard>/<video>).")
@click.option("--frames", "max_frames", type=int, default=8, show_default=True, help="Rows of the strip.")
@click.option("--max-flow", type=float, default=None, help="Magnitude drawn fully saturated (default: the largest).")
def visualize_flow_cmd(flow_shard, video, rgb_shard, out_dir, max_frames, max_flow) -> None:
    """PNGs of a video's flow: Middlebury colour per flow and a strip (frame, flow x, flow y, colour)."""
    out = Path(out_dir) if out_dir else Path("results") / STAGE / Path(flow_shard).stem / video
    paths = visualize_video(flow_shard, out, video, rgb_shard, max_frames, max_flow)
    click.echo(f"{STAGE}: {len(paths) - 1} colour PNGs and {paths[-1]}")


commands = [visualize_flow_cmd]

__all__ = ["visualize_video", "default_rgb_path"]
