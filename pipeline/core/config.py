"""Configuration: one YAML file, validated against ``pipeline/schemas/config.schema.yaml``.

The schema is the one home of every default and allowed value. The Snakefile validates the raw file with
Snakemake's ``validate``; ``prep-cli`` uses :func:`load_config`, which fills the schema's defaults, merges
the chosen dataset's ``overrides`` over the stage sections, validates the merged result again and hands
each stage a frozen dataclass. The dataclasses below carry no default of their own: :func:`_section`
takes every field's default from the schema and refuses a field the schema does not have (or the reverse)
when the module is imported. ``config/config.yaml`` shows the same defaults with comments; a test holds
the three to each other.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError
from .paths import manifest_path as _manifest_path
from .paths import stage_dir as _stage_dir

#: config keys that are Python keywords: field ``lambda_`` holds key ``lambda``
_KEYWORDS = {"lambda_": "lambda"}


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    """The parsed schema, once per process (every command builds its options from it)."""
    text = resources.files("pipeline").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_schema() -> dict:
    """The config schema (a fresh copy: callers may modify it)."""
    return copy.deepcopy(_schema())


def dataset_formats() -> tuple[str, ...]:
    """The built-in dataset formats the schema allows (a test holds them to :mod:`pipeline.formats`)."""
    return tuple(_schema()["definitions"]["dataset"]["properties"]["format"]["enum"])


def key_of(field_name: str) -> str:
    """Dataclass field name -> config key (``lambda_`` -> ``lambda``)."""
    return _KEYWORDS.get(field_name, field_name)


def field_of(key: str) -> str:
    """Config key -> dataclass field name (``lambda`` -> ``lambda_``)."""
    return {v: k for k, v in _KEYWORDS.items()}.get(key, key)


def section_schema(section: str) -> dict:
    """The schema of one section's properties: ``{key: {type, default, description, ...}}`` (a copy)."""
    return copy.deepcopy(_schema()["properties"][section]["properties"])


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _section(name: str):
    """Class decorator: a frozen dataclass of section ``name`` whose defaults are the schema's."""
    def wrap(cls):
        props = section_schema(name)
        fields = list(cls.__dict__.get("__annotations__", {}))
        keys = {key_of(f) for f in fields}
        if keys != set(props):
            raise AssertionError(f"{cls.__name__} fields {sorted(keys)} != schema section {name!r} "
                                 f"keys {sorted(props)}")
        for f in fields:
            if "default" not in props[key_of(f)]:
                raise AssertionError(f"schema key {name}.{key_of(f)} has no default")
            setattr(cls, f, _frozen(props[key_of(f)]["default"]))
        out = dataclass(frozen=True)(cls)
        out.SECTION = name
        return out
    return wrap


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
            elif key in out and sub.get("x-merge-default") and isinstance(out[key], dict):
                out[key] = {**copy.deepcopy(sub["default"]), **out[key]}    # a recipe: key by key
            if key in out:
                out[key] = _fill_defaults(sub, out[key], root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in schema.get("properties", {}):
                    out[key] = _fill_defaults(extra, out[key], root)
        return out
    return value


def defaults() -> dict:
    """The whole configuration with nothing given: every schema default (fresh values)."""
    schema = _schema()                  # read only: _fill_defaults copies the defaults it takes
    return _fill_defaults(schema, {}, schema)


def _error_text(err) -> str:
    """One line per ``jsonschema.ValidationError``: the dotted key, and the allowed values or keys."""
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "enum":
        return f"config key '{key}': {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return f"config key '{key}': {err.message}; allowed keys: {allowed}"
    return f"config key '{key}': {err.message}"


def validate(config: Mapping, schema: Mapping | None = None) -> None:
    """Raise :class:`ConfigError` naming every offending key (and the allowed values for enums)."""
    import jsonschema               # imported here: every command starts faster without it
    schema = schema or _schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_error_text(e) for e in errors))


# ----------------------------------------------------------------------------------------------------------
# One frozen dataclass per section, named after it. Field names are the YAML keys; the comments say what
# each is for, the schema holds the default, type and allowed values.


@_section("make_demo")
class MakeDemoConfig:
    classes: int            # motion classes (translation x4, rotation x2, zoom x2)
    train_per_class: int    # videos per class in the train split
    test_per_class: int     # videos per class in the test split
    frames: int             # source frames per video
    fps: float              # source frame rate, deliberately not 25 (decode resamples)
    width: int
    height: int
    context: float          # probability that a video's background carries its class's tint
    seed: int


