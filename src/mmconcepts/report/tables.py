"""Metric tables: every method side by side at one layer and K, the best value per column in bold.

A figure a method's metrics.json lacks (one that means nothing for that method) shows as "—"
and takes no part in choosing the column's best.
"""

from __future__ import annotations

import math

DECIMALS = 3

# (group, sub-label, path into metrics.json, lower is better); a group spans its consecutive columns.
# "{r}" in a sub-label is the number of concepts read per image, from metrics.json.
COLUMNS = (
    ("CLIPScore ↑", "top-1", ("clipscore", "top1"), False),
    ("CLIPScore ↑", "top-{r}", ("clipscore", "top_r"), False),
    ("BERTScore ↑", "top-1", ("bertscore", "top1"), False),
    ("BERTScore ↑", "top-{r}", ("bertscore", "top_r"), False),
    ("Overlap ↓", "", ("overlap",), True),
    ("Reconstruction ↓", "", ("reconstruction",), True),
    ("Sparsity ↑", "", ("sparsity",), False),
    ("Recovery ↑", "AUROC", ("recovery",), False),
)
REFERENCE_METHOD = "snmf"  # whose test images the random-words control is scored on


def lookup(d, path):
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def parse_figure(value) -> tuple[float | None, float | None]:
    """A figure of metrics.json, either a bare number or {"mean", "std"}; (None, None) when absent."""
    if isinstance(value, dict):
        value, std = value.get("mean"), value.get("std")
    else:
        std = None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, None
    return float(value), (float(std) if isinstance(std, (int, float)) and math.isfinite(std) else None)


def fmt(mean: float | None) -> str:
    return "—" if mean is None else f"{mean:.{DECIMALS}f}"


def best_flags(values: list[float | None], lower_is_better: bool) -> list[bool]:
    """Which values are the column's best as shown (ties all count); none when fewer than two compete."""
    shown = [None if v is None else round(v, DECIMALS) for v in values]
    present = [v for v in shown if v is not None]
    if len(present) < 2:
        return [False] * len(values)
    best = min(present) if lower_is_better else max(present)
    return [v == best for v in shown]


def _cell(figure: tuple[float | None, float | None], bold: bool = False, span: int = 1) -> dict:
    mean, std = figure
    return {"mean": fmt(mean), "std": None if std is None else fmt(std), "bold": bold, "span": span}


def _header() -> list[dict]:
    """Two header rows: groups over their columns; a group without sub-labels spans both rows."""
    groups = []
    for group, sub, _, _ in COLUMNS:
        if groups and groups[-1]["label"] == group:
            groups[-1]["span"] += 1
            groups[-1]["rows"] = 1
        else:
            groups.append({"label": group, "span": 1, "rows": 1 if sub else 2})
    return groups


def _r_label(by_method: dict[str, dict]) -> str:
    """The r of the top-r columns, or "r" when the methods' metrics.json do not agree on one."""
    rs = {lookup(metrics, ("clipscore", "r")) for metrics in by_method.values()} - {None}
    return str(rs.pop()) if len(rs) == 1 else "r"


def metric_table(by_method: dict[str, dict]) -> dict:
    """Rows: each method's metrics.json (in the given order), then the reference rows that apply."""
    figures = {m: [parse_figure(lookup(metrics, path)) for _, _, path, _ in COLUMNS] for m, metrics in by_method.items()}
    flags = [best_flags([figures[m][j][0] for m in by_method], lower) for j, (_, _, _, lower) in enumerate(COLUMNS)]
    rows = [
        {"label": m, "kind": "method", "cells": [_cell(f, flags[j][i]) for j, f in enumerate(figures[m])]}
        for i, m in enumerate(by_method)
    ]
    reference = by_method.get(REFERENCE_METHOD) or next(iter(by_method.values()), {})
    rnd = reference.get("random_words")
    if rnd:
        cells = [_cell(parse_figure(lookup(rnd, path))) for _, _, path, _ in COLUMNS]
        rows.append({"label": "random words", "kind": "reference", "cells": cells})
    gt = parse_figure(lookup(reference, ("ground_truth", "clipscore")))
    if gt[0] is not None:
        # One score per image, so it stands for both CLIPScore columns.
        cells = [_cell(gt, span=2), *(_cell((None, None)) for _ in COLUMNS[2:])]
        rows.append({"label": "ground-truth captions", "kind": "reference", "cells": cells})
    r = _r_label(by_method)
    return {"groups": _header(), "subs": [sub.format(r=r) for _, sub, _, _ in COLUMNS if sub], "rows": rows}


def recovery_rows(recovery: dict, concepts: list[dict]) -> list[dict]:
    """The per-factor table, each best concept named by its first words, beside the linear probe."""
    words = {c["index"]: c.get("words", []) for c in concepts}
    rows = []
    for r in recovery.get("table", []):
        auroc = parse_figure(r.get("auroc"))[0]
        rows.append(
            {
                "factor": r.get("factor"),
                "value": r.get("value"),
                "n_positive": r.get("n_positive"),
                "auroc": fmt(auroc),
                "auroc_pct": 0.0 if auroc is None else max(0.0, min(100.0, 100 * auroc)),
                "probe": fmt(parse_figure(r.get("probe_auroc"))[0]),
                "concept": r.get("concept"),
                "words": ", ".join(words.get(r.get("concept"), [])[:4]),
            }
        )
    return rows
