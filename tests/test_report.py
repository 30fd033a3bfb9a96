"""The report (pipeline/report/report.py) on a small but real results tree: metrics.json, two training logs
(one with MERS's two phases), a flow shard and an mv shard made with tests/shard_fixtures.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import h5py
import pytest

from pipeline.core import paths
from pipeline.core.errors import StageError
from pipeline.report.report import write_report

from .shard_fixtures import write_mv_and_resframes, write_shards

DATASET = "demo"


def _metrics() -> dict:
    def stream(top1, top5, mca, static, inp, model_s, flow_s):
        out = {"top1": top1, "top5": top5, "mean_class_accuracy": mca, "chance": 0.125, "videos": 56,
               "clips": 56, "input": inp, "model_seconds_per_video": model_s,
               "flow_seconds_per_video": flow_s, "seconds_per_video": model_s + flow_s}
        if static is not None:
            out["static_top1"] = static
        return out
    return {"dataset": DATASET, "split": "test", "classes": [f"c{i}" for i in range(8)], "average": "logits",
            "tvl1_seconds_per_pair": 0.1, "tvl1": {"backend": "opencv", "pairs": 8, "device": "cpu"},
            "device": "cpu",
            "streams": {"flow": stream(0.6, 0.9, 0.58, 0.125, "flow", 0.004, 1.1),
                        "rgb": stream(0.7, 0.95, 0.69, 0.5, "rgb", 0.004, 0.0),
                        "mars": stream(0.75, 0.98, 0.74, None, "rgb", 0.004, 0.0)},
            "fusions": {"rgb+flow": {"top1": 0.8, "top5": 1.0, "mean_class_accuracy": 0.8, "static_top1": 0.4,
                                     "chance": 0.125, "videos": 56, "streams": ["rgb", "flow"],
                                     "model_seconds_per_video": 0.008, "flow_seconds_per_video": 1.1,
                                     "seconds_per_video": 1.108}}}


def _log(path: Path, phases: list[tuple[str, int]], val: bool = True) -> None:
    rows, epoch = [], 0
    for phase, n in phases:
        for _ in range(n):
            epoch += 1
            row = {"epoch": epoch, "phase": phase, "lr": 0.1, "train_loss": 2.0 / epoch,
                   "train_acc": 0.1 * epoch, "clips_per_s": 50.0, "data_wait": 0.1, "seconds": 3.0,
                   "epoch_seconds": 3.2}
            if val:
                row.update(val_loss=2.1 / epoch, val_acc=0.05 * epoch)
            rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _place(src: Path, results: Path, stage: str, attrs: dict[str, dict]) -> None:
    """Move a fixture shard to ``<results>/<stage>/demo/shard-00000.h5`` and add the stream attributes the
    stages record (the fixtures do not)."""
    dest = paths.stage_dir(results, stage, DATASET) / paths.shard_name(0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    with h5py.File(dest, "r+") as f:
        for stream, values in attrs.items():
            f["frames"][stream].attrs.update(values)


def make_results(tmp_path: Path) -> Path:
    """``tmp_path/results`` with metrics.json, the rgb and mers logs, and shard 0 of decode, extract_flow and
    extract_mv."""
    res = tmp_path / "results"
    metrics = paths.stage_dir(res, "evaluate", DATASET) / paths.EVALUATE_FILES["metrics"]
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps(_metrics()))
    _log(paths.train_dir(res, DATASET, "rgb") / paths.TRAIN_FILES["log"], [("main", 3)])
    _log(paths.train_dir(res, DATASET, "mers") / paths.TRAIN_FILES["log"],
         [("features", 2), ("classifier", 2)], val=False)
    made = write_shards(tmp_path / "fx", [4, 3])
    _place(made["rgb"], res, "decode", {})
    _place(made["flow"], res, "extract_flow", {"x": {"bound": 20.0}, "y": {"bound": 20.0}})
    mv = write_mv_and_resframes(tmp_path / "fx", [3])
    _place(mv["mv"], res, "extract_mv", {"mv": {"bound": 20.0, "grid": 1}, "mv_acc": {"bound": 20.0}})
    return res


@pytest.fixture
def results(tmp_path) -> Path:
    return make_results(tmp_path)


def _links(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_tables_figures_and_notes(results, tmp_path):
    out = tmp_path / "report"
    summary = write_report(results, DATASET, out, ["rgb", "mers", "d3d"])
    report = Path(summary["report"])
    assert report == out / paths.REPORT_FILE and report.is_file()
    text = report.read_text()

    # the table: streams in the paper's order, then fusions, percentages with one decimal
    assert "| RGB | 70.0 | 95.0 | 69.0 | 50.0 | 0.004 |" in text
    assert "| Flow | 60.0 | 90.0 | 58.0 | 12.5 | 1.1 |" in text
    assert "| MARS | 75.0 | 98.0 | 74.0 | – | 0.004 |" in text
    assert "| RGB+Flow | 80.0 | 100.0 | 80.0 | 40.0 | 1.11 |" in text
    order = [text.index(f"| {name} |") for name in ("RGB", "Flow", "MARS", "RGB+Flow")]
    assert order == sorted(order)
    assert "| Method | demo top-1 (%) |" in text
    assert "Chance level: 12.5 % (8 classes). Test videos: 56" in text
    assert text.index("Chance level") < text.index("| Method |")

    # static drops, in points
    assert "RGB: 70.0 % on real clips, 50.0 % on static clips: a drop of 20.0 points." in text
    assert "Flow: 60.0 % on real clips, 12.5 % on static clips: a drop of 47.5 points." in text
    assert "MARS:" not in text.split("## Static clips")[1].split("##")[0]

    # training: both logs read, the missing one noted, MERS's phases shown
    assert "| MERS | 4 | features → classifier |" in text
    assert "| RGB | 3 | main |" in text
    assert "No training log for D3D: `train/demo/d3d/log.jsonl` does not exist" in text

    # what was measured
    assert "Device: cpu" in text and "0.1 s per frame pair (backend opencv" in text and "as logits" in text

    # every linked picture exists and is a valid PNG; the plots and the shard pictures are among them
    links = _links(text)
    names = {Path(link).name for link in links}
    assert {"accuracy_vs_time.png", "training_curves.png", "static_drop.png", paths.FLOW_STRIP,
            paths.MV_OVERVIEW.format(video="v0")} <= names
    for link in links:
        assert not Path(link).is_absolute()
        img = cv2.imread(str(out / link))
        assert img is not None and img.size > 0, link
    assert sorted(summary["figures"]) == sorted(str(out / link) for link in links)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".draw-*"))


def test_report_is_byte_stable(results, tmp_path):
    def run(folder: str) -> dict[str, bytes]:
        out = tmp_path / folder
        write_report(results, DATASET, out, ["rgb", "mers"])
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    first, second = run("a"), run("b")
    assert first.keys() == second.keys() and paths.REPORT_FILE in first
    assert first == second
    assert run("a") == first            # rewriting over an existing report too


def test_missing_shards_and_static_test_off(tmp_path):
    res = tmp_path / "results"
    metrics = _metrics()
    for m in (*metrics["streams"].values(), *metrics["fusions"].values()):
        m.pop("static_top1", None)
    p = paths.stage_dir(res, "evaluate", DATASET) / paths.EVALUATE_FILES["metrics"]
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(metrics))
    summary = write_report(res, DATASET, tmp_path / "out", ["rgb"])
    text = Path(summary["report"]).read_text()
    assert "static test was off" in text
    assert "no `extract_flow/demo/shard-00000.h5`" in text and "no `extract_mv/demo/shard-00000.h5`" in text
    assert "No training log for RGB" in text
    assert [Path(f).name for f in summary["figures"]] == ["accuracy_vs_time.png"]


def test_missing_metrics_names_the_path_and_the_command(tmp_path):
    with pytest.raises(StageError) as err:
        write_report(tmp_path / "results", DATASET, tmp_path / "out", ["rgb"])
    msg = str(err.value)
    metrics = paths.stage_dir(tmp_path / "results", "evaluate", DATASET) / paths.EVALUATE_FILES["metrics"]
    assert str(metrics) in msg
    assert "prep-cli evaluate" in msg
    assert not (tmp_path / "out" / paths.REPORT_FILE).exists()
