"""One job of the ``mutual`` rule: one CLIP on one classification set, every method, written out.

The output folder (written whole or not at all) holds per method a folder ``<method>/`` with
- ``mi.json``: top-1, MI (t = 0), AUC, Deletion, Insertion, AccDrop, AccInc, the foreground check
  and the truth check where the set has them, the settings;
- ``curves.npz``: the MI curves (images × curve_length) and their mean, and the Deletion,
  Insertion, AccDrop and AccInc curves per image;
- ``regions.npz``: the foreground and concept id of every patch, the labels and predictions;
- ``explanations.jsonl``: per image its concepts, D_v, D_ŷ and the mutual descriptors (ids into
  ``descriptors`` of mi.json).

The method-independent half (zero-shot prediction, tokens, foreground, text embeddings) is computed
once for all methods of the job.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mmconcepts.atomic import atomic_path, read_json
from mmconcepts.data.classification import load_classification
from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.encoders import ClipEncoders
from mmconcepts.mutual.explain import explain_model
from mmconcepts.mutual.settings import mutual_settings
from mmconcepts.mutual.truth import check_against_truth, gap_of, image_key


def _masks(masks_dir: Path, images) -> list[np.ndarray]:
    out = []
    for path, _ in images:
        mask_path = masks_dir / image_key(str(path))
        if not mask_path.is_file():
            raise MMConceptsError(f"{mask_path}: mask of {path} not found")
        out.append(np.asarray(Image.open(mask_path).convert("L")) > 127)
    return out


def run_mutual(dataset: dict, model_name: str, model_spec: dict, params: dict, out: Path, header: dict | None = None, device: str = "cpu") -> dict:
    """``dataset``: images, descriptors, templates and optionally classes, per_class, masks, truth
    (paths); ``model_spec``: ``{"path"}`` or ``{"model", "pretrained"}``; writes ``out/<method>/``."""
    started = time.perf_counter()
    p = mutual_settings(**params)
    data = load_classification(dataset["images"], dataset["descriptors"], dataset["templates"], dataset.get("classes"), dataset.get("per_class"))
    masks = _masks(Path(dataset["masks"]), data.images) if dataset.get("masks") else None
    truth = read_json(dataset["truth"], "truth file") if dataset.get("truth") else None
    enc = ClipEncoders.load(model_name, model_spec, p["batch_size"], device)
    result = explain_model(enc, data, p, masks)
    gap = gap_of(model_spec)
    seconds = round(time.perf_counter() - started, 1)
    summaries = {}
    with atomic_path(Path(out), is_dir=True) as root:
        for method, res in result.methods.items():
            tmp = root / method
            tmp.mkdir()
            summary = {
                **(header or {}),
                "model": model_name,
                "method": method,
                "control": bool(model_spec.get("control", False)),
                "gap": gap,
                "top1": result.top1,
                **res["summary"],
                "foreground": result.foreground_check,
                "truth": check_against_truth(res["explanations"], data.descriptors, truth, gap) if truth else None,
                "images": len(data.images),
                "classes": list(data.classes),
                "descriptors": list(data.descriptors),
                "settings": p,
                "seconds": seconds,
            }
            (tmp / "mi.json").write_text(json.dumps(summary, indent=1) + "\n")
            with open(tmp / "curves.npz", "wb") as f:
                np.savez(f, **res["curves"])
            with open(tmp / "regions.npz", "wb") as f:
                np.savez(f, foreground=result.foreground, concepts=res["concepts"].astype(np.int8),
                         labels=result.labels, predicted=result.predicted)  # fmt: skip
            with open(tmp / "explanations.jsonl", "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in res["explanations"])
            summaries[method] = {k: summary[k] for k in ("top1", "mi", "auc", "deletion", "insertion", "acc_drop", "acc_inc")}
    return {"model": model_name, "seconds": seconds, "methods": summaries}
