"""Stage ``make_demo``: the embedded synthetic dataset (:mod:`pipeline.media.synthetic`) into the root of a
``demo``-format dataset (by default ``results/make_demo/<dataset>/``): videos, ``classes.txt``,
``split.csv`` and ``true_flow.h5``, the true optical flow at the decode stage's frame rate."""

from __future__ import annotations

from pathlib import Path

from .contract import DatasetJob, Option, Stage
from ..core.errors import ConfigError
from ..media.synthetic import make_demo


def run(job: DatasetJob) -> dict:
    ds = job.settings.dataset
    if ds.format != "demo":
        raise ConfigError(f"make_demo writes a dataset of format 'demo'; dataset {ds.name!r} has format "
                          f"{ds.format!r} (its root {ds.root} is not written to): give --dataset of a demo entry")
    out = Path(job.out) if job.out else Path(ds.root)
    s = make_demo(out, job.config, job.settings.decode.fps)
    s["message"] = (f"{s['videos']} videos of {s['classes']} classes, {s['frames']} frames each at "
                    f"{s['fps']:g} fps -> {s['out']}")
    return s


STAGE = Stage(
    name="make_demo",
    summary="Generate the synthetic demo dataset (motion-defined classes, true flow included).",
    reads=None, writes=(), uses=("make_demo", "decode.fps"), run=run, per_shard=False,
    options=(Option("--seed", "seed"),),
)
