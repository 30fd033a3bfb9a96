"""Options and plumbing shared by the stage commands of ``prep-cli``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from .config import Settings, load_config
from .manifest import Manifest, num_shards, read_manifest

DEFAULT_CONFIG = "config/config.yaml"


def config_option(f: Callable) -> Callable:
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                        help=f"YAML config (default: {DEFAULT_CONFIG} if it exists, else built-in defaults).")(f)


def stage_options(f: Callable) -> Callable:
    """--config, --dataset, --manifest, --shard, --out, --strict/--no-strict, --progress/--no-progress."""
    opts = [
        click.option("--dataset", default=None, help="Dataset name from the config (default: its `dataset`)."),
        click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False), default=None,
                     help="Manifest file (default: <manifests>/<dataset>.tsv)."),
        click.option("--shard", type=int, default=None, help="Process only this shard (0-based); default all."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                     help="Output folder (default: <results>/<stage>/<dataset>)."),
        click.option("--strict/--no-strict", default=None,
                     help="Stop at the first bad video instead of recording it (default from config)."),
        click.option("--progress/--no-progress", default=True, help="Show progress bars."),
        config_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def resolve_settings(config_path: str | None, dataset: str | None) -> Settings:
    if config_path is None and Path(DEFAULT_CONFIG).exists():
        config_path = DEFAULT_CONFIG
    return load_config(config_path, dataset)


@dataclass
class StageContext:
    """What a stage command resolved from its options."""

    settings: Settings
    manifest: Manifest
    out_dir: Path
    shards: list[int]
    strict: bool
    progress: bool

    @property
    def num_shards(self) -> int:
        return num_shards(len(self.manifest), self.settings.videos_per_shard)


def stage_context(stage: str, config_path: str | None, dataset: str | None, manifest_path: str | None,
                  shard: int | None, out_dir: str | None, strict: bool | None, progress: bool = True
                  ) -> StageContext:
    """Resolve config, manifest, output folder and the shards to process for ``stage``."""
    settings = resolve_settings(config_path, dataset)
    manifest = read_manifest(manifest_path or settings.manifest_path)
    total = num_shards(len(manifest), settings.videos_per_shard)
    if shard is not None and not 0 <= shard < total:
        raise click.BadParameter(f"shard {shard} is out of range: {manifest.dataset} has {total} shards "
                                 f"of {settings.videos_per_shard} videos", param_hint="--shard")
    shards = [shard] if shard is not None else list(range(total))
    out = Path(out_dir) if out_dir else settings.stage_dir(stage)
    logging.getLogger("motionprep").info("%s: dataset %s, %d shard(s) -> %s", stage, manifest.dataset,
                                         len(shards), out)
    return StageContext(settings, manifest, out, shards, settings.strict if strict is None else strict, progress)
