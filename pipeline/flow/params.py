"""TV-L1 parameters and their defaults (OpenCV 5's), defined once for both backends and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Params:
    tau: float = 0.25             # time step of the numerical scheme
    lambda_: float = 0.15         # data-term weight (smaller: smoother flow)
    theta: float = 0.3            # coupling of the two sub-problems
    nscales: int = 5              # pyramid levels
    warps: int = 5                # warpings per level
    epsilon: float = 0.01         # stopping threshold of the inner loop
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8       # size ratio between pyramid levels
    gamma: float = 0.0            # illumination-change term weight (0: off)
    median_filtering: int = 5     # median filter size between warps


DEFAULTS: dict = asdict(Params())
PARAM_NAMES: tuple[str, ...] = tuple(DEFAULTS)
