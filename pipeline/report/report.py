"""The report of one dataset: what a person reads instead of ``metrics.json`` and the training logs.

:func:`write_report` reads ``<results>/evaluate/<dataset>/metrics.json``, every method's
``<results>/train/<dataset>/<method>/log.jsonl`` and the first video of shard 0 of ``extract_flow`` and
``extract_mv`` (when those shards exist), and writes ``<out_dir>/report.md`` with, beside it:

- ``accuracy_vs_time.png``: top-1 against seconds per video, log scale (MARS Fig. 1);
- ``training_curves.png``: train loss and validation accuracy per epoch of every method (MERS phases marked);
- ``static_drop.png``: top-1 on real clips and on static clips (one frame repeated) of every stream;
- ``png/extract_flow/strip.png`` and ``png/extract_mv/<video>-overview.png``: pictures of the shards
  (:mod:`.pictures`).

Every file is written under a temporary name and renamed; ``report.md`` last, so a report implies its
figures. The same inputs give the same bytes (no timestamps in the PNGs). The table and markdown builders
are pure functions of the parsed inputs; the plotting imports matplotlib (Agg) only when called.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..core import paths
from ..core.atomic import atomic_path, write_text_atomic
from ..core.errors import StageError
from ..shards import ShardError
from .pictures import visualize_shard_video, visualize_video

#: metrics.json stream name -> the name the report (and the MARS paper) gives it, in the table's order
DISPLAY = {"rgb": "RGB", "flow": "Flow", "mers": "MERS", "mars": "MARS", "d3d": "D3D",
           "resframe": "Residual frames", "appearance": "Appearance", "iframe": "I-frame", "mv": "MV",
           "residual": "Residual", "dmc": "DMC-Net", "spatial": "Spatial", "hidden": "Stacked temporal (MotionNet frozen)",
           "hidden_e2e": "Stacked temporal (end to end)", "hidden_e2e_unsup": "Stacked temporal (end to end + unsup.)"}
#: the fusions in the table's order (others follow in the order metrics.json lists them)
FUSION_ORDER = ("rgb+flow", "mers+rgb", "mars+rgb", "mars+rgb+flow", "resframe+appearance", "iframe+mv+residual",
                "iframe+dmc", "iframe+residual+dmc", "spatial+hidden:1.5", "spatial+hidden_e2e:1.5",
                "spatial+hidden_e2e_unsup:1.5")
FIGURES = paths.REPORT_FIGURES
MISSING = "–"
_SAVE = {"format": "png", "dpi": 100, "metadata": {"Software": None}}     # no version, no time: stable bytes


@dataclass(frozen=True)
class Row:
    """One stream or fusion of metrics.json."""

    key: str                    # its name in metrics.json
    label: str                  # its name in the report
    fusion: bool
    m: Mapping[str, Any]        # its metrics


# -- reading ------------------------------------------------------------------------------------------------
def metrics_path(results: Path, dataset: str) -> Path:
    return paths.stage_dir(results, "evaluate", dataset) / paths.EVALUATE_FILES["metrics"]


def read_metrics(results: Path, dataset: str) -> dict:
    """The parsed metrics.json; a missing or unreadable one is a :class:`StageError` saying what to run."""
    p = metrics_path(results, dataset)
    if not p.is_file():
        raise StageError(f"report: {p} does not exist; run `prep-cli evaluate --dataset {dataset}` first")
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise StageError(f"report: cannot read {p} ({e}); "
                         f"rerun `prep-cli evaluate --dataset {dataset}`") from e
    if not isinstance(data, dict):
        raise StageError(f"report: {p} is not a JSON object; rerun `prep-cli evaluate --dataset {dataset}`")
    return data


def read_log(path: Path) -> list[dict]:
    """The epochs of one log.jsonl (blank lines skipped); a malformed line is a :class:`StageError`."""
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StageError(f"report: {path} line {n} is not JSON ({e})") from e
    return rows


# -- pure builders ------------------------------------------------------------------------------------------
def display_name(key: str) -> str:
    """``"mars+rgb"`` -> ``"MARS+RGB"``, ``"rgb+hidden:1.5"`` -> ``"RGB+... ×1.5"``; an unknown name is shown as
    it is."""
    def one(part: str) -> str:
        name, _, w = part.partition(":")
        return DISPLAY.get(name, name) + (f" ×{w}" if w else "")
    return "+".join(one(part) for part in key.split("+"))


def accuracy_rows(metrics: Mapping[str, Any]) -> list[Row]:
    """Streams (in :data:`DISPLAY` order, then others) then fusions (in :data:`FUSION_ORDER`, then others)."""
    def ordered(d: Mapping[str, Any], order: Sequence[str]) -> list[str]:
        return [k for k in order if k in d] + [k for k in d if k not in order]
    streams, fusions = metrics.get("streams") or {}, metrics.get("fusions") or {}
    return ([Row(k, display_name(k), False, streams[k]) for k in ordered(streams, tuple(DISPLAY))]
            + [Row(k, display_name(k), True, fusions[k]) for k in ordered(fusions, FUSION_ORDER)])


def pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * float(x):.1f}"


def seconds(x: float | None) -> str:
    return MISSING if x is None else f"{float(x):.3g}"


def accuracy_table(rows: Sequence[Row], dataset: str) -> list[str]:
    """A markdown table laid out like MARS Table 1 (percentages with one decimal)."""
    out = [f"| Method | {dataset} top-1 (%) | top-5 (%) | mean class accuracy (%) | static-clip top-1 (%) "
           "| seconds per video |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        g = r.m.get
        out.append(f"| {r.label} | {pct(g('top1'))} | {pct(g('top5'))} | {pct(g('mean_class_accuracy'))} "
                   f"| {pct(g('static_top1'))} | {seconds(g('seconds_per_video'))} |")
    return out


def chance_line(rows: Sequence[Row], metrics: Mapping[str, Any]) -> str:
    chances = sorted({float(r.m["chance"]) for r in rows if "chance" in r.m})
    classes = metrics.get("classes")
    chance = (", ".join(f"{100 * c:.1f} %" for c in chances) if chances
              else f"{100 / len(classes):.1f} %" if classes else MISSING)
    videos = {r.label: r.m["videos"] for r in rows if "videos" in r.m}
    if len(set(videos.values())) == 1:
        count = str(next(iter(videos.values())))
    elif videos:
        count = ", ".join(f"{k} {v}" for k, v in videos.items())
    else:
        count = MISSING
    n = f" ({len(classes)} classes)" if classes else ""
    return f"Chance level: {chance}{n}. Test videos: {count}."


def static_drops(rows: Sequence[Row]) -> list[tuple[str, float, float]]:
    """(label, top-1, static top-1) of every stream tested on static clips."""
    return [(r.label, float(r.m["top1"]), float(r.m["static_top1"])) for r in rows
            if not r.fusion and "top1" in r.m and r.m.get("static_top1") is not None]


def static_sentence(label: str, top1: float, static: float) -> str:
    drop = round(100 * (top1 - static), 1)
    what = (f"a drop of {drop:.1f} points" if drop > 0 else f"a rise of {-drop:.1f} points" if drop < 0
            else "no drop")
    return f"{label}: {pct(top1)} % on real clips, {pct(static)} % on static clips: {what}."


def training_table(logs: Mapping[str, list[dict]]) -> list[str]:
    out = ["| Method | epochs | phases | last train loss | last val accuracy (%) | best val accuracy (%) "
           "| clips per second | training seconds |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for method, rows in logs.items():
        phases = " → ".join(dict.fromkeys(str(r.get("phase", "main")) for r in rows))
        val = [r["val_acc"] for r in rows if r.get("val_acc") is not None]
        speed = [r["clips_per_s"] for r in rows if r.get("clips_per_s") is not None]
        total = sum(float(r.get("epoch_seconds", r.get("seconds", 0.0))) for r in rows)
        last_loss = rows[-1].get("train_loss")
        out.append(f"| {display_name(method)} | {len(rows)} | {phases} "
                   f"| {MISSING if last_loss is None else f'{last_loss:.4g}'} "
                   f"| {pct(val[-1] if val else None)} | {pct(max(val) if val else None)} "
                   f"| {f'{sum(speed) / len(speed):.1f}' if speed else MISSING} | {total:.1f} |")
    return out


def motion_lines(motion: Mapping[str, Any]) -> list[str]:
    """The learned motion (DMC-Net's cue, MotionNet's flow): end-point errors and times, as a table."""
    if not motion:
        return []
    md = ["| stream | cue | EPE vs TV-L1 (px) | baseline vs TV-L1 | EPE vs true flow | TV-L1 vs true | zero vs true "
          "| ms per frame (cue; with the classifier) |", "|---|---|---|---|---|---|---|---|"]
    for name, m in motion.items():
        t = m.get("seconds_per_frame", {})
        if "epe_dmc_tvl1" in m:
            cue, base = m["epe_dmc_tvl1"], f"MV {m['epe_mv_tvl1']:.3f}, zero {m['epe_zero_tvl1']:.3f}"
            true = (f"{m['epe_dmc_true']:.3f} (MV {m['epe_mv_true']:.3f})" if "epe_dmc_true" in m else MISSING)
            times = f"{t.get('generator', 0) * 1e3:.3f}; {t.get('generator_classifier', 0) * 1e3:.3f}"
            label = "DMC (generator)"
        else:
            cue, base = m["epe_motionnet_tvl1"], f"zero {m['epe_zero_tvl1']:.3f}"
            true = f"{m['epe_motionnet_true']:.3f}" if "epe_motionnet_true" in m else MISSING
            times = f"{t.get('motionnet', 0) * 1e3:.3f}; {t.get('motionnet_temporal', 0) * 1e3:.3f}"
            label = "MotionNet flow"
        tv = f"{m['epe_tvl1_true']:.3f}" if "epe_tvl1_true" in m else MISSING
        zt = f"{m['epe_zero_true']:.3f}" if "epe_zero_true" in m else MISSING
        md.append(f"| {display_name(name)} | {label} | {cue:.3f} | {base} | {true} | {tv} | {zt} | {times} |")
    dmc = motion.get("dmc", {}).get("seconds_per_frame", {})
    big = [k for k in dmc if k.startswith("generator_") and k[10:].isdigit()]
    if big:
        md += ["", f"DMC-Net at {big[0][10:]}x{big[0][10:]}: generator {dmc[big[0]] * 1e3:.2f} ms a frame, with the "
               f"classifier {dmc.get('generator_classifier_' + big[0][10:], 0) * 1e3:.2f} ms (DMC-Net reports 0.106 ms "
               "for the generator on a GPU)."]
    return md


def measured_lines(metrics: Mapping[str, Any]) -> list[str]:
    tv = metrics.get("tvl1") or {}
    per_pair = metrics.get("tvl1_seconds_per_pair")
    tvl1 = (f"{per_pair:.3g} s per frame pair (backend {tv.get('backend', MISSING)}, "
            f"on {tv.get('device', MISSING)}, timed over {tv.get('pairs', MISSING)} pairs)"
            if per_pair is not None else "not timed (no flow stream)")
    return [f"- Device: {metrics.get('device', MISSING)}.",
            f"- TV-L1 optical flow: {tvl1}.",
            f"- Averaging: the clip scores of a video are averaged as {metrics.get('average', MISSING)}; "
            "a fusion averages its streams' video scores the same way.",
            "- Seconds per video: the network time per test video, plus for flow inputs the TV-L1 time "
            "(frame pairs × seconds per pair; one TV-L1 pass serves every flow stream of a fusion).",
            "- Static clips: one frame of the clip repeated, so a network that uses motion loses accuracy."]


def link(target: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(target, out_dir)).as_posix()


# -- figures ------------------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height))


def _save(fig, dest: Path) -> Path:
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, **_SAVE)
    return dest


def _styled(plot):
    """Run ``plot`` under matplotlib's default style, whatever the user's matplotlibrc says."""
    def wrapped(*args, **kwargs):
        import matplotlib.style
        with matplotlib.style.context("default"):
            return plot(*args, **kwargs)
    return wrapped


@_styled
def plot_accuracy_time(rows: Sequence[Row], dest: Path) -> Path:
    """Top-1 (%) against seconds per video (log scale), every stream (circle) and fusion (square) labelled."""
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    for r in rows:
        x, y = float(r.m["seconds_per_video"]), 100 * float(r.m["top1"])
        ax.scatter([x], [y], marker="s" if r.fusion else "o", color="tab:orange" if r.fusion else "tab:blue")
        ax.annotate(r.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per video (log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy versus time (circles: streams, squares: fusions)")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, dest)


@_styled
def plot_training(logs: Mapping[str, list[dict]], dest: Path) -> Path:
    """Train loss (left) and validation accuracy (right) per epoch; a method's phases are drawn as separate
    segments (dashed after the first) with a dotted line where a phase starts."""
    fig = _figure(11, 4.2)
    loss_ax, acc_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, (method, rows) in enumerate(logs.items()):
        color = f"C{i % 10}"
        phases = list(dict.fromkeys(str(r.get("phase", "main")) for r in rows))
        for j, phase in enumerate(phases):
            seg = [r for r in rows if str(r.get("phase", "main")) == phase]
            name = display_name(method) + (f" ({phase})" if len(phases) > 1 else "")
            style = {"color": color, "marker": "o", "markersize": 3, "linestyle": "-" if j == 0 else "--"}
            loss_ax.plot([r["epoch"] for r in seg], [r.get("train_loss") for r in seg], label=name, **style)
            val = [r for r in seg if r.get("val_acc") is not None]
            if val:
                acc_ax.plot([r["epoch"] for r in val], [100 * r["val_acc"] for r in val], label=name, **style)
            if j > 0:
                for ax in (loss_ax, acc_ax):
                    ax.axvline(seg[0]["epoch"] - 0.5, color=color, linestyle=":", linewidth=1)
                loss_ax.annotate(f"{display_name(method)}: {phase}", (seg[0]["epoch"] - 0.5, 1),
                                 xycoords=("data", "axes fraction"), xytext=(3, -12),
                                 textcoords="offset points", fontsize=7, color=color)
    loss_ax.set(xlabel="epoch", ylabel="train loss", title="Train loss (MERS features phase: feature MSE)")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
    from matplotlib.ticker import MaxNLocator
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, dest)


@_styled
def plot_static(drops: Sequence[tuple[str, float, float]], dest: Path, chance: float | None = None) -> Path:
    """Grouped bars: top-1 (%) on real clips and on static clips, per stream; a dashed line at chance."""
    fig = _figure(max(4.0, 1.2 * len(drops) + 2), 4)
    ax = fig.add_subplot()
    xs = range(len(drops))
    ax.bar([x - 0.2 for x in xs], [100 * d[1] for d in drops], 0.4, label="real clips", color="tab:blue")
    ax.bar([x + 0.2 for x in xs], [100 * d[2] for d in drops], 0.4, label="static clips", color="tab:gray")
    if chance is not None:
        ax.axhline(100 * chance, color="black", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(list(xs), [d[0] for d in drops])
    ax.set(ylabel="top-1 accuracy (%)", title="Real versus static clips")
    ax.legend(fontsize=8)
    return _save(fig, dest)


# -- pictures of earlier stages -----------------------------------------------------------------------------
def stage_pictures(results: Path, dataset: str,
                   out_dir: Path) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """The flow strip and the mv/residual overview of the first video of shard 0, each drawn by
    :mod:`.pictures` into a scratch folder and moved (atomically) to ``out_dir/png/<stage>/``; returns
    ((title, shard relative to ``results``, picture), ...) and the lines saying what is missing."""
    drawers = {"extract_flow": ("Optical flow (TV-L1)", lambda s, d: visualize_video(s, d, "0")[-1:]),
               "extract_mv": ("Motion vectors and residuals",
                              lambda s, d: visualize_shard_video(s, None, d)[-1:])}
    found, notes = [], []
    for stage, (title, draw) in drawers.items():
        shard = paths.stage_dir(results, stage, dataset) / paths.shard_name(0)
        where = link(shard, results)
        if not shard.is_file():
            notes.append(f"- {title}: no `{where}` (run `prep-cli {stage.replace('_', '-')}`), no picture.")
            continue
        final = out_dir / paths.PICTURES_FOLDER / stage
        final.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final, prefix=".draw-") as scratch:
            try:
                drawn = draw(shard, Path(scratch))
            except ShardError as e:
                notes.append(f"- {title}: `{where}` cannot be drawn ({e}).")
                continue
            for p in drawn:
                os.replace(p, final / p.name)
                found.append((title, where, final / p.name))
        if not drawn:
            notes.append(f"- {title}: the first video of `{where}` has nothing to draw.")
    return found, notes


def read_linear(results: Path, dataset: str, feature_sets: Sequence[str]) -> tuple[dict[str, dict], list[str]]:
    """``{set: the linear probe's metrics.json}`` of the feature sets that have one, and a note for each
    that has none."""
    found, notes = {}, []
    for name in feature_sets:
        p = paths.linear_dir(results, dataset, name) / paths.TRAIN_FILES["metrics"]
        try:
            found[name] = json.loads(p.read_text())
        except (OSError, ValueError):
            notes.append(f"- No linear probe of the feature set {name}: `{link(p, results)}` is missing; run "
                         f"`prep-cli train --method linear --features {name}`.")
    return found, notes


def linear_table(probes: Mapping[str, Mapping[str, Any]], metrics: Mapping[str, Any]) -> list[str]:
    """The linear probe's video top-1 of each feature set beside its network's own (the evaluation's)."""
    streams = metrics.get("streams", {})
    md = ["| feature set | network | linear probe top-1 | network's own top-1 | chance | test videos |",
          "|---|---|---:|---:|---:|---:|"]
    for name, m in probes.items():
        method = m.get("method") or name
        own = streams.get(method, {}).get("top1")
        md.append(f"| {name} | {display_name(method)} | {pct(m.get('top1'))} | {pct(own)} | "
                  f"{pct(m.get('chance'))} | {m.get('test_videos', MISSING)} |")
    return md


# -- the report ---------------------------------------------------------------------------------------------
def build_markdown(dataset: str, metrics: Mapping[str, Any], rows: Sequence[Row],
                   logs: Mapping[str, list[dict]], log_notes: Sequence[str],
                   figures: Mapping[str, str | None], pictures: Sequence[tuple[str, str, str]],
                   picture_notes: Sequence[str], probes: Mapping[str, Mapping[str, Any]] | None = None,
                   probe_notes: Sequence[str] = ()) -> str:
    """The text of report.md; ``figures``: figure key -> relative link (absent: not drawn); ``pictures``:
    (title, shard, relative link)."""
    drops = static_drops(rows)
    md = [f"# Report: {dataset}", "",
          f"Evaluation of the `{metrics.get('split', MISSING)}` split of `{dataset}`.", "",
          "## Accuracy", "", chance_line(rows, metrics), ""]
    md += accuracy_table(rows, dataset) if rows else ["No stream or fusion was evaluated."]
    md += ["", "Rows: the streams, then their fusions (average of the streams' video scores). "
           "Static-clip top-1: the same test videos with one frame repeated.", ""]
    md += [f"![Top-1 accuracy versus seconds per video]({figures['accuracy_time']})"
           if figures.get("accuracy_time") else "No accuracy-time plot (no row has a time per video).",
           ""]
    md += ["## Static clips", ""]
    if drops:
        md += [f"- {static_sentence(*d)}" for d in drops]
        md += ["", f"![Real versus static clips]({figures['static']})"]
    else:
        md += ["No stream was tested on static clips (the static test was off)."]
    md += ["", "## Training", ""]
    if logs:
        md += training_table(logs) + ["", f"![Training curves]({figures['training']})"]
    md += [""] + list(log_notes) + ([""] if log_notes else [])
    if metrics.get("motion"):
        md += ["## Learned motion", "", "End-point error in pixels on the test clips' centre crops; DMC-Net's cue "
               "is compared with the negated TV-L1 flow into its P-frame (the vectors' orientation), MotionNet's "
               "finest flow, upsampled, with TV-L1 flow; \"true flow\" is the demo's own.", ""]
        md += motion_lines(metrics["motion"]) + [""]
    if metrics.get("probe", {}).get("networks"):
        from .probe_plot import probe_lines
        md += ["## Where motion is: D3D's probe", ""] + probe_lines(metrics["probe"]) + [""]
        if figures.get("probe"):
            md += [f"![Probe end-point error per layer]({figures['probe']})", ""]
    if probes or probe_notes:
        md += ["## Linear probe", "", "Logistic regression on each feature set's frozen clip features "
               "(`prep-cli extract-features`, `prep-cli train --method linear`), fitted on the train split and "
               "tested on the test videos, beside the network's own accuracy.", ""]
        md += (linear_table(probes, metrics) if probes else []) + [""] + list(probe_notes)
        md += [""] if probe_notes else []
    md += ["## Pictures", ""]
    for title, where, target in pictures:
        md += [f"### {title}", "", f"First video of `{where}`:", "", f"![{title}]({target})", ""]
    md += list(picture_notes) + ([""] if picture_notes else [])
    md += ["## What was measured", ""] + measured_lines(metrics) + [""]
    return "\n".join(md)


def write_report(results: Path, dataset: str, out_dir: Path, methods: Sequence[str],
                 feature_sets: Sequence[str] = ()) -> dict:
    """Write ``out_dir/report.md`` and its PNGs from the evaluation and training results of ``dataset``.

    ``methods``: the training runs whose logs to plot (a missing log is noted in the report). Returns
    ``{"report": path of report.md, "figures": [every PNG written], "notes": [what was missing]}``.
    Raises :class:`StageError` when metrics.json is missing or unreadable (it names the command to run).
    """
    results, out_dir = Path(results), Path(out_dir)
    metrics = read_metrics(results, dataset)
    rows = accuracy_rows(metrics)
    logs, log_notes = {}, []
    for method in methods:
        p = paths.train_dir(results, dataset, method) / paths.TRAIN_FILES["log"]
        epochs = read_log(p) if p.is_file() else []
        if epochs:
            logs[method] = epochs
        else:
            state = "is empty" if p.is_file() else "does not exist"
            log_notes.append(f"- No training log for {display_name(method)}: `{link(p, results)}` {state}; "
                             f"skipped (run `prep-cli train --method {method}`).")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    timed = [r for r in rows if "top1" in r.m and float(r.m.get("seconds_per_video") or 0) > 0]
    if timed:
        written["accuracy_time"] = plot_accuracy_time(timed, out_dir / FIGURES["accuracy_time"])
    if logs:
        written["training"] = plot_training(logs, out_dir / FIGURES["training"])
    if static_drops(rows):
        chance = next((float(r.m["chance"]) for r in rows if "chance" in r.m), None)
        written["static"] = plot_static(static_drops(rows), out_dir / FIGURES["static"], chance)
    if metrics.get("probe", {}).get("networks"):
        from .probe_plot import plot_probe
        written["probe"] = plot_probe(metrics["probe"], out_dir / FIGURES["probe"])
    pictures, picture_notes = stage_pictures(results, dataset, out_dir)
    text = build_markdown(dataset, metrics, rows, logs, log_notes,
                          {k: link(p, out_dir) for k, p in written.items()},
                          [(t, w, link(p, out_dir)) for t, w, p in pictures], picture_notes,
                          *read_linear(results, dataset, feature_sets))
    report = out_dir / paths.REPORT_FILE
    write_text_atomic(report, text)
    figures = [*written.values(), *(p for *_, p in pictures)]
    return {"report": str(report), "figures": [str(p) for p in figures],
            "notes": [*log_notes, *picture_notes]}


__all__ = ["write_report", "read_metrics", "read_log", "accuracy_rows", "accuracy_table", "static_drops",
           "static_sentence", "training_table", "build_markdown", "display_name", "FIGURES", "read_linear",
           "linear_table"]
