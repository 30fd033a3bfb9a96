"""The report's view of D3D's motion probe (D3D §3.1, Fig. 4): end-point error per layer per network.

Input: the dict :func:`pipeline.evaluate.probe.probe_networks` returns (as parsed from JSON too)::

    {"kind", "steps", "layers": [...], "networks": {name: {layer: {"epe": float, "zero_epe": float}}}, ...}

:func:`plot_probe` draws one line per network over the layers (input side left) and the zero-flow
baseline dashed; :func:`probe_lines` gives the markdown: a caption, a table (layer rows, one column per
network, then the zero-flow baseline) and a sentence saying where each network beats the baseline. Both are
pure functions of the dict (the PNG's bytes are the same for the same dict); a layer a network lacks is
shown as a gap / "–".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from .report import MISSING, _figure, _save, _styled, display_name

#: the zero-flow baselines of two networks on one layer are the same one when this close (pixels)
_SAME = 1e-6


def _value(probe: Mapping[str, Any], network: str, layer: str, key: str) -> float | None:
    entry = ((probe.get("networks") or {}).get(network) or {}).get(layer) or {}
    v = entry.get(key)
    return None if v is None or not math.isfinite(float(v)) else float(v)


def probe_layers(probe: Mapping[str, Any]) -> list[str]:
    """The probed layers in the order the probe lists them (else those the networks have, first seen
    first)."""
    if probe.get("layers"):
        return [str(x) for x in probe["layers"]]
    seen: dict[str, None] = {}
    for scores in (probe.get("networks") or {}).values():
        seen.update(dict.fromkeys(scores))
    return list(seen)


def zero_baselines(probe: Mapping[str, Any]) -> dict[str, list[float | None]]:
    """The zero-flow EPE per layer (in :func:`probe_layers` order): ``{"zero flow": [...]}`` when every
    network has the same one on each layer (the usual case: the same test clips and feature geometry),
    ``{network: [...]}`` per network otherwise."""
    layers = probe_layers(probe)
    networks = list(probe.get("networks") or {})
    per = {n: [_value(probe, n, l, "zero_epe") for l in layers] for n in networks}
    shared: list[float | None] = []
    for i in range(len(layers)):
        vals = [per[n][i] for n in networks if per[n][i] is not None]
        if vals and max(vals) - min(vals) > _SAME:
            return per
        shared.append(vals[0] if vals else None)
    return {"zero flow": shared}


def below_zero(probe: Mapping[str, Any], network: str) -> list[str]:
    """The layers at which ``network``'s EPE is below its own zero-flow EPE."""
    out = []
    for layer in probe_layers(probe):
        epe, zero = _value(probe, network, layer, "epe"), _value(probe, network, layer, "zero_epe")
        if epe is not None and zero is not None and epe < zero:
            out.append(layer)
    return out


def _px(x: float | None) -> str:
    return MISSING if x is None else f"{x:.2f}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def probe_lines(probe: Mapping[str, Any]) -> list[str]:
    """Markdown lines: a caption, a table (one row per layer; one column per network, then the zero-flow
    baseline; EPE in pixels with 2 decimals) and one sentence naming, per network, the layers at which its
    EPE is below the zero-flow baseline."""
    layers = probe_layers(probe)
    networks = list(probe.get("networks") or {})
    if not networks or not layers:
        return ["No network was probed."]
    zeros = zero_baselines(probe)
    zero_cols = (["zero flow"] if list(zeros) == ["zero flow"]
                 else [f"zero flow ({display_name(n)})" for n in zeros])
    caption = (f"End-point error (pixels of the input clip, lower is better) of a {probe.get('kind', MISSING)} "
               f"decoder trained for {probe.get('steps', MISSING)} steps on the frozen features of each layer "
               f"to predict TV-L1 flow (D3D §3.1), on the test clips; \"zero flow\" predicts no motion.")
    header = "| layer | " + " | ".join([display_name(n) for n in networks] + zero_cols) + " |"
    rule = "|---|" + "---:|" * (len(networks) + len(zero_cols))
    rows = []
    for i, layer in enumerate(layers):
        cells = [_px(_value(probe, n, layer, "epe")) for n in networks] + [_px(v[i]) for v in zeros.values()]
        rows.append(f"| {layer} | " + " | ".join(cells) + " |")
    parts = []
    for n in networks:
        below = below_zero(probe, n)
        parts.append(f"{display_name(n)} at {_join(below)}" if below
                     else f"{display_name(n)} at none of the probed layers")
    sentence = "EPE below the zero-flow baseline: " + "; ".join(parts) + "."
    return [caption, "", header, rule, *rows, "", sentence]


@_styled
def plot_probe(probe: Mapping[str, Any], dest: Path) -> Path:
    """EPE (pixels) per layer, one labelled line per network, the zero-flow baseline dashed (one black line,
    or one per network in its colour when their baselines differ); a PNG at ``dest`` (atomic, the same
    bytes for the same ``probe``)."""
    layers = probe_layers(probe)
    networks = list(probe.get("networks") or {})
    fig = _figure(max(5.0, 1.1 * len(layers) + 2.5), 4)
    ax = fig.add_subplot()
    xs = list(range(len(layers)))
    nan = float("nan")
    colors = {n: f"C{i % 10}" for i, n in enumerate(networks)}
    for n in networks:
        ys = [_value(probe, n, l, "epe") for l in layers]
        ax.plot(xs, [nan if y is None else y for y in ys], marker="o", color=colors[n], label=display_name(n))
    for key, ys in zero_baselines(probe).items():
        shared = key == "zero flow"
        ax.plot(xs, [nan if y is None else y for y in ys], linestyle="--", marker="x" if shared else None,
                color="black" if shared else colors[key],
                label="zero flow" if shared else f"zero flow ({display_name(key)})")
    ax.set_xticks(xs, layers)
    ax.set_xlim(-0.3, max(len(layers) - 0.7, 0.3))
    ax.set_ylim(bottom=0)
    ax.set(xlabel="layer (input side left)", ylabel="end-point error (px)",
           title=f"Motion probe ({probe.get('kind', MISSING)} decoder, {probe.get('steps', MISSING)} steps)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, Path(dest))


__all__ = ["below_zero", "plot_probe", "probe_layers", "probe_lines", "zero_baselines"]
