"""The shapes world's classification set: one class per shape, for CLIP's zero-shot decisions.

Written under ``classes/`` of the world, in the layout a real set has:
- ``images/<class>/<imgid>.png``, an ImageNet-style folder per class;
- ``classes.json``, ``{folder: class name}``;
- ``templates.json``, the prompt templates for class embeddings;
- ``descriptors.json``, a descriptor bank in Menon & Vondrick's format ``{class: [descriptors]}``.

And the ground truth that a real set lacks:
- ``masks/<class>/<imgid>.png``, the object's pixels (255) for the foreground check;
- ``truth.json``, each image's factors and each descriptor's attribute and value, so a check knows
  which descriptors are true of which image (a shape's parts of its class, a colour of its colour).

Each image holds one large object of its class and no second object, so "the foreground" is one
thing; colour, position and background are drawn as in the rest of the world. Image ``i`` is drawn
from the generator seeded with ``(seed, i)``, its ids following the caption splits' ids, so adding
this set left the other images as they were.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mmconcepts.data.classification import CLIP_TEMPLATES
from mmconcepts.shapes.drawing import shape_coverage
from mmconcepts.shapes.world import draw, layout, sample_factors

# What a shape looks like, in words a descriptor bank would use: parts and properties one can see.
PART_DESCRIPTORS = {
    "circle": ("a round outline", "a smooth curved edge", "no corners at all"),
    "square": ("four equal straight sides", "four right-angled corners", "a boxy outline"),
    "triangle": ("three straight sides", "three sharp corners", "a triangular outline"),
    "diamond": ("four slanted sides", "a corner pointing straight up", "a square standing on its tip"),
    "star": ("five pointed tips", "spiky arms", "notches between the points"),
    "cross": ("two crossing bars", "four short arms", "a plus sign outline"),
}
# Attributes every class can have: listed under every class, as a real bank repeats "green grass".
# No descriptor holds another attribute's word ("green grass" would name a colour), so each is
# true of exactly one attribute value.
COLOUR_DESCRIPTORS = {c: f"a bright {c} surface" for c in ("red", "green", "blue", "yellow", "purple", "orange")}
BACKGROUND_DESCRIPTORS = {
    "plain": "a plain grey backdrop",
    "grass": "tall grass blades",
    "stripes": "diagonal light stripes",
    "sky": "an open sky fading to haze",
}
CLASS_SIZE = "large"  # the larger radius: more patches of the object for the foreground and its concepts


def descriptor_bank(shapes, colours, backgrounds) -> dict[str, list[str]]:
    """``{shape: [its parts, then every colour's and background's descriptor]}`` of the world's values."""
    shared = [COLOUR_DESCRIPTORS[c] for c in colours] + [BACKGROUND_DESCRIPTORS[b] for b in backgrounds]
    return {s: [*PART_DESCRIPTORS[s], *shared] for s in shapes}


def descriptor_truth(shapes, colours, backgrounds) -> dict[str, dict[str, str]]:
    """``{descriptor: {"attribute": shape|colour|background, "value": ...}}``."""
    truth = {d: {"attribute": "shape", "value": s} for s in shapes for d in PART_DESCRIPTORS[s]}
    truth |= {COLOUR_DESCRIPTORS[c]: {"attribute": "colour", "value": c} for c in colours}
    return truth | {BACKGROUND_DESCRIPTORS[b]: {"attribute": "background", "value": b} for b in backgrounds}


def class_factors(rng: np.random.Generator, p: dict, shape: str) -> dict:
    """Factors as the world draws them, with the class's shape, the large size and no second object."""
    f = sample_factors(rng, {**p, "second_object_prob": 0.0})
    return {**f, "shape": shape, "size": CLASS_SIZE}


def object_mask(f: dict, size: int) -> np.ndarray:
    """The main object's pixels (coverage ≥ 0.5) of factors ``f``, as bool size × size."""
    shape, _, x, y, r = layout(None, f)[0]  # no second object: layout draws nothing at random
    return shape_coverage(shape, size, x * size, y * size, r * size) >= 0.5


def write_class_split(folder: Path, p: dict, first_imgid: int) -> dict:
    """Write ``classes/`` (see the module docstring) with ``p["classes_per_shape"]`` images per shape,
    ids from ``first_imgid``; return ``{class: number of images}``."""
    size = p["image_size"]
    images = {}
    imgid = first_imgid
    for shape in p["shapes"]:
        (folder / "images" / shape).mkdir(parents=True)
        (folder / "masks" / shape).mkdir(parents=True)
        for _ in range(p["classes_per_shape"]):
            rng = np.random.default_rng([p["seed"], imgid])
            f = class_factors(rng, p, shape)
            name = f"{imgid:05d}.png"
            Image.fromarray(draw(rng, f, size)).save(folder / "images" / shape / name, format="PNG")
            mask = object_mask(f, size).astype(np.uint8) * 255
            Image.fromarray(mask, mode="L").save(folder / "masks" / shape / name, format="PNG")
            images[f"{shape}/{name}"] = f
            imgid += 1
    args = (p["shapes"], p["colours"], p["backgrounds"])
    (folder / "classes.json").write_text(json.dumps({s: s for s in p["shapes"]}, indent=1) + "\n")
    (folder / "templates.json").write_text(json.dumps(list(CLIP_TEMPLATES), indent=1) + "\n")
    (folder / "descriptors.json").write_text(json.dumps(descriptor_bank(*args), indent=1) + "\n")
    truth = {"images": images, "descriptors": descriptor_truth(*args)}
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return {s: p["classes_per_shape"] for s in p["shapes"]}