@_section("decode")
class DecodeConfig:
    fps: float | None               # output rate; None keeps the source's
    short_side: int | None          # resize short side to this (aspect kept, sides even); None: keep
    folder_fps: float               # rate of frame-folder datasets (Something-Something v1: 12)
    size: tuple[int, int] | None    # (width, height) fixed size; wins over short_side
    interpolation: str              # area | linear | cubic
    jpeg_quality: int
    threads: int                    # decoder threads per video


@_section("extract_flow")
class ExtractFlowConfig:
    backend: str            # opencv | torch
    device: str             # cpu | cuda | cuda:N (torch backend)
    batch_size: int         # frame pairs per torch batch
    workers: int            # opencv: processes; torch on CPU: threads; 0 = the granted cores
    tau: float              # TV-L1 parameters (OpenCV's names and defaults, MARS §4.2) ...
    lambda_: float
    theta: float
    nscales: int
    warps: int
    epsilon: float
    inner_iterations: int
    outer_iterations: int
    scale_step: float
    gamma: float
    median_filtering: int   # ... down to here
    bound: float            # clip to ±bound before quantizing
    jpeg_quality: int


@_section("reencode")
class ReencodeConfig:
    codec: str              # mpeg4 (MPEG-4 Part 2)
    gop: int                # an I-frame every gop frames
    bframes: int            # 0: no B-frames
    qscale: int             # -q:v
    fps: float
    size: tuple[int, int]   # (width, height)


@_section("extract_mv")
class ExtractMvConfig:
    backend: str            # pyav | mvextractor
    mv_bound: float         # storage clip of the vectors (CoViAR)
    iframe_jpeg_quality: int
    storage: str            # bitstream (the MPEG-4 packets; arrays decoded on read) | arrays
    compression: int | str  # storage: arrays only: 0 = none, 1-9 = gzip level, "lzf", "zstd"


@_section("resframe")
class ResframeConfig:
    size: tuple[int, int]   # (width, height) of the residual frames
    signed: bool            # store (F_i - F_i+1)/2 + 128 instead of |F_i - F_i+1|
    compression: int | str  # 0 = none, 1-9 = gzip level, "lzf", "zstd"


@_section("clips")
class ClipsConfig:
    length: int | None                      # frames per clip; None: each method's recipe
    crop: int | None                        # the input's side; None: each method's recipe
    rgb_mean: tuple[float, float, float]    # subtracted from RGB (0-255 scale, std 1)
    flow_mean: float                        # subtracted from quantized flow
    flip: bool                              # random horizontal mirror at training


@_section("train")
class TrainConfig:
    arch: str                       # 3D network of the flow / RGB / MERS / MARS streams
    d3d_arch: str                   # network of the D3D student (S3D-G)
    hts_arch: str                   # temporal network of the stacked temporal stream (VGG-16)
    resframe_arch: str              # network of the residual-frame motion path
    appearance_arch: str            # 2D network of the appearance path
    coviar_arch: str                # 2D network of the mv and residual streams and of DMC-Net's classifier
    iframe_arch: str                # 2D network of the I-frame stream
    spatial_arch: str               # 2D network of Hidden Two-Stream's spatial stream (VGG-16)
    width: int | None               # first-stage channels (None: the architecture's own)
    layers: tuple[int, ...] | None  # blocks per stage (None: the depth's own)
    epochs: int | None              # every method's epochs; None: its recipe's
    mers_classifier_epochs: int     # MERS step 2 epochs
    batch_size: int | None          # global clips per step; None: the recipe's
    lr: float | None                # initial rate; None: the recipe's
    momentum: float | None          # None (here and below): the recipe's
    weight_decay: float | None
    schedule: str | None            # plateau | steps | cosine | constant
    lr_patience: int | None         # plateau patience (epochs)
    lr_factor: float | None         # factor of each drop
    mars_alpha: float               # MARS feature-MSE weight
    d3d_lambda: float               # D3D logit-MSE weight
    mers_schedule: str              # joint (MARS's code: both losses every step) | two_step (the paper)
    d3d_reduction: str              # sum | mean of the logits' squared error over the K classes
    dmc_alpha: float                # DMC-Net: flow-MSE weight
    dmc_lambda: float               # DMC-Net: adversarial weight
    dmc_generator_epochs: int       # DMC-Net step 1: the generator alone
    dmc_adversarial_epochs: int     # DMC-Net step 3: with the adversarial loss
    hts_motionnet_epochs: int       # Hidden Two-Stream: MotionNet's unsupervised epochs
    hts_lr: float                   # Hidden Two-Stream: MotionNet's Adam learning rate
    hts_motionnet_width: int        # MotionNet's conv1 channels
    hts_scales: int                 # MotionNet's flow scales
    hts_gamma: float                # weight of the unsupervised losses end to end
    linear_epochs: int              # linear probe: epochs of full-batch Adam
    linear_lr: float                # linear probe: Adam rate
    linear_weight_decay: float      # linear probe: L2 weight
    linear_unit: str                # linear probe: video (mean-pooled clips) | clip
    val_fraction: float             # held-out part of train for validation
    finetune: str | None            # last | all; None: the recipe's finetune_layers
    pretrained: str | None          # weights to start from (any format of pipeline.models.weights)
    pretrained_format: str          # auto | torchvision | kenshohara | mars | coviar | dmcnet | motionprep
    cross_modality: bool            # RGB first convolution averaged over its channels for other inputs
    seed: int
    workers: int                    # DataLoader workers
    device: str                     # auto | cpu | cuda | cuda:N
    precision: str                  # auto | bf16 | fp32


