"""Gather every layer, method and K of one model and word into one self-contained HTML file."""

from __future__ import annotations

import math

from mmconcepts.report.images import Thumbnails
from mmconcepts.report.plots import layer_key, line_panels
from mmconcepts.report.tables import fmt, lookup, metric_table, parse_figure, recovery_rows
from mmconcepts.report.templates import write_page

CARD_METHOD = "snmf"  # the paper's dictionary; the other methods are baselines shown in the tables
N_TEST_IMAGES = 8
N_HEAD_WORDS = 5  # the words a reader sees first; the rest are shown lighter
COUNT_LABELS = {
    "images_seen": "images seen",
    "in_prediction": "word in generated caption",
    "in_ground_truth": "word in ground-truth captions",
    "kept": "kept",
    "skipped_images": "skipped (unreadable image)",
}


def _activation(x) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) and math.isfinite(x) else "—"


def _histogram(hist: dict | None) -> dict | None:
    """Bars on a log scale: sparse codes put most samples in the zero bin and would flatten the rest."""
    if not hist or not hist.get("counts"):
        return None
    counts, edges = hist["counts"], hist["edges"]
    top = math.log1p(max(counts)) or 1.0
    bars = [
        {"height": 100 * math.log1p(c) / top, "title": f"{edges[i]:.3g} to {edges[i + 1]:.3g}: {c} samples"}
        for i, c in enumerate(counts)
    ]
    return {"bars": bars, "low": _activation(edges[0]), "high": _activation(edges[-1])}


def _image(sample: dict, thumbs: Thumbnails) -> dict:
    return {"src": thumbs(sample["image"]), "path": sample["image"], "id": sample.get("id"), "caption": sample.get("caption", "")}


def _card(concept: dict, k: int, thumbs: Thumbnails) -> dict:
    words = concept.get("words", [])
    return {
        "anchor": f"k{k}-c{concept['index']}",
        "index": concept["index"],
        "head": ", ".join(words[:N_HEAD_WORDS]),
        "tail": ", ".join(words[N_HEAD_WORDS:]),
        "frequency": concept.get("frequency"),
        "mas": [_image(m, thumbs) | {"activation": _activation(m.get("activation"))} for m in concept.get("mas", [])],
        "histogram": _histogram(concept.get("histogram")),
    }


def _test_images(grounding: dict, k: int, thumbs: Thumbnails) -> list[dict]:
    """A few test images spread evenly over the split, each with its most activated concepts."""
    tests = grounding.get("test", [])
    m = min(N_TEST_IMAGES, len(tests))
    words = {c["index"]: c.get("words", []) for c in grounding.get("concepts", [])}
    out = []
    for t in (tests[i * len(tests) // m] for i in range(m)):
        top = [
            {
                "anchor": f"k{k}-c{c['concept']}",
                "concept": c["concept"],
                "words": ", ".join(words.get(c["concept"], [])[:3]),
                "activation": _activation(c.get("activation")),
            }
            for c in t.get("top", [])
        ]
        out.append(_image(t, thumbs) | {"top": top})
    return out


def _series(runs: list[dict | None], path: tuple) -> list[float | None]:
    return [parse_figure(lookup(r, path))[0] if r else None for r in runs]


def _plots(index: dict, layers: list[str], ks: list[int], focus_layer: str, focus_k: int) -> dict:
    """snmf's scores against the layer (at the focus K) and against K (at the focus layer)."""

    def panels(runs, extra):
        clip = {
            CARD_METHOD: _series(runs, ("clipscore", "top1")),
            "random words": _series(runs, ("random_words", "clipscore", "top1")),
            "ground-truth captions": _series(runs, ("ground_truth", "clipscore")),
        }
        bert = {
            CARD_METHOD: _series(runs, ("bertscore", "top1")),
            "random words": _series(runs, ("random_words", "bertscore", "top1")),
        }
        own = [(title, {CARD_METHOD: _series(runs, path)}) for title, path in extra]
        return [("CLIPScore top-1", clip), ("BERTScore top-1", bert), *own]

    plots = {"layer": None, "k": None}
    if len(layers) > 1:
        runs = [index.get((layer, CARD_METHOD, focus_k), {}).get("metrics") for layer in layers]
        plots["layer"] = line_panels(layers, panels(runs, [("Recovery AUROC", ("recovery",))]), "layer")
    if len(ks) > 1:
        runs = [index.get((focus_layer, CARD_METHOD, k), {}).get("metrics") for k in ks]
        extra = [("Overlap (lower is better)", ("overlap",)), ("Recovery AUROC", ("recovery",))]
        plots["k"] = line_panels([str(k) for k in ks], panels(runs, extra), "K")
    return plots


def render_report(out_path, *, header: dict, entries: list[dict], focus: dict) -> None:
    """Write the report of one model and word to ``out_path`` (atomically).

    header: model, dataset, token, counts {train, test}, layers, methods, ks, version (no date:
    the same inputs give the same file).
    entries: one {layer, method, k, grounding, metrics} per run. focus: {layer, k}, whose
    snmf concepts get cards (every K at that layer), test images and recovery table.
    """
    thumbs = Thumbnails()
    index = {(str(e["layer"]), e["method"], int(e["k"])): e for e in entries}
    layers = sorted({str(x) for x in header.get("layers", [])} | {key[0] for key in index}, key=layer_key)
    ks = sorted({int(x) for x in header.get("ks", [])} | {key[2] for key in index})
    methods = list(dict.fromkeys([*header.get("methods", []), *(key[1] for key in index)]))
    focus_layer, focus_k = str(focus["layer"]), int(focus["k"])
    notes = []

    card_groups = []
    for k in ks:
        run = index.get((focus_layer, CARD_METHOD, k))
        if run:
            concepts = run["grounding"].get("concepts", [])
            card_groups.append({"k": k, "cards": [_card(c, k, thumbs) for c in concepts]})
    if not card_groups:
        notes.append(f"No {CARD_METHOD} dictionary at layer {focus_layer}: no concept cards.")

    focus_run = index.get((focus_layer, CARD_METHOD, focus_k))
    tests = _test_images(focus_run["grounding"], focus_k, thumbs) if focus_run else []
    recovery = lookup(focus_run, ("metrics", "recovery")) if focus_run else None
    recovery_table = (
        {
            "mean": fmt(parse_figure(recovery)[0]),
            "probe_mean": fmt(parse_figure(recovery.get("probe_mean"))[0]),
            "rows": recovery_rows(recovery, focus_run["grounding"].get("concepts", [])),
        }
        if recovery
        else None
    )

    tables = []
    for layer in layers:
        for k in ks:
            by_method = {m: index[(layer, m, k)]["metrics"] for m in methods if (layer, m, k) in index}
            if by_method:
                focused = (layer, k) == (focus_layer, focus_k)
                tables.append({"layer": layer, "k": k, "focus": focused, **metric_table(by_method)})

    if thumbs.missing_note():
        notes.append(thumbs.missing_note())

    write_page(
        out_path,
        "concepts.html.jinja2",
        header=header,
        layers=layers,
        ks=ks,
        methods=methods,
        focus_layer=focus_layer,
        focus_k=focus_k,
        count_labels=COUNT_LABELS,
        notes=notes,
        card_groups=card_groups,
        tests=tests,
        tables=tables,
        recovery=recovery_table,
        plots=_plots(index, layers, ks, focus_layer, focus_k),
    )
