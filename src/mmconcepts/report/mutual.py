"""The mutual-knowledge report: an entry's CLIPs side by side, the checks against the truth, examples.

It reads summary.json (``mmconcepts.mutual.summary.summarise``) and, through each model's run
``folder``, the files a ``mutual`` job wrote: ``<method>/curves.npz`` for the MI, Deletion and
Insertion curves, and for the best trained model ``<method>/regions.npz``, ``explanations.jsonl``
and ``mi.json`` (the descriptor bank the explanations' ids point into). The page is one file:
plots and images are embedded as data URIs, and every descriptor is escaped by the template.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from mmconcepts import __version__
from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb
from mmconcepts.report.images import Thumbnails, data_uri
from mmconcepts.report.tables import best_flags, fmt
from mmconcepts.report.templates import write_page

N_EXAMPLES = 6
OVERLAY_PX = 160
OVERLAY_ALPHA = 0.45
LISTED_CLASSES = 12
# A fixed colour per concept id (id modulo the palette), the same in the overlays and the swatches.
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#808000")
MODEL_COLOURS = ("#1f5fa8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
CONTROL_STYLE = {"color": "#888888", "linestyle": "--", "marker": "x"}
# (key in summary's per-method figures, column label, lower is better; None: no better direction)
COLUMNS = (
    ("mi", "MI (t = 0)", False),
    ("auc", "AUC", False),
    ("deletion", "Deletion ↓", True),
    ("insertion", "Insertion ↑", False),
    ("acc_drop", "AccDrop ↓", True),
    ("acc_inc", "AccInc ↑", False),
    ("dv_size", "|D_v|", None),
    ("mutual_size", "|mutual|", None),
    ("assignment_entropy", "OT entropy", None),
)


# ---------------------------------------------------------------- reading the runs


def _npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of a run's .npz; a missing file or key is an error naming it."""
    try:
        with np.load(path) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise MMConceptsError(f"{path}: no {', '.join(missing)} (not a mutual job's output)")
            return {k: z[k] for k in keys}
    except (OSError, ValueError) as e:
        raise MMConceptsError(f"{path}: cannot read the mutual job's arrays ({e})") from None


def _explanations(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise MMConceptsError(f"{path}: cannot read the explanations ({e})") from None


def _curves(summary: dict) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Per method and model: the mean MI curve and the Deletion / Insertion curves averaged over images."""
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for method in summary["methods"]:
        out[method] = {}
        for m in summary["models"]:
            z = _npz(Path(m["folder"]) / method / "curves.npz", ("mi_mean", "deletion", "insertion"))
            out[method][m["model"]] = {"mi": z["mi_mean"], "deletion": z["deletion"].mean(0), "insertion": z["insertion"].mean(0)}
    return out


# ---------------------------------------------------------------- plots


def _model_styles(models: list[dict]) -> dict[str, dict]:
    """One style per model in every plot: trained models in colour, controls grey, dashed, crossed."""
    styles, i = {}, 0
    for m in models:
        if m["control"]:
            styles[m["model"]] = dict(CONTROL_STYLE)
        else:
            styles[m["model"]] = {"color": MODEL_COLOURS[i % len(MODEL_COLOURS)], "marker": "o"}
            i += 1
    return styles


def _label(model: dict) -> str:
    return f"{model['model']} (control)" if model["control"] else model["model"]


def _figure(n_panels: int, legend: bool) -> tuple[Figure, list]:
    # Sized like plots.line_panels: the page's ~1190 px column at 100 dpi, legend included.
    width = min(3.3, 10.2 / n_panels)
    fig = Figure(figsize=(width * n_panels + (1.8 if legend else 0.6), 2.7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, n_panels, squeeze=False)[0])


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return data_uri(buf.getvalue(), "image/png")


def _axes_style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def _auc_plot(summary: dict, styles: dict[str, dict]) -> str:
    """AUC against top-1, one panel per method, each model a labelled point (controls grey crosses)."""
    methods = summary["methods"]
    fig, axes = _figure(len(methods), legend=False)
    for ax, method in zip(axes, methods):
        for m in summary["models"]:
            s = styles[m["model"]]
            x, y = m["top1"], m["methods"][method]["auc"]
            ax.scatter([x], [y], s=22, color=s["color"], marker=s["marker"])
            ax.annotate(m["model"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color=s["color"])
        c = summary["auc_vs_top1"][method]
        _axes_style(ax, f"{method}: Pearson {fmt(c['pearson'])}, Spearman {fmt(c['spearman'])}", "zero-shot top-1", "AUC")
    return _png(fig)


def _line_plot(panels: list[tuple[str, dict[str, np.ndarray]]], models: list[dict], styles: dict, xlabel: str, ylabel: str) -> str:
    """One panel per (title, {model: curve}), the x axis the curve's step; one legend beside the panels."""
    fig, axes = _figure(len(panels), legend=True)
    labels = {m["model"]: _label(m) for m in models}
    for ax, (title, curves) in zip(axes, panels):
        for model, ys in curves.items():
            ax.plot(np.arange(len(ys)), ys, label=labels[model], markersize=3, linewidth=1.5, **styles[model])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _axes_style(ax, title, xlabel, ylabel)
    handles = {h.get_label(): h for h in axes[0].get_lines()}
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=8, frameon=False)
    return _png(fig)