@_section("evaluate")
class EvaluateConfig:
    streams: tuple[str, ...]                # trained methods to test
    fusions: tuple[tuple[str, ...], ...]    # stream sets whose scores are averaged
    average: str | None                     # logits | softmax; None: each method's recipe
    test_clips: int | None                  # clips (frames) per test video of every stream; None: the recipe's
    static: bool                            # also the static-clip test
    batch_size: int                         # test clips per forward pass
    tvl1_pairs: int                         # pairs timed for the flow streams' TV-L1 time
    device: str                             # auto | cpu | cuda | cuda:N
    probe: tuple[str, ...]                  # D3D's motion probe: the RGB-input networks probed
    probe_layers: tuple[str, ...]           # the layers probed
    probe_kind: str                         # simple | spatial | pwc
    probe_steps: int                        # Adam steps per decoder


@_section("extract_features")
class ExtractFeaturesConfig:
    sets: tuple                     # feature sets: method names or {name, method | checkpoint, overrides}
    layer: str                      # pooled | a named module
    pool: str                       # mean | none (a named module's output)
    length: int | None              # frames per clip; None: the method's recipe
    stride: int | None              # frames between clip starts; None: length
    view: str                       # test | center | ten_crop
    dtype: str                      # float16 | float32
    logits: bool                    # also the class scores
    batch_size: int                 # clips per forward pass
    workers: int                    # DataLoader workers
    device: str                     # auto | cpu | cuda | cuda:N
    precision: str                  # auto | bf16 | fp32


def _definition(name: str):
    """Class decorator: a frozen dataclass of schema definition ``name`` (its defaults are the schema's)."""
    def wrap(cls):
        props = _schema()["definitions"][name]["properties"]
        fields = list(cls.__dict__.get("__annotations__", {}))
        if set(fields) != set(props):
            raise AssertionError(f"{cls.__name__} fields {sorted(fields)} != schema definition {name!r} "
                                 f"keys {sorted(props)}")
        for f in fields:
            setattr(cls, f, _frozen(props[f]["default"]))
        return dataclass(frozen=True)(cls)
    return wrap


@_definition("recipe")
class RecipeConfig:
    """How one method trains and tests (schema ``definitions.recipe``; docs/recipes.md gives the sources)."""

    size: int                       # side of the network's square input
    length: int                     # frames per clip
    train_view: str                 # corner | multiscale | window (pipeline/data/views.py)
    scales: tuple[float, ...]       # crop scales, fractions of the short side
    crop_positions: str             # multiscale: fixed (TSN's five) | random offsets
    max_distort: int                # multiscale: most scale steps between width and height
    test_view: str                  # short_center | squash_center | ten_crop | window
    test_resize: float              # short (squash: square) side before the test view, x size
    test_clips: int                 # clips (frames) per test video; 0: every non-overlapping clip
    color_jitter: tuple[float, ...]  # training: HLS offsets' amplitudes (hue, lightness, saturation); () none
    accumulated: bool               # mv / residual: the accumulated representation (CoViAR)
    average: str                    # logits | softmax over clips, views (and fused streams)
    optimizer: str                  # sgd | adam
    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float
    adam_eps: float
    slow_layers: str                # none | backbone | all: trained at lr * slow_lr_mult
    slow_lr_mult: float
    first_lr_mult: float | None     # the first convolution's factor when slow_layers is set (None: slow's)
    schedule: str                   # plateau | steps | cosine | constant
    lr_steps: tuple[int, ...]       # steps: epochs after which the rate drops
    lr_factor: float
    lr_patience: int
    epochs: int
    batch_size: int
    finetune_lr: float | None       # from train.pretrained: these replace lr, weight_decay, epochs (None:
    finetune_weight_decay: float | None  # keep them)
    finetune_epochs: int | None
    finetune_layers: str            # last | all: what trains from pretrained weights
    finetune_bn: str                # train | freeze: the batch norms of the layers that do not train


