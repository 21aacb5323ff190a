"""An entry's CLIPs side by side: per model and method the figures, across models the paper's claim.

The claim (Sammani & Deligiannis, Table 3): within one architecture family, the AUC of the MI
dynamics rises with zero-shot top-1. It is read over the models that are not controls (a control,
such as random weights, is shown but left out of the correlation). Where the set knows its truth
(the shapes world), the checks of the planted gap, the random control and the foreground are made
here, each with the threshold it is read against.
"""

from __future__ import annotations

from pathlib import Path

from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.information import correlations

MIN_SPEARMAN = 0.8  # the paper reports 1.0 over its seven ViTs
MIN_FOREGROUND_IOU = 0.5
FIGURES = ("mi", "auc", "deletion", "insertion", "acc_drop", "acc_inc", "dv_size", "mutual_size", "assignment_entropy")


def load_runs(run_dirs: list[str]) -> list[dict]:
    """Each run folder's ``<method>/mi.json``, as ``{"model", "methods": {method: mi.json}}``."""
    runs = []
    for folder in map(Path, run_dirs):
        methods = {p.parent.name: read_json(p, "mutual result") for p in sorted(folder.glob("*/mi.json"))}
        if not methods:
            raise MMConceptsError(f"{folder}: no <method>/mi.json (not a mutual job's output)")
        first = next(iter(methods.values()))
        runs.append({"model": first["model"], "folder": str(folder), "methods": methods})
    return runs


def _checks(models: list[dict], methods: list[str], correlation: dict, foreground: str) -> dict:
    """The checks against the truth; ``foreground`` is the entry's setting (under ``truth`` the foreground
    is the true object, so there is nothing to check there)."""
    trained = [m for m in models if not m["control"]]
    controls = [m for m in models if m["control"]]
    checks = {}
    checks["spearman"] = {
        method: {"value": correlation[method]["spearman"], "threshold": MIN_SPEARMAN,
                 "holds": correlation[method]["spearman"] is not None and correlation[method]["spearman"] >= MIN_SPEARMAN}
        for method in methods
    }  # fmt: skip
    if controls and trained:
        checks["control_auc"] = {
            method: {
                "control_max": max(m["methods"][method]["auc"] for m in controls),
                "trained_min": min(m["methods"][method]["auc"] for m in trained),
                "trained_mean": sum(m["methods"][method]["auc"] for m in trained) / len(trained),
            }
            for method in methods
        }
        for c in checks["control_auc"].values():
            c["holds"] = c["control_max"] < c["trained_min"]
    gapped = [m for m in trained if m["gap"] and m["methods"][methods[0]].get("truth")]
    if gapped:
        gap = {}
        for method in methods:
            mutual_images = {m["model"]: m["methods"][method]["truth"]["gap"]["mutual_images"] for m in gapped}
            others = {m["model"]: m["methods"][method]["truth"]["gap"]["others_mutual"] for m in gapped}
            gap[method] = {
                "attribute": gapped[0]["gap"],
                "mutual_images": mutual_images,
                "others_mutual": others,
                "holds": all(v == 0 for v in mutual_images.values()) and all(any(x > 0 for x in o.values()) for o in others.values()),
            }
        checks["gap"] = gap
    with_fg = [m for m in models if m["foreground"]]
    if with_fg and foreground != "truth":
        ious = {m["model"]: m["foreground"]["iou_mean"] for m in with_fg}
        corlocs = {m["model"]: m["foreground"]["corloc"] for m in with_fg}
        best = max(trained or with_fg, key=lambda m: m["top1"])
        checks["foreground"] = {
            "iou_mean": ious,
            "corloc": corlocs,
            "iou_ceiling": {m["model"]: m["foreground"]["iou_ceiling"] for m in with_fg},
            "without_foreground": {m["model"]: m["foreground"]["without_foreground"] for m in with_fg},
            "model": best["model"],
            "threshold": MIN_FOREGROUND_IOU,
            "holds": (best["foreground"] or {}).get("iou_mean", 0) >= MIN_FOREGROUND_IOU,
        }
    return checks


def summarise(name: str, run_dirs: list[str]) -> dict:
    runs = load_runs(run_dirs)
    methods = list(runs[0]["methods"])
    models = []
    for run in runs:
        first = run["methods"][methods[0]]
        models.append({
            "model": run["model"],
            "folder": run["folder"],
            "control": first["control"],
            "gap": first["gap"],
            "top1": first["top1"],
            "foreground": first["foreground"],
            "methods": {m: {**{k: r[k] for k in FIGURES}, "truth": r["truth"]} for m, r in run["methods"].items()},
        })  # fmt: skip
    trained = [m for m in models if not m["control"]]
    correlation = {
        method: correlations([m["methods"][method]["auc"] for m in trained], [m["top1"] for m in trained]) for method in methods
    }
    return {
        "entry": name,
        "methods": methods,
        "images": runs[0]["methods"][methods[0]]["images"],
        "classes": runs[0]["methods"][methods[0]]["classes"],
        "settings": runs[0]["methods"][methods[0]]["settings"],
        "models": models,
        "auc_vs_top1": correlation,
        "checks": _checks(models, methods, correlation, runs[0]["methods"][methods[0]]["settings"]["foreground"]),
    }
