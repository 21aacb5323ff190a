"""The shift report: how fine-tuning moved the concepts of a word, every layer of one analysis."""

from __future__ import annotations

from mmconcepts import __version__
from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError
from mmconcepts.report.images import Thumbnails
from mmconcepts.report.plots import layer_key, scatter_panels
from mmconcepts.report.tables import fmt
from mmconcepts.report.templates import write_page


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _summary_row(run: dict) -> dict:
    s, t = run["summary"], run.get("truth") or {}
    return {
        "layer": run["layer"],
        "k": run["k"],
        "n_common": run["n_common"],
        "concepts": s["concepts_with_samples"],
        "cos_positive": _pct(s["improved_cosine_positive"]),
        "cos_mean": fmt(s["mean_improved_cosine"]),
        "dist_positive": _pct(s["improved_distance_positive"]),
        "dist_mean": fmt(s["mean_improved_distance"]),
        "words": f"{fmt(s['mean_word_overlap_original'])} → {fmt(s['mean_word_overlap_shifted'])}",
        "mas": f"{fmt(s['mean_mas_overlap_original'])} → {fmt(s['mean_mas_overlap_shifted'])}",
        "consistency": fmt(s["mean_pairwise_cosine"]),
        "pearson": fmt(s["pearson_consistency_improved_cosine"]),
        "planted": _pct(t.get("shift_fraction")) if t else None,
        "planted_random": _pct(t.get("random_fraction")) if t else None,
        "planted_any": _pct(t.get("shift_any_planted")) if t else None,
        "planted_any_random": _pct(t.get("random_any_planted")) if t else None,
        "planted_needed": t.get("planted_needed") if t else None,
        "planted_count": fmt(t.get("shift_planted_per_concept")) if t else None,
        "planted_count_random": fmt(t.get("random_planted_per_concept")) if t else None,
        "background": _pct(t.get("background_shared_shifted")) if "background_shared_shifted" in t else None,
        "background_unshifted": _pct(t.get("background_shared_unshifted")) if "background_shared_unshifted" in t else None,
    }


def _images(samples: list[dict], thumbs: Thumbnails) -> list[dict]:
    return [{"src": thumbs(m["image"]), "path": m["image"], "id": m["id"], "caption": m["caption"]} for m in samples]


def _card(c: dict, planted: set[str], thumbs: Thumbnails) -> dict:
    def words(ws):
        return None if ws is None else [{"word": w, "planted": w in planted} for w in ws]

    return {
        "index": c["index"],
        "n_samples": c["n_samples"],
        "matched": c["matched"],
        "original": words(c["words_original"]),
        "shift": words(c["shift_words"]),
        "shifted": words(c["words_shifted"]),
        "matched_words": words(c["words_matched"]),
        "mas_original": _images(c["mas_original"], thumbs),
        "mas_shifted": _images(c["mas_shifted"], thumbs),
        "improved_cosine": fmt(c["improved_cosine"]),
        "improved_distance": fmt(c["improved_distance"]),
        "consistency": fmt(c["pairwise_cosine"]),
        "shift_norm": fmt(c["shift_norm"]),
        "overlap": f"{c['word_overlap_original']} → {c['word_overlap_shifted']}" if c["n_samples"] else "—",
    }


def render_shift_report(out_path, run_paths: list[str]) -> None:
    """Write the report of one (original, fine-tuned, word) from its runs' shift.json files (atomically)."""
    runs = [read_json(p, "shift result") for p in run_paths]
    if not runs:
        raise MMConceptsError("shift report: no shift results given")
    pairs = {(r["original"], r["finetuned"], r["word"]) for r in runs}
    if len(pairs) != 1:
        raise MMConceptsError(f"shift report: results of several analyses {sorted(pairs)}; one report per pair and word")
    runs.sort(key=lambda r: (layer_key(r["layer"]), r["k"]))
    focus = runs[-1]  # the deepest layer: the paper reads the final norm's output
    truth = focus.get("truth")
    thumbs = Thumbnails()
    planted = set(truth["planted_words"]) if truth else set()
    cards = [_card(c, planted, thumbs) for c in focus["concepts"] if c["n_samples"]]
    scatter = scatter_panels(
        [
            (f"layer {r['layer']}", [c["pairwise_cosine"] for c in r["concepts"]], [c["improved_cosine"] for c in r["concepts"]])
            for r in runs
        ],
        "consistency (mean pairwise cos of shifts)",
        "improved cosine",
    )
    notes = [thumbs.missing_note()] if thumbs.missing else []
    write_page(
        out_path,
        "shift.html.jinja2",
        focus=focus,
        runs=runs,
        rows=[_summary_row(r) for r in runs],
        truth=truth,
        cards=cards,
        scatter=scatter,
        notes=notes,
        n_words=focus["n_words"],
        n_shift_words=focus["n_shift_words"],
        version=__version__,
    )
