"""TV-L1 parameters for both backends. Names, defaults and allowed values come from the config schema's
``extract_flow`` section (OpenCV 5's defaults; MARS §4.2): this module defines only which of its keys are
the algorithm's, so the defaults exist once."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.config import ExtractFlowConfig

#: the TV-L1 keys of ExtractFlowConfig, in OpenCV's order (dataclass field names: lambda_ for lambda)
PARAM_NAMES: tuple[str, ...] = ("tau", "lambda_", "theta", "nscales", "warps", "epsilon", "inner_iterations",
                                "outer_iterations", "scale_step", "gamma", "median_filtering")
_CFG = ExtractFlowConfig()


@dataclass(frozen=True)
class Params:
    """One TV-L1 parameter set: time step ``tau``, data weight ``lambda_``, coupling ``theta``, pyramid
    ``nscales`` levels of ratio ``scale_step``, ``warps`` per level, ``inner_iterations`` and
    ``outer_iterations`` with stopping threshold ``epsilon``, illumination weight ``gamma`` (0: off) and the
    ``median_filtering`` size between warps."""

    tau: float = _CFG.tau
    lambda_: float = _CFG.lambda_
    theta: float = _CFG.theta
    nscales: int = _CFG.nscales
    warps: int = _CFG.warps
    epsilon: float = _CFG.epsilon
    inner_iterations: int = _CFG.inner_iterations
    outer_iterations: int = _CFG.outer_iterations
    scale_step: float = _CFG.scale_step
    gamma: float = _CFG.gamma
    median_filtering: int = _CFG.median_filtering


DEFAULTS: dict = asdict(Params())
assert tuple(DEFAULTS) == PARAM_NAMES


def tvl1_params_of(cfg: ExtractFlowConfig) -> dict:
    """The TV-L1 parameters of a stage config alone, as keyword arguments of :func:`pipeline.flow.tvl1`."""
    return {n: getattr(cfg, n) for n in PARAM_NAMES}
