"""Configuration: one YAML file, validated against ``schemas/config.schema.yaml``.

The Snakefile validates the raw file with Snakemake's ``validate``; ``prep-cli`` uses :func:`load_config`,
which fills the schema's defaults, merges the chosen dataset's ``overrides`` over the stage sections,
validates the merged result again and hands each stage a frozen dataclass.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

STAGE_SECTIONS = ("make_demo", "decode", "extract_flow", "reencode", "extract_mv", "residual_frames", "clips")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or outside its allowed values."""


def load_schema() -> dict:
    text = resources.files("pipeline").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _fill_defaults(schema: Mapping, value: Any, root: Mapping) -> Any:
    """Return ``value`` with every missing property that has a schema default filled in (recursively)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root["definitions"][name]
    if isinstance(value, dict):
        out = dict(value)
        for key, sub in schema.get("properties", {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = _fill_defaults(sub, out[key], root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in schema.get("properties", {}):
                    out[key] = _fill_defaults(extra, out[key], root)
        return out
    return value


def _error_text(err: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "enum":
        return f"config key '{key}': {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return f"config key '{key}': {err.message}; allowed keys: {allowed}"
    return f"config key '{key}': {err.message}"


def validate(config: Mapping, schema: Mapping | None = None) -> None:
    """Raise :class:`ConfigError` naming every offending key (and the allowed values for enums)."""
    schema = schema or load_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_error_text(e) for e in errors))


# ----------------------------------------------------------------------------------------------------------
# Per-stage frozen dataclasses. Field names are the YAML keys (``lambda`` becomes ``lambda_``).


@dataclass(frozen=True)
class DemoConfig:
    classes: int = 8            # motion classes (translation x4, rotation x2, zoom x2)
    train_per_class: int = 3
    test_per_class: int = 2
    frames: int = 24            # source frames per video
    fps: float = 30.0           # source frame rate, deliberately not 25
    width: int = 112
    height: int = 112
    seed: int = 0


@dataclass(frozen=True)
class DecodeConfig:
    fps: float | None = 25.0        # output rate; None keeps the source's
    short_side: int | None = 256    # resize short side to this (aspect kept, sides even); None: keep
    folder_fps: float = 12.0        # rate of frame-folder datasets (Something-Something v1: 12)
    size: tuple[int, int] | None = None  # (width, height) fixed size; wins over short_side
    interpolation: str = "area"     # area | linear | cubic
    jpeg_quality: int = 95
    threads: int = 1                # decoder threads per video


@dataclass(frozen=True)
class FlowConfig:
    backend: str = "opencv"
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 0
    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5
    bound: float = 20.0
    jpeg_quality: int = 95

    def tvl1_params(self) -> dict:
        """The TV-L1 parameters alone, as keyword arguments of :func:`pipeline.flow.tvl1`."""
        from .flow.params import PARAM_NAMES
        return {n: getattr(self, n) for n in PARAM_NAMES}


@dataclass(frozen=True)
class ReencodeConfig:
    codec: str = "mpeg4"
    gop: int = 12
    bframes: int = 0
    qscale: int = 1
    fps: float = 25.0
    size: tuple[int, int] = (340, 256)


@dataclass(frozen=True)
class MvConfig:
    backend: str = "pyav"
    mv_bound: float = 20.0
    iframe_jpeg_quality: int = 95
    compression: int = 0        # gzip level of the mv and residual arrays; 0 = none (fastest)


@dataclass(frozen=True)
class ResFramesConfig:
    size: tuple[int, int] = (170, 128)
    signed: bool = False
    compression: int = 1


@dataclass(frozen=True)
class ClipsConfig:
    length: int = 16
    crop: int = 112
    rgb_mean: tuple[float, float, float] = (114.7748, 107.7354, 99.4750)
    flow_mean: float = 127.5


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    format: str
    root: str
    splits: str | None = None
    split: int = 1
    manifest: str | None = None


_SECTION_TYPES = {
    "make_demo": DemoConfig,
    "decode": DecodeConfig,
    "extract_flow": FlowConfig,
    "reencode": ReencodeConfig,
    "extract_mv": MvConfig,
    "residual_frames": ResFramesConfig,
    "clips": ClipsConfig,
}


def _to_dataclass(cls, values: Mapping):
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = "lambda" if f.name == "lambda_" else f.name
        if key in values:
            v = values[key]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


@dataclass(frozen=True)
class Settings:
    """Everything a stage needs for one dataset: its paths and its frozen parameter sections."""

    dataset: DatasetConfig
    results: Path
    manifests: Path
    logs: Path
    videos_per_shard: int
    strict: bool
    make_demo: DemoConfig
    decode: DecodeConfig
    extract_flow: FlowConfig
    reencode: ReencodeConfig
    extract_mv: MvConfig
    residual_frames: ResFramesConfig
    clips: ClipsConfig
    raw: Mapping = dataclasses.field(repr=False, compare=False, default_factory=dict)

    @property
    def manifest_path(self) -> Path:
        if self.dataset.manifest:
            return Path(self.dataset.manifest)
        return self.manifests / f"{self.dataset.name}.tsv"

    def stage_dir(self, stage: str) -> Path:
        """``results/<stage>/<dataset>``: where a stage writes this dataset's shards."""
        return self.results / stage / self.dataset.name

    def section_dict(self, section: str) -> dict:
        """The merged parameters of one stage as plain JSON-able values (recorded in shard attributes)."""
        return copy.deepcopy(dict(self.raw[section]))


def read_config_file(path: str | Path | None) -> dict:
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at its top level")
    return data


def resolve(config: Mapping, dataset: str | None = None) -> Settings:
    """Validate ``config`` (defaults filled), merge the dataset's overrides and return its :class:`Settings`."""
    schema = load_schema()
    full = _fill_defaults(schema, dict(config), schema)
    validate(full, schema)
    name = dataset or full["dataset"]
    if name not in full["datasets"]:
        raise ConfigError(f"config key 'dataset': {name!r} is not allowed; allowed values: "
                          f"{sorted(full['datasets'])}")
    ds = full["datasets"][name]
    merged = copy.deepcopy(full)
    for section, values in (ds.get("overrides") or {}).items():
        merged[section] = {**merged[section], **values}
    merged["dataset"] = name
    if ds.get("videos_per_shard"):
        merged["videos_per_shard"] = ds["videos_per_shard"]
    validate(merged, schema)
    sections = {s: _to_dataclass(_SECTION_TYPES[s], merged[s]) for s in STAGE_SECTIONS}
    dsc = DatasetConfig(name=name, format=ds["format"], root=ds["root"], splits=ds.get("splits"),
                        split=ds.get("split", 1), manifest=ds.get("manifest"))
    return Settings(dataset=dsc, results=Path(merged["results"]), manifests=Path(merged["manifests"]),
                    logs=Path(merged["logs"]), videos_per_shard=merged["videos_per_shard"],
                    strict=merged["strict"], raw=merged, **sections)


def load_config(path: str | Path | None = None, dataset: str | None = None) -> Settings:
    """Read a YAML config (``None``: defaults only) and resolve it for ``dataset`` (default: its ``dataset``)."""
    return resolve(read_config_file(path), dataset)