def _plots(summary: dict, curves: dict, styles: dict) -> dict[str, str]:
    models, methods = summary["models"], summary["methods"]

    def panels(kind: str):
        titles = {method: method if kind == "mi" else f"{method}: {kind}" for method in methods}
        return [(titles[method], {m["model"]: curves[method][m["model"]][kind] for m in models}) for method in methods]

    return {
        "auc": _auc_plot(summary, styles),
        "mi": _line_plot(panels("mi"), models, styles, "t (descriptors of D_v dropped)", "mean MI"),
        "deletion": _line_plot(panels("deletion"), models, styles, "concepts blurred out", "class score 2.5·cos"),
        "insertion": _line_plot(panels("insertion"), models, styles, "concepts blurred in", "class score 2.5·cos"),
    }


# ---------------------------------------------------------------- the table


def _table(summary: dict) -> list[dict]:
    """One row per method and model; per method and column the best trained model's value is flagged."""
    rows = []
    for method in summary["methods"]:
        models = summary["models"]
        flags = {}
        for key, _, lower in COLUMNS:
            values = [None if m["control"] else m["methods"][method][key] for m in models]
            flags[key] = best_flags(values, lower) if lower is not None else [False] * len(models)
        for i, m in enumerate(models):
            cells = [{"value": fmt(m["methods"][method][key]), "best": flags[key][i]} for key, _, _ in COLUMNS]
            rows.append({"method": method, "model": m["model"], "control": m["control"], "top1": fmt(m["top1"]), "cells": cells})
    return rows


# ---------------------------------------------------------------- the checks


def _name(model: str, controls: set[str]) -> str:
    return f"{model} (control)" if model in controls else model


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _spearman_check(summary: dict, check: dict) -> dict:
    lines = []
    for method, c in check.items():
        corr = summary["auc_vs_top1"][method]
        measured = (
            f"ρ = {fmt(c['value'])} (Pearson r = {fmt(corr['pearson'])})"
            if c["value"] is not None
            else "ρ undefined (fewer than 3 trained models, or all alike)"
        )
        text = f"{measured} over {corr['n']} trained models; needed ≥ {c['threshold']:g}"
        lines.append({"label": method, "text": text, "holds": c["holds"]})
    return {
        "id": "check-spearman",
        "title": "AUC rises with top-1",
        "rule": f"Across the trained models, the Spearman correlation of the MI dynamics' AUC with zero-shot top-1 is at least "
        f"{next(iter(check.values()))['threshold']:g} (the paper's seven ViTs give 1.0), per method.",
        "lines": lines,
    }


