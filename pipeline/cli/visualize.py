"""``prep-cli visualize-flow`` and ``prep-cli visualize-mv``: PNG pictures of one video of a shard
(:mod:`pipeline.report.pictures`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..report.pictures import visualize_shard_video, visualize_video
from .common import defaults_of

_FLOW, _MV = defaults_of(visualize_video), defaults_of(visualize_shard_video)   # one home for the defaults


@click.command("visualize-flow")
@click.argument("flow_shard", type=click.Path(exists=True, dir_okay=False))
@click.option("--video", default=_FLOW["video"], show_default=True, help="Video id, or its index in the shard.")
@click.option("--rgb", "rgb_shard", type=click.Path(dir_okay=False), default=None,
              help="The matching RGB shard for the strip (default: the decode shard of the same name).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--frames", "max_frames", type=int, default=_FLOW["max_frames"], show_default=True, help="Rows of the strip.")
@click.option("--max-flow", type=float, default=None, help="Magnitude drawn fully saturated (default: the largest).")
def visualize_flow_cmd(flow_shard, video, rgb_shard, out_dir, max_frames, max_flow) -> None:
    """PNGs of a video's flow: Middlebury colour per flow and a strip (frame, flow x, flow y, colour)."""
    paths = visualize_video(flow_shard, Path(out_dir), video, rgb_shard, max_frames, max_flow)
    click.echo(f"visualize-flow: {len(paths) - 1} colour PNGs and {paths[-1]}")


@click.command("visualize-mv")
@click.argument("shard", type=click.Path(exists=True, dir_okay=False))
@click.option("--video", "video", default=None, help="Video id (default: the first of the shard).")
@click.option("--frames", "count", type=int, default=_MV["count"], show_default=True, help="Frames to draw, from the first.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
def visualize_mv_cmd(shard, video, count, out_dir) -> None:
    """PNGs of a stored video's motion vectors and residuals (both modes), from an mv shard."""
    paths = visualize_shard_video(shard, video, Path(out_dir), count)
    click.echo(f"visualize-mv: wrote {len(paths)} PNGs to {out_dir}")
