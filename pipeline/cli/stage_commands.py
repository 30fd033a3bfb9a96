"""One ``prep-cli`` command per stage, generated from its :class:`pipeline.steps.contract.Stage` declaration.

Every per-shard stage takes the same options: ``--config``, ``--dataset``, ``--manifest``, ``--root``,
``--splits``, ``--split`` (which dataset, :mod:`pipeline.core.resolve`), ``--shard``, ``--input`` (the
upstream stage's folder, for stages that read one), ``--out``, ``--strict/--no-strict`` and
``--progress/--no-progress``, then its own options: those overriding keys of its config section take their
type, help and default from the config schema; the others are declared with the stage.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

import click

from ..core import paths
from ..core.config import key_of, section_schema, section_values, validate
from ..core.errors import StageError
from ..core.resolve import DEFAULT_CONFIG, base_settings, settings_for, settings_for_shards
from ..steps.contract import DatasetJob, Option, Stage, option_defaults, shard_job

log = logging.getLogger("motionprep")
_TYPES = {"integer": int, "number": float, "string": str, "boolean": bool}


def _schema_type(prop: dict):
    if "enum" in prop and all(isinstance(v, str) for v in prop["enum"]):
        return click.Choice(prop["enum"])
    t = prop.get("type", "string")
    if isinstance(t, list):
        t = next(x for x in t if x != "null")
    return _TYPES[t]


def _click_option(stage: Stage, opt: Option) -> Callable:
    if opt.config:
        prop = section_schema(stage.section)[key_of(opt.key)]
        help_ = f"{prop.get('description', opt.key)} (default: the config's, built in {prop.get('default')!r})."
        return click.option(opt.flag, opt.key, type=_schema_type(prop), default=None, help=opt.help or help_)
    if opt.is_flag:
        return click.option(opt.flag, opt.key, is_flag=True, default=False, help=opt.help)
    if "/" in opt.flag:
        return click.option(opt.flag, opt.key, default=opt.default, help=opt.help)
    return click.option(opt.flag, opt.key, type=opt.type, default=opt.default, show_default=True, help=opt.help)


def _dataset_options(f: Callable) -> Callable:
    opts = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help=f"YAML config (default: {DEFAULT_CONFIG} if it exists, else the built-in defaults)."),
        click.option("--dataset", default=None,
                     help="Dataset of the config (default: its `dataset`), or a format name (ucf101, hmdb51, "
                          "...) with --root."),
        click.option("--root", type=click.Path(file_okay=False), default=None,
                     help="Dataset root (default: the config's; for a stage reading a manifest, the root it "
                          "records)."),
        click.option("--splits", type=click.Path(), default=None,
                     help="Folder of the official split files (csv: the CSV file); default: the config's."),
        click.option("--split", type=click.IntRange(1, 3), default=None,
                     help="Official split for UCF101/HMDB51 (default: the config's, else 1)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def apply_overrides(stage: Stage, settings, values: dict) -> Any:
    """The stage's section with the command-line values given (not None), validated with the schema."""
    own = getattr(settings, stage.section)
    given = {k: v for k, v in values.items() if v is not None}         # option keys are field names
    if not given:
        return own
    new = dataclasses.replace(own, **given)
    merged = dict(settings.raw)
    merged[stage.section] = section_values(new)
    validate(merged)
    return new


def _split_options(stage: Stage, opts: dict) -> tuple[dict, dict]:
    config = {o.key: opts.pop(o.key) for o in stage.options if o.config}
    run = {**option_defaults(stage), **{o.key: opts.pop(o.key) for o in stage.options if not o.config}}
    return config, run


def _echo(stage: Stage, s: dict) -> None:
    text = (f"{stage.name}: {s['shard']}: {s['videos']} videos, {s['frames']} frames, {s['failures']} failed"
            if "shard" in s else f"{stage.name}: {s.get('message', '')}")
    if "shard" in s and s.get("message"):
        text += f", {s['message']}"
    click.echo(text)


def dataset_command(stage: Stage) -> click.Command:
    """The command of a stage run once per dataset (make_demo, manifest)."""
    def callback(config_path, dataset, root, splits, split, out, **opts):
        config_opts, run_opts = _split_options(stage, opts)
        settings, _ = settings_for(config_path, dataset, root=root, splits=splits, split=split)
        config = apply_overrides(stage, settings, config_opts) if stage.section else None
        _echo(stage, stage.run(DatasetJob(stage, settings, config, out, run_opts)))

    f = click.option("--out", default=None, type=click.Path(),
                     help="Output file or folder (default: where the config puts it).")(callback)
    for opt in reversed(stage.options):
        f = _click_option(stage, opt)(f)
    return click.command(stage.command, help=stage.summary)(_dataset_options(f))