#: the keys of ``train`` / ``clips`` / ``evaluate`` that, when not null, replace every recipe's
RECIPE_OVERRIDES = {"train": ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                              "lr_patience", "lr_factor"),
                    "clips": ("length", "crop"), "evaluate": ("average", "test_clips")}
_RECIPE_KEY = {"crop": "size"}       # clips.crop is the recipe's size


def recipe_defaults() -> dict[str, RecipeConfig]:
    """Every method's recipe with nothing configured (the schema's)."""
    return {m: to_recipe(v) for m, v in defaults()["recipes"].items()}


def to_recipe(values: Mapping) -> RecipeConfig:
    """A :class:`RecipeConfig` from a recipe mapping (missing keys: the definition's defaults)."""
    return RecipeConfig(**{k: _frozen(v) for k, v in values.items()})


def effective_recipe(recipe: RecipeConfig, **sections) -> RecipeConfig:
    """``recipe`` with the non-null values of :data:`RECIPE_OVERRIDES` of the given sections (``train=``,
    ``clips=``, ``evaluate=`` dataclasses) put in: what one run of the method uses."""
    changes = {}
    train = sections.get("train")
    if train is not None and train.pretrained:           # fine-tuning: the recipe's own values
        for key in ("lr", "weight_decay", "epochs"):
            v = getattr(recipe, f"finetune_{key}")
            if v is not None:
                changes[key] = v
    for section, keys in RECIPE_OVERRIDES.items():
        cfg = sections.get(section)
        for k in keys if cfg is not None else ():
            v = getattr(cfg, k)
            if v is not None:
                changes[_RECIPE_KEY.get(k, k)] = v
    return dataclasses.replace(recipe, **changes)


#: config section -> its dataclass (``<CamelName>Config``), in file order
SECTION_TYPES = {cls.SECTION: cls for cls in (MakeDemoConfig, DecodeConfig, ExtractFlowConfig, ReencodeConfig,
                                              ExtractMvConfig, ResframeConfig, ClipsConfig, TrainConfig,
                                              EvaluateConfig, ExtractFeaturesConfig)}
SECTIONS = tuple(SECTION_TYPES)


@dataclass(frozen=True)
class DatasetConfig:
    """One entry of ``datasets`` (schema ``definitions.dataset``)."""

    name: str
    format: str
    root: str
    splits: str | None = None
    split: int = 1
    manifest: str | None = None


def to_section(cls, values: Mapping):
    """The dataclass ``cls`` of a section from its (validated) YAML mapping; missing keys keep defaults."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        if key_of(f.name) in values:
            kwargs[f.name] = _frozen(values[key_of(f.name)])
    return cls(**kwargs)


def section_values(obj) -> dict:
    """A section dataclass -> its YAML mapping (``lambda`` for ``lambda_``, lists for tuples)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[key_of(f.name)] = list(v) if isinstance(v, tuple) else v
    return out


