"""The shapes world's classification set: one class per shape, for CLIP's zero-shot decisions.

Written under ``classes/`` of the world, in the layout a real set has:
- ``images/<class>/<imgid>.png``, an ImageNet-style folder per class: the set the stage explains;
- ``train/<class>/<imgid>.png``, the same kind of images to train the tiny CLIP family on, with
  their factors in ``train_factors.json`` (``{"<class>/<imgid>.png": factors}``), from which the
  trainer writes its captions;
- ``classes.json``, ``{folder: class name}``;
- ``templates.json``, the prompt templates for class embeddings;
- ``descriptors.json``, a descriptor bank in Menon & Vondrick's format ``{class: [descriptors]}``.

And the ground truth that a real set lacks:
- ``masks/<class>/<imgid>.png``, the object's pixels (255) for the foreground check;
- ``truth.json``, each image's factors and each descriptor's attribute and value, so a check knows
  which descriptors are true of which image (a shape's parts of its class, a colour of its colour).

The images are object-centric, as a classification set's are: one object of the class, centred,
with a radius of 0.34 of the side (the captioned world's large objects have 0.22), and no second
object, so "the foreground" is one thing that fills about a third of the image; colour and
background are drawn as in the rest of the world. Measured on the tiny CLIP family (issue 14): on
the captioned world's images, where objects are smaller and placed anywhere, no decomposition of
the patch tokens found the object (foreground IoU ≤ 0.37, against a best possible 0.65 at the
8-pixel patch grid). Image ``i`` is drawn from the generator seeded with ``(seed, i)``, its ids
following the caption splits' ids (train after the explained set), so this set leaves the other
images as they were.
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
    "diamond": ("four slanted sides", "a corner pointing straight up", "a rhombus outline"),
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
CLASS_SIZE = "xlarge"  # radius 0.34 of the side (world._RADIUS), drawn only here
CLASS_POSITION = "centre"


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
    """Factors as the world draws them, with the class's shape, centred, of the class size, no second object."""
    f = sample_factors(rng, {**p, "second_object_prob": 0.0})
    return {**f, "shape": shape, "size": CLASS_SIZE, "position": CLASS_POSITION}


def object_mask(f: dict, size: int) -> np.ndarray:
    """The main object's pixels (coverage ≥ 0.5) of factors ``f``, as bool size × size."""
    shape, _, x, y, r = layout(None, f)[0]  # no second object: layout draws nothing at random
    return shape_coverage(shape, size, x * size, y * size, r * size) >= 0.5


def class_image(job: tuple[dict, Path, int, str, bool]) -> tuple[str, dict, bool]:
    """Draw and save one image of the set (and its mask if it is one of the explained images);
    return its key, its factors and whether it is explained.

    Seeded with the image's id alone, so any process may make any image.
    """
    p, folder, imgid, shape, with_mask = job
    rng = np.random.default_rng([p["seed"], imgid])
    f = class_factors(rng, p, shape)
    key = f"{shape}/{imgid:05d}.png"
    Image.fromarray(draw(rng, f, p["image_size"])).save(folder / key, format="PNG")
    if with_mask:
        mask = object_mask(f, p["image_size"]).astype(np.uint8) * 255
        Image.fromarray(mask, mode="L").save(folder.parent / "masks" / key, format="PNG")
    return key, f, with_mask


def class_jobs(folder: Path, p: dict, first_imgid: int) -> list[tuple[dict, Path, int, str, bool]]:
    """The images of ``classes/`` to draw (explained set first, then train), with their folders made."""
    jobs, imgid = [], first_imgid
    for sub, per_shape, with_mask in (("images", p["classes_per_shape"], True), ("train", p["classes_train_per_shape"], False)):
        for shape in p["shapes"]:
            (folder / sub / shape).mkdir(parents=True)
            if with_mask:
                (folder / "masks" / shape).mkdir(parents=True)
            jobs += [(p, folder / sub, imgid + k, shape, with_mask) for k in range(per_shape)]
            imgid += per_shape
    return jobs


def write_class_files(folder: Path, p: dict, drawn: list[tuple[str, dict, bool]]) -> dict:
    """Write the set's JSON files (see the module docstring) for the ``(key, factors, explained?)``
    drawn; return ``{"images": per class, "train": per class}``."""
    args = (p["shapes"], p["colours"], p["backgrounds"])
    (folder / "classes.json").write_text(json.dumps({s: s for s in p["shapes"]}, indent=1) + "\n")
    (folder / "templates.json").write_text(json.dumps(list(CLIP_TEMPLATES), indent=1) + "\n")
    (folder / "descriptors.json").write_text(json.dumps(descriptor_bank(*args), indent=1) + "\n")
    truth = {"images": {k: f for k, f, explained in drawn if explained}, "descriptors": descriptor_truth(*args)}
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    train = {k: f for k, f, explained in drawn if not explained}
    (folder / "train_factors.json").write_text(json.dumps(train) + "\n")
    return {"images": {s: p["classes_per_shape"] for s in p["shapes"]}, "train": {s: p["classes_train_per_shape"] for s in p["shapes"]}}
