"""The mutual concepts checked against a world that knows what every descriptor is true of.

``truth.json`` of the shapes world's class set gives each descriptor's attribute and value
(``{"attribute": "shape", "value": "star"}``) and each image's factors. A descriptor is true of an
image when the image has its value. The planted gap is an attribute no training text of the model
named: its descriptors must never come out mutual, while the others do.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmconcepts.errors import MMConceptsError


def image_key(path: str) -> str:
    """``<class folder>/<file>``, the key of an image in ``truth.json``."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def check_against_truth(explanations: list[dict], descriptors, truth: dict, gap: str | None) -> dict:
    """Per attribute, the share of images with at least one such descriptor in D_v, in D_ŷ and mutual;
    the share of mutual descriptors true of their image; and whether the gap was never mutual."""
    attributes = {}
    for d in descriptors:
        if d not in truth["descriptors"]:
            raise MMConceptsError(f"truth: descriptor {d!r} has no attribute in the truth file")
        attributes[d] = truth["descriptors"][d]
    kinds = sorted({a["attribute"] for a in attributes.values()})
    rates = {k: {"dv": 0, "dy": 0, "mutual": 0} for k in kinds}
    true_mutual, all_mutual = 0, 0
    for e in explanations:
        factors = truth["images"].get(image_key(e["image"]))
        if factors is None:
            raise MMConceptsError(f"truth: image {image_key(e['image'])} is not in the truth file")
        for side in ("dv", "dy", "mutual"):
            for k in {attributes[descriptors[d]]["attribute"] for d in e[side]}:
                rates[k][side] += 1
        for d in e["mutual"]:
            a = attributes[descriptors[d]]
            if a["attribute"] != gap:
                all_mutual += 1
                true_mutual += factors.get(a["attribute"]) == a["value"]
    n = len(explanations)
    out = {
        "images": n,
        "attributes": {k: {side: v / n for side, v in r.items()} for k, r in rates.items()},
        "mutual_true_share": true_mutual / all_mutual if all_mutual else None,
    }
    if gap is not None:
        others = [k for k in kinds if k != gap]
        out["gap"] = {
            "attribute": gap,
            "mutual_images": rates.get(gap, {"mutual": 0})["mutual"],
            "never_mutual": rates.get(gap, {"mutual": 0})["mutual"] == 0,
            "others_mutual": {k: rates[k]["mutual"] / n for k in others},
        }
    return out


def gap_of(model_spec: dict) -> str | None:
    """The attribute a family member's training never named (its ``training.json``), else None."""
    path = model_spec.get("path")
    facts = Path(path) / "training.json" if path else None
    if facts is None or not facts.is_file():
        return None
    return json.loads(facts.read_text()).get("gap")

