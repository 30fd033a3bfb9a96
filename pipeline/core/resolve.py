"""Which dataset a command works on, and with which settings: they follow the data.

* A manifest records its dataset and format. Given ``--manifest``, the command uses that dataset's settings
  (its config entry with its overrides), and refuses a ``--dataset`` of another name or a config entry of
  another format, rather than silently applying another dataset's parameters.
* A dataset the config does not list is still usable when it is named by a supported format
  (``--dataset ucf101 --root R --splits S``, no config file needed) or when its manifest exists: then it
  takes the built-in defaults, without any dataset's overrides.
* ``--root``, ``--splits`` and ``--split`` replace the config entry's values.
"""

from __future__ import annotations

from pathlib import Path

from .config import ConfigError, Settings, dataset_formats, filled, read_config_file, resolve
from .manifest import Manifest, read_manifest
from .paths import manifest_path as default_manifest_path

#: the config file a command reads when none is given and it exists in the working directory
DEFAULT_CONFIG = "config/config.yaml"


def config_file(path: str | None) -> str | None:
    """``path``, else :data:`DEFAULT_CONFIG` when it exists here, else None (built-in defaults only)."""
    if path is None and Path(DEFAULT_CONFIG).exists():
        return DEFAULT_CONFIG
    return path


def settings_for(config_path: str | None = None, dataset: str | None = None, *, manifest: str | None = None,
                 root: str | None = None, splits: str | None = None, split: int | None = None,
                 read: bool = False) -> tuple[Settings, Manifest | None]:
    """The settings of the dataset a command names (see the module docstring), and its manifest: the one
    given, else (``read``) the one at the dataset's manifest path when that exists, else None."""
    raw = read_config_file(config_file(config_path))
    full = filled(raw)
    m = read_manifest(manifest) if manifest else None
    if m is not None and dataset and dataset != m.dataset:
        raise ConfigError(f"--dataset {dataset!r} does not match manifest {manifest}, which is of dataset "
                          f"{m.dataset!r}: give one of them, or matching ones")
    name = m.dataset if m is not None else (dataset or full["dataset"])
    entries = full["datasets"]
    define = {"root": root, "splits": splits, "split": split}
    if name not in entries:
        if m is None and root is None:
            path = default_manifest_path(full["manifests"], name)
            m = read_manifest(path) if path.exists() else None
        fmt = m.format if m is not None else (name if name in dataset_formats() else None)
        if fmt is None:
            raise ConfigError(f"dataset {name!r} is not in the config (datasets: {sorted(entries)}) and is not "
                              f"a format ({list(dataset_formats())}); add it to the config or give its manifest")
        define["format"] = fmt
        define["root"] = root or (m.root if m is not None else None)
        if define["root"] is None:
            raise ConfigError(f"dataset {name!r} is not in the config: give --root (and --splits) to read it "
                              f"with the built-in {fmt!r} format")
    elif m is not None and entries[name]["format"] != m.format:
        raise ConfigError(f"manifest {manifest} is of format {m.format!r}, the config's dataset {name!r} of "
                          f"format {entries[name]['format']!r}")
    settings = resolve(raw, name, define)
    if m is None and read and settings.manifest_path.exists():
        m = read_manifest(settings.manifest_path)
    return settings, m


def settings_for_shards(config_path: str | None, dataset: str) -> Settings:
    """Settings for a stage run on upstream shards alone (no manifest): the config's entry of the shards'
    dataset when it has one, else the built-in sections without any dataset's overrides. (The dataset entry
    itself is not used then: the shards carry their dataset's facts and provenance.)"""
    raw = read_config_file(config_file(config_path))
    if dataset in filled(raw)["datasets"]:
        return resolve(raw, dataset)
    return resolve(raw, dataset, {"format": "folder", "root": "."})


def base_settings(config_path: str | None = None) -> Settings:
    """Settings without any dataset's overrides (for commands on single files, e.g. ``reencode SRC DST``)."""
    raw = read_config_file(config_file(config_path))
    return resolve(raw, "single-file", {"format": "folder", "root": "."})


__all__ = ["DEFAULT_CONFIG", "config_file", "settings_for", "settings_for_shards", "base_settings"]
