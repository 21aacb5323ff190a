"""Small line plots for the report, drawn with matplotlib's Agg canvas and embedded as PNG data URIs."""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmconcepts.report.images import data_uri

# Line styles by series label; anything else gets the default blue.
STYLES = {
    "snmf": {"color": "#1f5fa8", "marker": "o", "linewidth": 2},
    "random words": {"color": "#999999", "linestyle": "--", "marker": "x"},
    "ground-truth captions": {"color": "#3a9a5b", "linestyle": ":"},
}


def layer_key(layer) -> tuple:
    """Numeric layers in order, other names after them, ``final`` last."""
    s = str(layer)
    if s.isdigit():
        return (0, int(s), s)
    return (2 if s == "final" else 1, 0, s)


def _finite(values) -> bool:
    return any(v is not None and math.isfinite(v) for v in values)


def line_panels(x_labels: list[str], panels: list[tuple[str, dict[str, list]]], xlabel: str) -> str | None:
    """One subplot per (title, {series label: y values}); None values leave gaps.

    The x axis is categorical so ``final`` can sit after the numeric layers.
    Returns a PNG data URI, or None when no panel has a value to draw.
    """
    panels = [(title, {k: v for k, v in series.items() if _finite(v)}) for title, series in panels]
    panels = [(title, series) for title, series in panels if series]
    if not panels:
        return None
    # Sized to fit the page's ~1190 px column at 100 dpi, legend included, without rescaling.
    width = min(3.3, 10.2 / len(panels))
    fig = Figure(figsize=(width * len(panels) + 1.6, 2.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    xs = list(range(len(x_labels)))
    for ax, (title, series) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for label, ys in series.items():
            ys = [math.nan if y is None else y for y in ys]
            ax.plot(xs, ys, label=label, markersize=4, **STYLES.get(label, {"marker": "o"}))
        ax.set_title(title, fontsize=10)
        ax.set_xticks(xs, x_labels, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.grid(alpha=0.3)
    # One legend for all panels, outside them, so it never hides a line.
    handles = {h.get_label(): h for ax in fig.axes for h in ax.get_lines()}
    if len(handles) > 1:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return data_uri(buf.getvalue(), "image/png")


def scatter_panels(panels: list[tuple[str, list[float | None], list[float | None]]], xlabel: str, ylabel: str) -> str | None:
    """One scatter subplot per (title, xs, ys); pairs with a missing value are left out."""
    drawn = []
    for title, xs, ys in panels:
        pairs = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
        if pairs:
            drawn.append((title, pairs))
    if not drawn:
        return None
    width = min(3.3, 10.2 / len(drawn))
    fig = Figure(figsize=(width * len(drawn) + 0.6, 2.7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (title, pairs) in zip(fig.subplots(1, len(drawn), squeeze=False)[0], drawn):
        ax.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=14, color="#1f5fa8")
        ax.axhline(0, color="#999999", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return data_uri(buf.getvalue(), "image/png")
