"""``prep-cli shards ...``: look inside shard files, check them, convert them."""

from __future__ import annotations

import sys

import click

from .. import shards as _shards
from ..layouts.convert import import_sources
from .common import defaults_of

_IMPORT = defaults_of(import_sources)      # the function's keyword defaults are the options' defaults


@click.group("shards")
def shards_group() -> None:
    """Inspect, verify, import and export vidshard HDF5 files."""


@shards_group.command("inspect")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def inspect_cmd(files: tuple[str, ...]) -> None:
    """Summarise shard FILES: attributes, streams, counts, parameters and failures."""
    for path in files:
        click.echo(_shards.inspect(path))


@shards_group.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--no-decode", is_flag=True, help="Skip decoding every JPEG (structure and counts only).")
def verify_cmd(files: tuple[str, ...], no_decode: bool) -> None:
    """Check structure, counts, offsets and that every JPEG decodes. Exit 0 only when all FILES are sound."""
    bad = 0
    for path in files:
        problems = _shards.verify(path, decode_jpeg=not no_decode)
        if problems:
            bad += 1
            click.echo(f"FAIL {path}")
            for p in problems:
                click.echo(f"  - {p}")
        else:
            click.echo(f"ok   {path}")
    if bad:
        click.echo(f"{bad} of {len(files)} shard(s) failed verification", err=True)
        sys.exit(1)


@shards_group.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: OUT/rgb/shard-00000.h5 (and OUT/flow/... when the source has flow).")
@click.option("--layout", default=_IMPORT["layout"], show_default=True,
              help="Source layout: auto, kenshohara, videogpt, hdf5_dataloader, av2hdf5 or rawframes.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="Side file 'video_id label [split]' for sources without labels (wins over the source).")
@click.option("--classes", type=click.Path(exists=True, dir_okay=False),
              help="Class names, one a line, in label order (default: classes.txt in a SOURCE folder, "
                   "else sorted names, or 0..max).")
@click.option("--dataset", default=_IMPORT["dataset"], show_default=True, help="Dataset name recorded in the shards.")
@click.option("--videos-per-shard", default=_IMPORT["videos_per_shard"], show_default=True, type=click.IntRange(min=1))
@click.option("--fps", default=_IMPORT["fps"], show_default=True, type=float,
              help="Frame rate to record (none of the foreign layouts stores one).")
@click.option("--jpeg-quality", default=_IMPORT["jpeg_quality"], show_default=True, type=click.IntRange(1, 100),
              help="Quality for raw/PNG frames, which are JPEG-encoded once; JPEG frames are copied.")
@click.option("--split", "default_split", default=_IMPORT["default_split"], show_default=True,
              help="Split for videos whose source and side file name none.")
def import_cmd(sources, out_dir, layout, labels, classes, dataset, videos_per_shard, fps, jpeg_quality,
               default_split) -> None:
    """Convert foreign HDF5 files or rawframes folders SOURCES... into vidshard files."""
    summary = import_sources(sources, out_dir, layout=layout, labels=labels, classes=classes,
                             dataset=dataset, videos_per_shard=videos_per_shard, fps=fps,
                             jpeg_quality=jpeg_quality, default_split=default_split)
    click.echo(f"imported {summary['videos']} videos ({summary['frames']} frames, {summary['flow_videos']} "
               f"with flow, {summary['classes']} classes) into {len(summary['shards'])} shard file(s):")
    for p in summary["shards"]:
        click.echo(f"  {p}")


@shards_group.command("export")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--layout", required=True, type=click.Choice(["rawframes", "kenshohara", "npy"]),
              help="rawframes: mmaction2 img_00001.jpg / flow_x_00001.jpg folders plus list files; "
                   "kenshohara: one <class>/<video>.hdf5 per video; npy (feature shards): video_features' "
                   "<video>_<set>.npy, <video>_timestamps_ms.npy, <video>_fps.npy per video.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
def export_cmd(files, layout, out_dir) -> None:
    """Write rgb/flow shard FILES (feature shards: --layout npy) in a layout other projects read (JPEG bytes
    copied unchanged)."""
    from ..layouts.convert import export_shards
    written = export_shards(files, out_dir, layout)
    click.echo(f"exported {len(files)} shard file(s) to {out_dir} as {layout} ({len(written)} files listed)")


@shards_group.command("diff")
@click.argument("first", type=click.Path(exists=True, dir_okay=False))
@click.argument("second", type=click.Path(exists=True, dir_okay=False))
@click.option("--ignore-attr", "ignore", multiple=True, help="A root attribute not to compare (repeatable).")
def diff_cmd(first, second, ignore) -> None:
    """Compare two shards' content (attributes, datasets, values). Exit 0 only when they hold the same data."""
    problems = _shards.diff(first, second, tuple(ignore))
    for p in problems:
        click.echo(f"  - {p}")
    if problems:
        click.echo(f"{first} and {second} differ in {len(problems)} place(s)", err=True)
        sys.exit(1)
    click.echo(f"same {first} {second}")