@dataclass(frozen=True)
class Settings:
    """Everything a stage needs for one dataset: its paths and its frozen parameter sections."""

    dataset: DatasetConfig
    results: Path
    manifests: Path
    logs: Path
    videos_per_shard: int
    strict: bool
    make_demo: MakeDemoConfig
    decode: DecodeConfig
    extract_flow: ExtractFlowConfig
    reencode: ReencodeConfig
    extract_mv: ExtractMvConfig
    resframe: ResframeConfig
    clips: ClipsConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    extract_features: ExtractFeaturesConfig
    recipes: Mapping[str, RecipeConfig] = dataclasses.field(default_factory=dict)
    raw: Mapping = dataclasses.field(repr=False, compare=False, default_factory=dict)

    def recipe(self, method: str) -> RecipeConfig:
        """The recipe one run of ``method`` uses: its entry of ``recipes`` with the non-null overrides of
        ``train``, ``clips`` and ``evaluate`` (:func:`effective_recipe`)."""
        if method not in self.recipes:
            raise ConfigError(f"no recipe for method {method!r}; recipes: {sorted(self.recipes)}")
        return effective_recipe(self.recipes[method], train=self.train, clips=self.clips, evaluate=self.evaluate)

    @property
    def manifest_path(self) -> Path:
        if self.dataset.manifest:
            return Path(self.dataset.manifest)
        return _manifest_path(self.manifests, self.dataset.name)

    def stage_dir(self, stage: str) -> Path:
        """``results/<stage>/<dataset>``: where a stage writes this dataset's outputs."""
        return _stage_dir(self.results, stage, self.dataset.name)

    def section_dict(self, section: str) -> dict:
        """The merged parameters of one stage as plain JSON-able values (recorded in shard attributes)."""
        return copy.deepcopy(dict(self.raw[section]))


def read_config_file(path: str | Path | None) -> dict:
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at its top level")
    return data


def filled(config: Mapping) -> dict:
    """``config`` with every default filled in, validated."""
    schema = _schema()                  # read only: _fill_defaults copies the defaults it takes
    full = _fill_defaults(schema, dict(config), schema)
    validate(full, schema)
    return full


def resolve(config: Mapping, dataset: str | None = None, define: Mapping | None = None) -> Settings:
    """Validate ``config`` (defaults filled), merge the dataset's overrides and return its :class:`Settings`.

    ``define``: keys of a dataset entry (``format``, ``root``, ``splits``, ``split``) that replace the
    config's, or define the dataset when the config has no entry of that name (then without overrides).
    """
    full = filled(config)
    name = dataset or full["dataset"]
    entries = dict(full["datasets"])
    if define:
        entries[name] = {**entries.get(name, {}), **{k: v for k, v in define.items() if v is not None}}
    if name not in entries:
        raise ConfigError(f"config key 'dataset': {name!r} is not allowed; allowed values: "
                          f"{sorted(full['datasets'])}")
    ds = entries[name]
    merged = copy.deepcopy(full)
    merged["datasets"] = entries
    for section, values in (ds.get("overrides") or {}).items():
        if section == "recipes":          # per method, key by key
            for method, keys in values.items():
                if method not in merged["recipes"]:
                    raise ConfigError(f"datasets.{name}.overrides.recipes: no method {method!r}; methods: "
                                      f"{sorted(merged['recipes'])}")
                merged["recipes"][method] = {**merged["recipes"][method], **keys}
            continue
        merged[section] = {**merged[section], **values}
    merged["dataset"] = name
    if ds.get("videos_per_shard"):
        merged["videos_per_shard"] = ds["videos_per_shard"]
    validate(merged)
    sections = {s: to_section(SECTION_TYPES[s], merged[s]) for s in SECTIONS}
    dsc = DatasetConfig(name=name, format=ds["format"], root=ds["root"], splits=ds.get("splits"),
                        split=ds.get("split", 1), manifest=ds.get("manifest"))
    return Settings(dataset=dsc, results=Path(merged["results"]), manifests=Path(merged["manifests"]),
                    logs=Path(merged["logs"]), videos_per_shard=merged["videos_per_shard"],
                    strict=merged["strict"], raw=merged,
                    recipes={m: to_recipe(v) for m, v in merged["recipes"].items()}, **sections)


def load_config(path: str | Path | None = None, dataset: str | None = None) -> Settings:
    """Read a YAML config (``None``: defaults only) and resolve it for ``dataset`` (default: its ``dataset``)."""
    return resolve(read_config_file(path), dataset)


__all__ = ["SECTIONS", "SECTION_TYPES", "ConfigError", "Settings", "DatasetConfig", "MakeDemoConfig",
           "DecodeConfig", "ExtractFlowConfig", "ReencodeConfig", "ExtractMvConfig", "ResframeConfig",
           "ClipsConfig", "TrainConfig", "EvaluateConfig", "load_config", "load_schema", "resolve", "filled", "defaults", "validate",
           "read_config_file", "section_schema", "to_section", "section_values", "key_of", "field_of", "RecipeConfig", "recipe_defaults", "effective_recipe", "to_recipe"]
