"""One CLIP on one classification set: every step of the mutual-knowledge explanation.

zero-shot prediction → patch tokens → per-class foreground → visual concepts (per method) →
visual prompts → descriptors of each concept (D_v) → language side (D_ŷ) → MI and its dynamics,
plus Deletion / Insertion / AccDrop / AccInc. The maths lives in the sibling modules; this one
wires them to the encoders and batches every forward pass over many images (the authors' notebook
runs one image at a time; ``bench/mutual.py`` measures the difference).

Choices the paper leaves open, made here:
- A class's images are the images of its folder (the ground truth), decomposed together as the
  authors do per synset (``foreground: image`` decomposes each image alone, as the paper's text
  writes A = f fᵀ of one image's tokens; ``foreground: truth``, a control on sets with object masks,
  takes the best whole-patch mask of the true object); explanations are of the predicted class ŷ.
- A concept's rank for Deletion/Insertion is cos(image, concept prompt) × the mean cos(image,
  descriptor) of the concept's descriptors (the paper: "the product of" the two similarities).
  A concept is all of its patches in the image, blurred (out or in) at the image's resolution.
- A concept is removed (or kept) by a Gaussian blur of sigma ``perturbation_blur`` × the image's
  shorter side (1/16 by default: 4 px at 64 px, 14 px at 224 px). The visual prompts' blur (an 11 × 11
  kernel at 224 px) leaves a 64-pixel shape recognisable, and Deletion then equalled Insertion.
- Deletion/Insertion curves shorter than ``n_concepts`` + 1 (an image showing fewer concepts) are
  padded with their last value: nothing is left to remove (or add).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from tqdm import tqdm

from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.foreground import best_patch_mask, class_groups, corloc, foreground_masks, mask_iou, upsample
from mmconcepts.mutual.information import SCORES, auc, curve_area, language_side, mean_curve, mi_dynamics
from mmconcepts.mutual.matching import assignment_entropy, describe
from mmconcepts.mutual.prompts import blur_inside, blur_outside, blurred_copy, largest_region, visual_prompts
from mmconcepts.mutual.visual_concepts import concept_labels

CLASS_SCALE = 2.5  # CLIP's logit scale in the paper's class score, 2.5·cos


@dataclass
class ModelResult:
    """Everything one model gives on the set, per method where it differs."""

    top1: float
    predicted: np.ndarray
    labels: np.ndarray
    foreground: np.ndarray  # (N, h, w) bool
    foreground_check: dict | None
    methods: dict[str, dict] = field(default_factory=dict)  # method → {"summary", "curves", "concepts", "explanations"}


def _foreground_check(foreground: np.ndarray, masks: list[np.ndarray]) -> dict:
    """IoU of each image's foreground (upsampled to the mask) with the true object mask, and CorLoc; beside
    them the mean IoU that the best mask of whole patches reaches (the ceiling at this patch grid) and the
    share of images left with no foreground patch (they get no concept, so no D_v and an MI of 0)."""
    predicted = [upsample(f, m.shape) for f, m in zip(foreground, masks)]
    ious = np.array([mask_iou(p, m) for p, m in zip(predicted, masks)])
    ceiling = np.mean([mask_iou(upsample(best_patch_mask(m, foreground.shape[1:]), m.shape), m) for m in masks])
    return {"iou_mean": float(ious.mean()), "iou_median": float(np.median(ious)), "corloc": corloc(predicted, masks),
            "iou_ceiling": float(ceiling), "without_foreground": float(np.mean([not f.any() for f in foreground])),
            "images": len(ious)}  # fmt: skip


def _concept_pixels(concepts: np.ndarray, concept: int, size: tuple[int, int]) -> np.ndarray:
    return upsample(concepts == concept, size)


def _perturbation_curves(enc, images, concepts, order, blurred, class_emb, predicted, labels, length: int):
    """Deletion and insertion: per image the class score 2.5·cos(image, ŷ) and whether the top-1 is
    the true class, as its concepts are blurred out (or in), most important first."""
    jobs = []  # (image index, kind, step image)
    for i, image in enumerate(images):
        size = (image.height, image.width)
        removed = np.zeros(size, bool)
        steps = [removed.copy()]
        for concept in order[i]:
            removed |= _concept_pixels(concepts[i], concept, size)
            steps.append(removed.copy())
        jobs += [(i, "deletion", blur_inside(image, m, blurred[i])) for m in steps]
        jobs += [(i, "insertion", blur_outside(image, m, blurred[i])) for m in steps]
    emb = enc.images([j[2] for j in jobs])
    scores = CLASS_SCALE * emb @ class_emb.T
    curves = {k: [[] for _ in images] for k in ("deletion", "insertion", "acc_drop", "acc_inc")}
    for (i, kind, _), row in zip(jobs, scores):
        curves[kind][i].append(float(row[predicted[i]]))
        curves["acc_drop" if kind == "deletion" else "acc_inc"][i].append(float(row.argmax() == labels[i]))
    return {kind: np.array([c + [c[-1]] * (length - len(c)) for c in per_image]) for kind, per_image in curves.items()}


def _describe_images(enc, images, concepts, image_desc, descriptors_emb, p):
    """Per image: its concepts' prompts encoded (batched over all images) and its description D_v."""
    regions, prompts = [], []
    for i, image in enumerate(images):
        present = [int(c) for c in np.unique(concepts[i]) if c >= 0]
        for c in present:
            region = largest_region(concepts[i], c)
            regions.append((i, c))
            prompts += visual_prompts(image, region)
    prompt_emb = enc.images(prompts).reshape(len(regions), 3, -1).mean(1) if regions else np.zeros((0, descriptors_emb.shape[1]))
    prompt_emb /= np.maximum(np.linalg.norm(prompt_emb, axis=1, keepdims=True), 1e-12)
    per_image = [[] for _ in images]
    for (i, c), v in zip(regions, prompt_emb):
        per_image[i].append((c, v))
    records = []
    for i in range(len(images)):
        ids = [c for c, _ in per_image[i]]
        V = np.stack([v for _, v in per_image[i]]) if ids else np.zeros((0, descriptors_emb.shape[1]))
        if not ids:
            records.append({"concepts": [], "described": None, "V": V})
            continue
        described = describe(
            V @ descriptors_emb.T, image_desc[i], CLASS_SCALE * image_desc[i], top_k=p["top_k"], per_concept=p["per_concept"],
            rule=p["relevance"], offset=p["offset"], use_ot=p["ot"], ot_scale=p["ot_scale"], ot_reg=p["ot_reg"],
            ot_iterations=p["ot_iterations"],
        )  # fmt: skip
        records.append({"concepts": ids, "described": described, "V": V})
    return records


