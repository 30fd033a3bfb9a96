"""Stage ``report``: ``results/report/<dataset>/report.md`` with its PNGs, from the evaluation's metrics, the
training logs and pictures of the flow and motion-vector shards (:mod:`pipeline.report.report`)."""

from __future__ import annotations

from pathlib import Path

from .contract import DatasetJob, Stage


def run(job: DatasetJob) -> dict:
    from ..report.report import write_report      # plotting: imported only when a report is written
    s = job.settings
    out = Path(job.out) if job.out else s.stage_dir("report")
    from ..features.sets import resolve_sets
    summary = write_report(s.results, s.dataset.name, out, list(s.evaluate.streams),
                           [fs.name for fs in resolve_sets(s.extract_features)])
    summary["message"] = f"{summary['report']} ({len(summary.get('figures', []))} figures)"
    return summary


STAGE = Stage(
    name="report",
    summary="Write the report (accuracy table, accuracy versus time, training curves, static-clip drop, "
            "pictures of flow, motion vectors and residuals, the linear probe of each feature set).",
    reads=None, writes=(), uses=("evaluate",), run=run, per_shard=False,
)
