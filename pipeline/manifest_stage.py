"""``prep-cli manifest``: parse a dataset's official split files into the canonical manifest TSV.

``--dataset`` is either a dataset of the config (its format, root, splits, split and manifest path are
used; command-line options override them) or, when the config has no dataset of that name, a format name
(then ``--root`` and ``--out`` are required).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from .cli_common import config_option, resolve_settings
from .formats import FORMATS, build_manifest
from .manifest import SPLITS, Manifest


def summary(m: Manifest, out: Path) -> str:
    """One line: videos per split and the number of classes."""
    counts = Counter(e.split for e in m.entries)
    per_split = ", ".join(f"{s} {counts[s]}" for s in SPLITS if counts[s])
    return (f"{m.dataset} ({m.format}): {len(m)} videos ({per_split or 'none'}), {len(m.classes)} classes "
            f"-> {out}")


@click.command("manifest")
@click.option("--dataset", default=None,
              help=f"Dataset of the config (default: its `dataset`), or a format: {', '.join(FORMATS)}.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Dataset root: every manifest path is relative to it (default from the config).")
@click.option("--splits", type=click.Path(), default=None,
              help="Folder of the split files (csv: the CSV file); default from the config, else the root.")
@click.option("--split", type=click.IntRange(1, 3), default=None,
              help="Official split number for UCF101/HMDB51 (default from the config, else 1).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Manifest file to write (default: the config's manifest path for the dataset).")
@click.option("--allow-missing", is_flag=True,
              help="Drop entries whose file is missing (with a warning) instead of refusing.")
@click.option("--no-check-files", is_flag=True, help="Do not check that every entry exists on disk.")
@config_option
def manifest_cmd(dataset: str | None, root: str | None, splits: str | None, split: int | None,
                 out: str | None, allow_missing: bool, no_check_files: bool, config_path: str | None) -> None:
    """Build the manifest (video id, path, label, split) of a dataset from its official split files."""
    base = resolve_settings(config_path, None)
    name = dataset or base.dataset.name
    if name in base.raw["datasets"]:
        ds = resolve_settings(config_path, name)
        fmt = ds.dataset.format
        root = root or ds.dataset.root
        splits = splits or ds.dataset.splits
        split = split or ds.dataset.split
        out_path = Path(out) if out else ds.manifest_path
    elif name in FORMATS:
        missing = [o for o, v in (("--root", root), ("--out", out)) if not v]
        if missing:
            raise click.UsageError(f"{name!r} is not a dataset of the config, so it is taken as a format "
                                   f"and {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                                   "required")
        fmt, out_path = name, Path(out)
    else:
        raise click.BadParameter(f"{name!r} is neither a dataset of the config "
                                 f"({sorted(base.raw['datasets'])}) nor a format ({list(FORMATS)})",
                                 param_hint="--dataset")
    m = build_manifest(fmt, root, splits, split or 1, name, check_files=not no_check_files,
                       allow_missing=allow_missing)
    m.write(out_path)
    click.echo(summary(m, out_path))


commands = [manifest_cmd]