def _upstream_dataset(input_dir: Path, shard: int | None) -> str:
    """The dataset recorded in the upstream shards of ``input_dir`` (shard ``shard``, else the first)."""
    from ..shards import ShardReader
    found = [input_dir / paths.shard_name(shard)] if shard is not None else list(paths.shard_files(input_dir).values())
    if not found or not found[0].exists():
        raise StageError(f"no upstream shard {found[0] if found else paths.SHARD_GLOB} in {input_dir}")
    with ShardReader(found[0]) as r:
        return str(r.attrs["dataset"])


def _shards(stage: Stage, settings, manifest, shard: int | None, input_dir: Path | None) -> list[int]:
    """``--shard K``, or every shard: of the manifest, else the upstream shards found (shard_job checks K)."""
    if shard is not None:
        return [shard]
    if manifest is not None:
        from ..core.manifest import num_shards
        return list(range(num_shards(len(manifest), settings.videos_per_shard)))
    found = list(paths.shard_files(input_dir)) if input_dir else []
    if not found:
        raise StageError(f"{stage.name}: no manifest at {settings.manifest_path} and no upstream shard in "
                         f"{input_dir}; give --manifest, or --input with the {stage.upstream} shards")
    return found


def shard_command(stage: Stage) -> click.Command:
    """The command of a per-shard stage: one shard (``--shard K``) or all of them."""
    def callback(config_path, dataset, root, splits, split, manifest_path, shard, out_dir, strict, progress,
                 input_dir=None, src=None, dst=None, **opts):
        config_opts, run_opts = _split_options(stage, opts)
        if stage.single_file and (src or dst):
            if not (src and dst):
                raise click.UsageError("give both SRC and DST, or neither (and a dataset)")
            extra = [flag for flag, v in (("--manifest", manifest_path), ("--shard", shard), ("--out", out_dir),
                                          ("--root", root), ("--splits", splits), ("--split", split)) if v]
            if extra:
                raise click.UsageError(f"SRC DST converts one file: {', '.join(extra)} do(es) not apply")
            settings = (settings_for(config_path, dataset)[0] if dataset else base_settings(config_path))
            _echo(stage, stage.single_file(src, dst, settings, apply_overrides(stage, settings, config_opts)))
            return
        if stage.manifest_optional and input_dir and not (manifest_path or dataset):
            # upstream shards alone (imported ones, say): their own dataset, never the config's default
            settings, manifest = settings_for_shards(config_path, _upstream_dataset(Path(input_dir), shard)), None
        else:
            settings, manifest = settings_for(config_path, dataset, manifest=manifest_path, root=root,
                                              splits=splits, split=split, read=True)
        if manifest is None and not stage.manifest_optional:
            from ..core.manifest import read_manifest
            manifest = read_manifest(settings.manifest_path)        # names the command that writes it
        config = apply_overrides(stage, settings, config_opts)
        up = Path(input_dir) if input_dir else (settings.stage_dir(stage.upstream) if stage.upstream else None)
        jobs = [shard_job(stage, settings, k, manifest=manifest, input_dir=up, out_dir=out_dir, config=config,
                          strict=strict, root=root, progress=progress, options=run_opts)
                for k in _shards(stage, settings, manifest, shard, up)]
        log.info("%s: dataset %s, %d shard(s) -> %s", stage.name, settings.dataset.name, len(jobs),
                 jobs[0].out_dir if jobs else "")
        for s in (stage.run_many(jobs) if stage.run_many else (stage.run(j) for j in jobs)):
            _echo(stage, s)

    f = callback
    if stage.single_file:
        f = click.argument("dst", required=False, type=click.Path(dir_okay=False))(f)
        f = click.argument("src", required=False, type=click.Path(dir_okay=False))(f)
    for opt in reversed(stage.options):
        f = _click_option(stage, opt)(f)
    common = [
        click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False), default=None,
                     help="Manifest file (default: <manifests>/<dataset>.tsv); its dataset's settings apply."),
        click.option("--shard", type=click.IntRange(min=0), default=None,
                     help="Process only this shard (0-based); default: all."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                     help=f"Output folder (default: <results>/{stage.name}/<dataset>)."),
        click.option("--strict/--no-strict", default=None,
                     help="Stop at the first bad video instead of recording it (default: the config's)."),
        click.option("--progress/--no-progress", default=True, help="Show progress bars."),
    ]
    if stage.upstream:
        common.insert(2, click.option("--input", "input_dir", type=click.Path(file_okay=False), default=None,
                                      help=f"Folder of the {stage.upstream} outputs (default: "
                                           f"<results>/{stage.upstream}/<dataset>)."))
    for opt in reversed(common):
        f = opt(f)
    return click.command(stage.command, help=stage.summary)(_dataset_options(f))


def stage_command(stage: Stage) -> click.Command:
    return shard_command(stage) if stage.per_shard else dataset_command(stage)


__all__ = ["stage_command", "apply_overrides"]