def _concept_order(record, image_emb_i, image_desc_i) -> list[int]:
    """Concepts by cos(image, prompt) × mean cos(image, their descriptors), most important first."""
    scored = []
    for (c, v), chosen in zip(zip(record["concepts"], record["V"]), record["described"].per_concept):
        desc = float(np.mean(image_desc_i[list(chosen)])) if chosen else 0.0
        scored.append((-(float(v @ image_emb_i) * desc), c))
    return [c for _, c in sorted(scored)]


def explain_method(enc, data, images, labels, tokens, foreground, image_emb, predicted, class_emb, descriptors_emb, method, p):
    """One method's concepts, descriptions, MI curves and perturbation curves."""
    concepts = np.full(foreground.shape, -1, dtype=np.int64)
    for c, idx in class_groups(labels):
        try:
            concepts[idx] = concept_labels(tokens[idx], foreground[idx], method, p["n_concepts"], p["seed"])
        except MMConceptsError as e:
            raise MMConceptsError(f"mutual: class {data.classes[c]!r}, {method}: {e}") from None
    image_desc = image_emb @ descriptors_emb.T
    lang = class_emb[predicted] @ descriptors_emb.T
    records = _describe_images(enc, images, concepts, image_desc, descriptors_emb, p)
    score = SCORES[p["score"]]
    mi_curves, explanations, orders = [], [], []
    for i, rec in enumerate(records):
        dv = rec["described"].descriptors if rec["described"] else ()
        dy = [int(d) for d in language_side(lang[i], p["u"])]
        mi_curves.append(mi_dynamics(dv, dy, score))
        orders.append(_concept_order(rec, image_emb[i], image_desc[i]) if rec["described"] else [])
        explanations.append({
            "image": str(data.images[i][0]), "label": data.classes[labels[i]], "predicted": data.classes[predicted[i]],
            "concepts": rec["concepts"], "order": orders[-1],
            "per_concept": [list(x) for x in rec["described"].per_concept] if rec["described"] else [],
            "dv": list(dv), "dy": dy, "mutual": [d for d in dv if d in set(dy)], "mi": float(mi_curves[-1][0]),
        })  # fmt: skip
    blurred = [blurred_copy(im, p["perturbation_blur"] * min(im.size)) for im in images]
    perturbed = _perturbation_curves(enc, images, concepts, orders, blurred, class_emb, predicted, labels, p["n_concepts"] + 1)
    per_concept = [e["per_concept"] for e in explanations if e["per_concept"]]
    summary = {
        "mi": float(np.mean([c[0] for c in mi_curves])),
        "auc": auc(mi_curves, p["curve_length"]),
        "deletion": float(np.mean([curve_area(c) for c in perturbed["deletion"]])),
        "insertion": float(np.mean([curve_area(c) for c in perturbed["insertion"]])),
        "acc_drop": curve_area(perturbed["acc_drop"].mean(0)),
        "acc_inc": curve_area(perturbed["acc_inc"].mean(0)),
        "dv_size": float(np.mean([len(e["dv"]) for e in explanations])),
        "mutual_size": float(np.mean([len(e["mutual"]) for e in explanations])),
        "assignment_entropy": float(np.mean([assignment_entropy(x) for x in per_concept])) if per_concept else 0.0,
    }
    curves = {"mi": np.stack([np.pad(c, (0, p["curve_length"] - len(c))) for c in mi_curves]),
              "mi_mean": mean_curve(mi_curves, p["curve_length"]), **perturbed}  # fmt: skip
    return {"summary": summary, "curves": curves, "concepts": concepts, "explanations": explanations}


