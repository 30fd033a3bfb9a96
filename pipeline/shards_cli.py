"""``prep-cli shards ...``: look inside shard files, check them, convert them."""

from __future__ import annotations

import sys

import click

from . import shards as _shards


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


commands = [shards_group]
