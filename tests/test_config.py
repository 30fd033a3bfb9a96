"""Configuration: schema defaults, the commented config file, validation messages, per-dataset overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, FlowConfig, load_config, load_schema, resolve, _fill_defaults

REPO = Path(__file__).resolve().parents[1]


def test_config_file_matches_schema_defaults():
    """config/config.yaml documents every default: its stage sections equal the schema's defaults."""
    schema = load_schema()
    defaults = _fill_defaults(schema, {}, schema)
    written = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for section in ("decode", "extract_flow", "reencode", "extract_mv", "residual_frames", "clips", "make_demo"):
        assert written[section] == defaults[section], section
    for key in ("results", "manifests", "logs", "videos_per_shard", "strict", "dataset"):
        assert written[key] == defaults[key], key


def test_reference_parameters_from_the_papers():
    s = load_config(REPO / "config" / "config.yaml", "ucf101")
    assert s.decode.fps == 25.0 and s.decode.short_side == 256
    f = s.extract_flow
    assert (f.tau, f.lambda_, f.theta, f.nscales, f.warps, f.epsilon) == (0.25, 0.15, 0.3, 5, 5, 0.01)
    assert (f.inner_iterations, f.outer_iterations, f.scale_step, f.gamma, f.median_filtering) == (30, 10, 0.8, 0, 5)
    assert f.bound == 20.0 and f == FlowConfig()
    from pipeline.flow.params import DEFAULTS
    assert f.tvl1_params() == DEFAULTS  # the config's defaults are the flow backends' defaults
    assert (s.reencode.codec, s.reencode.gop, s.reencode.bframes, s.reencode.qscale) == ("mpeg4", 12, 0, 1)
    assert s.residual_frames.size == (170, 128) and s.clips.rgb_mean == (114.7748, 107.7354, 99.4750)


def test_overrides_apply_to_their_dataset_only():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert resolve(cfg, "demo").decode.short_side == 112
    assert resolve(cfg, "demo").videos_per_shard == 20
    assert resolve(cfg, "ucf101").decode.short_side == 256
    sth = resolve(cfg, "sthv1").decode
    assert sth.fps is None and sth.short_side is None


@pytest.mark.parametrize("config,fragment", [
    ({"decode": {"interpolation": "nearest"}}, "'decode.interpolation': 'nearest' is not allowed; allowed values: "
                                               "['area', 'linear', 'cubic']"),
    ({"extract_flow": {"backend": "cuda"}}, "'extract_flow.backend'"),
    ({"extract_flow": {"median_filtering": 4}}, "allowed values: [1, 3, 5]"),
    ({"decode": {"short_side": 255}}, "'decode.short_side'"),
    ({"decode": {"bogus": 1}}, "allowed keys"),
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