def explain_model(enc, data, p: dict, masks: list[np.ndarray] | None = None, progress: bool = True) -> ModelResult:
    """Every method of ``p["methods"]`` for one model (``ClipEncoders``) on ``data`` (``ClassificationSet``)."""
    images = [Image.open(path).convert("RGB") for path, _ in tqdm(data.images, desc="images", disable=not progress, mininterval=5)]
    labels = np.array([label for _, label in data.images])
    image_emb, tokens = enc.images_and_tokens(images)
    class_emb = enc.classes(data.classes, data.templates)
    descriptors_emb = enc.descriptors(data.descriptors)
    predicted = (image_emb @ class_emb.T).argmax(1)
    if p["foreground"] == "truth":  # the control: the best whole-patch masks of the true objects
        if masks is None:
            raise MMConceptsError("mutual: foreground: truth needs the set's object masks (masks:)")
        foreground = np.stack([best_patch_mask(m, tokens.shape[1:3]) for m in masks])
    else:
        foreground = foreground_masks(tokens, labels, p["foreground"], p["second_min"], p["connectivity"], p["affinity"])
    result = ModelResult(
        top1=float((predicted == labels).mean()), predicted=predicted, labels=labels, foreground=foreground,
        foreground_check=_foreground_check(foreground, masks) if masks is not None else None,
    )  # fmt: skip
    for method in p["methods"]:
        result.methods[method] = explain_method(
            enc, data, images, labels, tokens, foreground, image_emb, predicted, class_emb, descriptors_emb, method, p
        )
    return result