def _control_check(summary: dict, check: dict) -> dict:
    controls = [m["model"] for m in summary["models"] if m["control"]]
    lines = [
        {
            "label": method,
            "text": f"control AUC {fmt(c['control_max'])} against the trained models' lowest {fmt(c['trained_min'])} "
            f"(mean {fmt(c['trained_mean'])}); needed: below",
            "holds": c["holds"],
        }
        for method, c in check.items()
    ]
    return {
        "id": "check-control",
        "title": "The random-weight control shares less",
        "rule": f"The control's AUC ({', '.join(controls)}; the largest if several) is below every trained model's, per method.",
        "lines": lines,
    }


def _gap_check(summary: dict, check: dict) -> dict:
    n, first = summary["images"], next(iter(check.values()))
    attribute = first["attribute"]
    lines = []
    for method, c in check.items():
        gapped = [model for model, k in c["mutual_images"].items() if k]
        silent = [model for model, o in c["others_mutual"].items() if not any(v > 0 for v in o.values())]
        seen = f"mutual in {len(gapped)} of {len(c['mutual_images'])} trained models" + (f" ({', '.join(gapped)})" if gapped else "")
        others = f"no other attribute mutual in {', '.join(silent)}" if silent else "another attribute mutual in every one"
        lines.append({"label": method, "text": f"{attribute} {seen}; {others}", "holds": c["holds"]})
    head = ["model", "method", f"images with a {attribute} descriptor mutual", "other attributes: share of images with one mutual"]
    rows = [
        [model, method, f"{c['mutual_images'][model]} of {n}", ", ".join(f"{a} {_pct(v)}" for a, v in c["others_mutual"][model].items())]
        for model in first["mutual_images"]
        for method, c in check.items()
    ]
    return {
        "id": "check-gap",
        "title": f"The planted gap ({attribute}) is never mutual",
        "rule": f"No training caption named the {attribute}, so the language encoder cannot know its descriptors: a {attribute} "
        f"descriptor may be seen (in D_v) but must never be mutual, in any image, while the other attributes are mutual in some.",
        "lines": lines,
        "table": {"head": head, "rows": rows},
    }


# how the entry's foreground settings found the patches, in words (under truth there is no check)
SPLIT_WORDS = {"gram": "second singular vector", "centred": "first singular vector, after centring,"}
SCOPE_WORDS = {"class": "of a class's stacked tokens", "image": "of each image's own tokens"}


def foreground_rule(settings: dict) -> str:
    """The foreground's rule in words, e.g. "second singular vector of a class's stacked tokens, largest component".
    A summary written before ``affinity`` existed used the paper's f fᵀ."""
    split = SPLIT_WORDS[settings.get("affinity", "gram")]
    return f"{split} {SCOPE_WORDS[settings['foreground']]}, largest component"


def _foreground_check(summary: dict, check: dict) -> dict:
    best = check["model"]
    iou, corloc, threshold = check["iou_mean"][best], check["corloc"][best], check["threshold"]
    controls = {m["model"] for m in summary["models"] if m["control"]}
    columns = ("iou_mean", "iou_ceiling", "corloc", "without_foreground")
    rows = [[_name(model, controls), *(fmt(check[c][model]) for c in columns)] for model in check["iou_mean"]]
    text = (f"mean IoU {fmt(iou)} (best possible at this patch grid {fmt(check['iou_ceiling'][best])}), CorLoc {fmt(corloc)}, "
            f"images without foreground {fmt(check['without_foreground'][best])}; needed ≥ {threshold:g}")  # fmt: skip
    return {
        "id": "check-foreground",
        "title": "The foreground finds the objects",
        "rule": f"The foreground patches ({foreground_rule(summary['settings'])}) of the best trained model overlap the true object "
        f"masks with a mean IoU of at least {threshold:g}. Beside it: the mean IoU of the best mask of whole patches (no patch-level "
        f"foreground can do better), CorLoc (the share of images whose foreground box has IoU ≥ 0.5 with the object's box), and the "
        f"share of images with no foreground patch at all (no concept, no D_v, an MI of 0).",
        "lines": [{"label": best, "text": text, "holds": check["holds"]}],
        "table": {"head": ["model", "mean IoU", "best possible", "CorLoc", "no foreground"], "rows": rows},
    }


