"""The steering report: the α × layer sweep, the best setting by a stated rule, examples, controls."""

from __future__ import annotations

from mmconcepts import __version__
from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError
from mmconcepts.report.images import Thumbnails
from mmconcepts.report.plots import layer_key, line_panels
from mmconcepts.report.tables import fmt
from mmconcepts.report.templates import write_page

N_EXAMPLES = 8
MAX_OFF_TARGET_DROP = 0.05  # VQA: accuracy on the other answer types may drop this much
MIN_FACTOR_NAMED = 0.9  # captions: the untargeted factors must still be named right this often
RULES = {
    "vqa": f"the largest flip rate among the settings whose accuracy on every other answer type drops by at most "
    f"{100 * MAX_OFF_TARGET_DROP:.0f} points",
    "captions": f"the largest target-word rate among the settings that still name every untargeted factor right in at least "
    f"{100 * MIN_FACTOR_NAMED:.0f}% of captions (without factors: that degenerate in at most 10%)",
}


def effect(task: str, figures: dict) -> float | None:
    return figures["flip_rate"] if task == "vqa" else figures["target_rate"]


def acceptable(task: str, figures: dict) -> bool:
    if task == "vqa":
        return all(d >= -MAX_OFF_TARGET_DROP for d in figures["off_target_accuracy_change"].values())
    named = figures.get("factors_named")
    if named:
        return all(f["steered"] >= MIN_FACTOR_NAMED for f in named.values())
    return figures["degeneration"] <= 0.1


def best_setting(task: str, layers: list[dict], *, within_rule: bool = True) -> dict | None:
    """The (layer, α) that the task's rule picks (or, not ``within_rule``, of the largest effect);
    ties go to the smaller α, then the earlier layer."""
    best = None
    for entry in layers:
        for run in entry["runs"]:
            value = effect(task, run["figures"])
            if value is None or (within_rule and not acceptable(task, run["figures"])):
                continue
            if best is None or value > best["value"]:
                best = {"layer": entry["layer"], "alpha": run["alpha"], "value": value, "figures": run["figures"]}
    return best


def _quality(task: str, figures: dict) -> float | None:
    """The quality axis of the sweep plot: accuracy on the other answer types, or CIDEr-D."""
    if task == "vqa":
        by_type = figures["accuracy_steered"]["by_type"]
        others = [v for t, v in by_type.items() if t != "yes/no"]
        return sum(others) / len(others) if others else None
    return figures["cider_d"]


def render_steering_report(out_path, run_paths: list[str], baseline_path: str) -> None:
    layers = sorted((read_json(p, "steering result") for p in run_paths), key=lambda r: layer_key(r["layer"]))
    if not layers:
        raise MMConceptsError("steering report: no steering results given")
    baseline = read_json(baseline_path, "unsteered outputs")
    head = layers[0]
    task, name = head["task"], head["name"]
    alphas = [r["alpha"] for r in head["runs"]]
    best = best_setting(task, layers)
    effect_label = "flip rate" if task == "vqa" else "target-word rate"
    quality_label = "accuracy, other answer types" if task == "vqa" else "CIDEr-D"
    plot = line_panels(
        [f"{a:g}" for a in alphas],
        [
            (effect_label, {f"layer {e['layer']}": [effect(task, r["figures"]) for r in e["runs"]] for e in layers}),
            (quality_label, {f"layer {e['layer']}": [_quality(task, r["figures"]) for r in e["runs"]] for e in layers}),
        ],
        "α",
    )
    rows = [
        {
            "layer": e["layer"],
            "alpha": f"{r['alpha']:g}",
            "kind": kind,
            "effect": fmt(effect(task, r["figures"])),
            "quality": fmt(_quality(task, r["figures"])),
            "figures": r["figures"],
            "best": best is not None and kind == "steered" and (e["layer"], r["alpha"]) == (best["layer"], best["alpha"]),
        }
        for e in layers
        for kind, r in [*(("steered", r) for r in e["runs"]), ("random", e["random"])]
    ]
    thumbs = Thumbnails()
    examples = []
    shown = best or best_setting(task, layers, within_rule=False)  # no setting meets the rule: the strongest
    if shown is not None:
        chosen = next(e for e in layers if e["layer"] == shown["layer"])
        steered = next(r for r in chosen["runs"] if r["alpha"] == shown["alpha"])["outputs"]
        changed = [i for i in baseline["items"] if steered[i["id"]] != baseline["outputs"][i["id"]]]
        for item in (changed or baseline["items"])[:N_EXAMPLES]:
            examples.append(
                {
                    "src": thumbs(item["image"]),
                    "path": item["image"],
                    "question": item.get("question"),
                    "before": baseline["outputs"][item["id"]],
                    "after": steered[item["id"]],
                }
            )
    write_page(
        out_path,
        "steering.html.jinja2",
        name=name,
        head=head,
        task=task,
        layers=layers,
        rows=rows,
        best=best,
        shown=shown,
        rule=RULES[task],
        plot=plot,
        examples=examples,
        effect_label=effect_label,
        quality_label=quality_label,
        fmt=fmt,
        notes=[thumbs.missing_note()] if thumbs.missing else [],
        version=__version__,
    )
