"""Configuration: the schema holds every default once; the dataclasses, config/config.yaml and the CLI help
are held to it; validation messages; per-dataset overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.core.config import (SECTION_TYPES, SECTIONS, ConfigError, ExtractFlowConfig, defaults, key_of,
                                  load_config, load_schema, resolve, section_schema)

REPO = Path(__file__).resolve().parents[1]


def as_lists(value):
    """Tuples (nested too) as the lists YAML holds."""
    return [as_lists(v) for v in value] if isinstance(value, tuple) else value


def camel(section: str) -> str:
    return "".join(p.capitalize() for p in section.split("_")) + "Config"


@pytest.mark.parametrize("section", SECTIONS)
def test_dataclass_schema_and_config_file_agree(section):
    """For every section: the dataclass is named after it, has exactly the schema's keys with the schema's
    defaults, every key is described (the CLI help comes from there), and config/config.yaml shows the same
    keys with the same values, in the same order."""
    cls = SECTION_TYPES[section]
    assert cls.__name__ == camel(section)
    props = section_schema(section)
    fields = {key_of(f.name): f for f in dataclasses.fields(cls)}
    assert list(fields) == list(props)
    instance = cls()
    for key, prop in props.items():
        default = prop["default"]
        value = getattr(instance, fields[key].name)
        assert as_lists(value) == default, key
        assert prop.get("description"), f"{section}.{key} has no description"
    written = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert list(written[section]) == list(props)
    assert written[section] == defaults()[section]


def test_top_level_defaults_and_datasets_match_the_schema():
    written = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    d = defaults()
    for key in ("results", "manifests", "logs", "videos_per_shard", "strict", "dataset"):
        assert written[key] == d[key], key
    assert written["datasets"]["demo"] == d["datasets"]["demo"]    # the demo entry, overrides included
    assert set(load_schema()["properties"]) == {"dataset", "results", "manifests", "logs", "videos_per_shard",
                                                "strict", "datasets", "recipes", *SECTIONS}


def test_dataset_formats_are_the_parsers():
    from pipeline.formats import FORMATS
    enum = load_schema()["definitions"]["dataset"]["properties"]["format"]["enum"]
    assert sorted(enum) == sorted(FORMATS)
    overridable = load_schema()["definitions"]["dataset"]["properties"]["overrides"]["properties"]
    assert list(overridable) == [*SECTIONS, "recipes"]
    from pipeline.core.config import Settings
    fields = {f.name: f.type for f in dataclasses.fields(Settings)}
    assert all(fields[s] == SECTION_TYPES[s].__name__ for s in SECTIONS)     # a field per section


def test_reference_parameters_from_the_papers():
    s = load_config(REPO / "config" / "config.yaml", "ucf101")
    assert s.decode.fps == 25.0 and s.decode.short_side == 256
    f = s.extract_flow
    assert (f.tau, f.lambda_, f.theta, f.nscales, f.warps, f.epsilon) == (0.25, 0.15, 0.3, 5, 5, 0.01)
    assert (f.inner_iterations, f.outer_iterations, f.scale_step, f.gamma, f.median_filtering) == (30, 10, 0.8, 0, 5)
    assert f.bound == 20.0 and f == ExtractFlowConfig()
    from pipeline.flow.params import DEFAULTS, tvl1_params_of
    assert tvl1_params_of(f) == DEFAULTS  # the flow backends' defaults are the config's
    assert (s.reencode.codec, s.reencode.gop, s.reencode.bframes, s.reencode.qscale) == ("mpeg4", 12, 0, 1)
    assert s.resframe.size == (170, 128) and s.clips.rgb_mean == (114.7748, 107.7354, 99.4750)
    from pipeline.data import clips
    assert clips.RGB_MEAN == s.clips.rgb_mean and clips.FLOW_MEAN == s.clips.flow_mean


def test_opencv_backend_takes_its_defaults_from_the_config():
    from pipeline.flow import opencv_backend
    algo = opencv_backend.create()
    cfg = ExtractFlowConfig()
    assert (algo.getTau(), algo.getLambda(), algo.getTheta(), algo.getScalesNumber(), algo.getWarpingsNumber(),
            algo.getEpsilon(), algo.getInnerIterations(), algo.getOuterIterations(), algo.getScaleStep(),
            algo.getGamma(), algo.getMedianFiltering()) == pytest.approx(
        (cfg.tau, cfg.lambda_, cfg.theta, cfg.nscales, cfg.warps, cfg.epsilon, cfg.inner_iterations,
         cfg.outer_iterations, cfg.scale_step, cfg.gamma, cfg.median_filtering))


def test_overrides_apply_to_their_dataset_only():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert resolve(cfg, "demo").decode.short_side == 48
    assert resolve(cfg, "demo").videos_per_shard == 76
    assert resolve(cfg, "ucf101").decode.short_side == 256
    sth = resolve(cfg, "sthv1").decode
    assert sth.fps is None and sth.short_side is None


def test_a_dataset_can_be_defined_without_the_config():
    s = resolve({}, "ucf101", {"format": "ucf101", "root": "/data/ucf", "splits": "/data/lists"})
    assert (s.dataset.format, s.dataset.root, s.dataset.splits) == ("ucf101", "/data/ucf", "/data/lists")
    assert s.decode.short_side == 256 and s.reencode.size == (340, 256)     # no demo overrides


@pytest.mark.parametrize("config,fragment", [
    ({"decode": {"interpolation": "nearest"}}, "'decode.interpolation': 'nearest' is not allowed; allowed values: "
                                               "['area', 'linear', 'cubic']"),
    ({"extract_flow": {"backend": "cuda"}}, "'extract_flow.backend'"),
    ({"extract_flow": {"median_filtering": 4}}, "allowed values: [1, 3, 5]"),
    ({"decode": {"short_side": 255}}, "'decode.short_side'"),
    ({"decode": {"bogus": 1}}, "allowed keys"),
    ({"residual_frames": {"size": [170, 128]}}, "allowed keys"),        # the old name of the resframe section
    ({"dataset": "nowhere"}, "'dataset': 'nowhere' is not allowed"),
    ({"datasets": {"x": {"format": "youtube8m", "root": "/x"}}}, "'datasets.x.format'"),
    ({"datasets": {"demo": {"format": "demo", "root": "r", "overrides": {"decode": {"jpeg_quality": 101}}}}},
     "'decode.jpeg_quality'"),
])
def test_wrong_values_name_the_key(config, fragment):
    with pytest.raises(ConfigError) as info:
        resolve(config)
    assert fragment in str(info.value)


def test_missing_file_is_reported():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/config.yaml")