def _checks(summary: dict) -> list[dict]:
    """The summary's checks as the page states them: the rule, per method the measured value, holds or not."""
    makers = (("spearman", _spearman_check), ("control_auc", _control_check), ("gap", _gap_check), ("foreground", _foreground_check))
    out = []
    for key, make in makers:
        check = summary.get("checks", {}).get(key)
        if check:
            shown = make(summary, check)
            shown.setdefault("table", None)
            shown["holds"] = all(line["holds"] for line in shown["lines"])
            out.append(shown)
    return out


# ---------------------------------------------------------------- examples


def _overlay(path: str, grid: np.ndarray, size: int) -> str | None:
    """The image (longest side ``size``) with each concept's patches tinted its colour; None when unreadable."""
    im = open_rgb(path)
    if im is None:
        return None
    scale = size / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
    shifted = Image.fromarray((np.asarray(grid, dtype=np.int16) + 1).astype(np.uint8), "L")  # background −1 → 0
    ids = np.asarray(shifted.resize(im.size, Image.Resampling.NEAREST))
    lut = np.zeros((256, 3))
    for c in range(255):
        lut[c + 1] = [int(PALETTE[c % len(PALETTE)][j : j + 2], 16) for j in (1, 3, 5)]
    rgb = np.asarray(im, dtype=np.float64)
    alpha = np.where(ids > 0, OVERLAY_ALPHA, 0.0)[..., None]
    out = Image.fromarray(np.round(rgb * (1 - alpha) + lut[ids] * alpha).astype(np.uint8))
    png, jpeg = io.BytesIO(), io.BytesIO()
    out.save(png, format="PNG", optimize=True)
    out.save(jpeg, format="JPEG", quality=85, optimize=True)
    return data_uri(png.getvalue(), "image/png") if png.tell() <= jpeg.tell() else data_uri(jpeg.getvalue(), "image/jpeg")


class Overlays(Thumbnails):
    """Images with a method's concept regions over them; unreadable files are recorded as Thumbnails does."""

    def overlay(self, path: str, grid: np.ndarray) -> str | None:
        uri = _overlay(path, grid, self.size)
        if uri is None and path not in self.missing:
            self.missing.append(path)
        return uri


def best_model(models: list[dict]) -> dict:
    """The trained model of highest top-1 (the first on a tie); all models compete when every one is a control."""
    return max([m for m in models if not m["control"]] or models, key=lambda m: m["top1"])


def pick_examples(explanations: list[dict], n: int = N_EXAMPLES) -> list[int]:
    """Up to n image indices spread over the true classes (round robin, file order within a class), in file order."""
    queues: dict[str, list[int]] = {}
    for i, e in enumerate(explanations):
        queues.setdefault(e["label"], []).append(i)
    picked: list[int] = []
    while len(picked) < n and any(queues.values()):
        for q in queues.values():
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return sorted(picked)


def _descriptor_names(descriptors: list[str], ids, mutual: set[int], where: Path) -> list[dict]:
    out = []
    for d in ids:
        if not 0 <= d < len(descriptors):
            raise MMConceptsError(f"{where}: descriptor id {d} is outside the bank of {len(descriptors)} (mi.json)")
        out.append({"text": descriptors[d], "mutual": d in mutual})
    return out


def _example(e: dict, grid: np.ndarray, descriptors: list[str], overlays: Overlays, where: Path) -> dict:
    mutual = set(e["mutual"])
    per_concept = dict(zip(e["concepts"], e["per_concept"]))
    concepts = [
        {"id": c, "colour": c % len(PALETTE), "descriptors": _descriptor_names(descriptors, per_concept.get(c, []), mutual, where)}
        for c in e.get("order") or e["concepts"]
    ]
    return {
        "path": e["image"],
        "src": overlays.overlay(e["image"], grid),
        "label": e["label"],
        "predicted": e["predicted"],
        "correct": e["label"] == e["predicted"],
        "mi": fmt(e["mi"]),
        "concepts": concepts,
        "dy": _descriptor_names(descriptors, e["dy"], mutual, where),
        "mutual": [descriptors[d] for d in e["mutual"]],
    }


def _examples(model: dict, method: str, overlays: Overlays) -> dict:
    """A few explained images of one model and method: overlay, concepts' descriptors, D_ŷ, the mutual ones."""
    folder = Path(model["folder"]) / method
    descriptors = read_json(folder / "mi.json", "mutual result")["descriptors"]
    explanations = _explanations(folder / "explanations.jsonl")
    grids = _npz(folder / "regions.npz", ("concepts",))["concepts"]
    if len(grids) != len(explanations):
        raise MMConceptsError(f"{folder}: regions.npz has {len(grids)} images but explanations.jsonl {len(explanations)}")
    shown = [_example(explanations[i], grids[i], descriptors, overlays, folder / "explanations.jsonl") for i in pick_examples(explanations)]
    return {"method": method, "examples": shown, "n_descriptors": len(descriptors)}


# ---------------------------------------------------------------- the page


def _settings(s: dict) -> list[tuple[str, str]]:
    relevance = (
        f"relevance > mean − {s['offset']:g} (the authors' code)"
        if s["relevance"] == "mean"
        else f"relevance > median + {s['offset']:g} (the paper's text)"
    )
    ot = f"on (Sinkhorn on exp({s['ot_scale']:g}·Ĉ), reg {s['ot_reg']:g}, {s['ot_iterations']} iterations)" if s["ot"] else "off"
    score = "log(N·u·m) when m ≥ 1 (the authors' code)" if s["score"] == "code" else "Eq. (1) taken literally"
    foreground = "the best mask of whole patches of each true object (a control)" if s["foreground"] == "truth" else foreground_rule(s)
    rows = [
        ("foreground", foreground),
        ("concepts per class", f"{s['n_concepts']}, {s['per_concept']} descriptors each (|D_v| ≤ {s['n_concepts'] * s['per_concept']})"),
        ("candidates", f"top-{s['top_k']} per concept, intersected; {relevance}"),
        ("optimal transport", ot),
        ("language side", f"u = {s['u']} descriptors nearest the predicted class"),
        ("MI score", f"{score}; curves zero-padded to {s['curve_length']}"),
    ]
    if "perturbation_blur" in s:  # absent from summaries written before the setting existed
        blur = s["perturbation_blur"]
        rows.append(("Deletion / Insertion", f"concepts blurred by a Gaussian of σ = {blur:g} × the image's shorter side"))
    return rows


def _classes(classes: list[str]) -> str:
    shown = ", ".join(classes[:LISTED_CLASSES])
    return f"{len(classes)}: {shown}" + (" …" if len(classes) > LISTED_CLASSES else "")


def render_mutual_report(out_path, summary: dict) -> None:
    """Write the entry's report (atomically) from its summary and the run folders the summary names."""
    if not summary.get("models"):
        raise MMConceptsError(f"mutual report {summary.get('entry')}: no models in the summary")
    styles = _model_styles(summary["models"])
    plots = _plots(summary, _curves(summary), styles)
    best = best_model(summary["models"])
    overlays = Overlays(OVERLAY_PX)
    examples = [_examples(best, method, overlays) for method in summary["methods"]]
    write_page(
        out_path,
        "mutual.html.jinja2",
        summary=summary,
        entry=summary["entry"],
        classes=_classes(summary["classes"]),
        settings=_settings(summary["settings"]),
        checks=_checks(summary),
        columns=[label for _, label, _ in COLUMNS],
        rows=_table(summary),
        plots=plots,
        best=best,
        examples=examples,
        palette=PALETTE,
        fmt=fmt,
        notes=[overlays.missing_note()] if overlays.missing else [],
        version=__version__,
    )
