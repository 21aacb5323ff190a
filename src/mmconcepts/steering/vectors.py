"""Steering vectors: v = mean(target states) − mean(base states) at one layer, saved with their facts.

``vector.safetensors`` holds ``vector`` (and the two set means); ``vector.json`` says
which model, layer and position rule made it, from which sets of how many samples,
and its norm, so that a vector is never applied blind (DESIGN.md, "Steering vectors").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mmconcepts.atomic import atomic_path, read_json
from mmconcepts.concepts.extraction import build_batch
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import require_rgb
from mmconcepts.models.hooks import read_mean_states

POSITION_RULES = {
    "answer": "the last prompt token (it predicts the answer's first token)",
    "word": "the position predicting the word's first token in the generated caption",
    "before_eos": "mean over the generated tokens before the end token",
}


@torch.inference_mode()
def mean_state(adapter, items: list[dict], layer: str, batch_size: int) -> np.ndarray:
    """The mean over items of each item's state (its mean over its span) at ``layer``."""
    total, n = None, 0
    by_prompt: dict[str, list[dict]] = {}
    for item in items:
        by_prompt.setdefault(item["prompt"], []).append(item)
    batches = [(p, rows[s : s + batch_size]) for p, rows in by_prompt.items() for s in range(0, len(rows), batch_size)]
    for prompt, rows in tqdm(batches, desc=f"states layer {layer}", mininterval=5):
        images = [require_rgb(r["image"]) for r in rows]
        inputs, prompt_lens = build_batch(adapter.encoder(), images, prompt, [r["token_ids"] for r in rows])
        starts = torch.tensor([p + r["start"] for p, r in zip(prompt_lens, rows)], device=adapter.device)
        ends = torch.tensor([p + r["end"] for p, r in zip(prompt_lens, rows)], device=adapter.device)
        with read_mean_states(adapter, [layer], starts, ends, stop_early=True) as found:
            adapter.model(**adapter.to_device(inputs), use_cache=False, logits_to_keep=1)
        states = found[layer].double()
        total = states.sum(0) if total is None else total + states.sum(0)
        n += len(rows)
    return (total / n).numpy()


def concept_vector(path, i: int, j: int) -> tuple[np.ndarray, dict]:
    """s_ij = u_j − u_i of a dictionary, and where it came from (for the vector's facts)."""
    from mmconcepts.concepts.decomposition import load_dictionary

    components = np.asarray(load_dictionary(path).components_, dtype=np.float64)
    k = len(components)
    if not (0 <= i < k and 0 <= j < k):
        raise MMConceptsError(f"{path}: concepts {i}, {j} of a dictionary of {k}")
    rule = f"u_{j} − u_{i} of {path}"
    return components[j] - components[i], {"base": {"spec": {"concept": i}, "position": rule}, "target": {"spec": {"concept": j}, "position": rule}}


def shift_vector(path, k: int) -> tuple[np.ndarray, dict]:
    """Δ_k of a shift analysis, and where it came from; a concept with no sample has no shift."""
    shifts = _npz(path, "shifts", "shift result")
    if not 0 <= k < len(shifts):
        raise MMConceptsError(f"{path}: concept {k} of a shift with {len(shifts)} concepts")
    if np.isnan(shifts[k]).any():
        raise MMConceptsError(f"{path}: concept {k} has no common sample, so no shift")
    rule = f"Δ_{k}: the mean shift of concept {k}'s samples, {path}"
    return shifts[k], {"base": {"spec": "original model", "position": rule}, "target": {"spec": {"shift": k}, "position": rule}}


def _npz(path, key: str, what: str) -> np.ndarray:
    try:
        with np.load(path) as f:
            return np.asarray(f[key], dtype=np.float64)
    except (OSError, KeyError, ValueError) as e:
        raise MMConceptsError(f"{path}: not a {what} with {key!r} ({e})") from None


def save_vector(out_dir, vector: np.ndarray, means: dict | None, facts: dict) -> None:
    """``vector.safetensors`` (with the two sets' means, when it has sets) and ``vector.json`` in ``out_dir``, each written whole."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    tensors = {"vector": vector, **{f"{role}_mean": m for role, m in (means or {}).items()}}
    with atomic_path(out_dir / "vector.safetensors") as tmp:
        save_file({key: np.asarray(t, np.float32) for key, t in tensors.items()}, str(tmp))
    with atomic_path(out_dir / "vector.json") as tmp:
        tmp.write_text(json.dumps({**facts, "norm": float(np.linalg.norm(vector)), "hidden_size": int(vector.shape[0])}, indent=1) + "\n")


def load_vector(path, hidden_size: int | None = None) -> tuple[np.ndarray, dict]:
    """The vector of ``vector.safetensors`` and the facts beside it; a vector of another hidden size is named."""
    from safetensors.numpy import load_file

    path = Path(path)
    try:
        vector = load_file(str(path))["vector"]
    except (OSError, KeyError, ValueError) as e:
        raise MMConceptsError(f"{path}: not a steering vector ({e})") from None
    facts = read_json(path.with_suffix(".json"), "steering vector facts")
    if hidden_size is not None and vector.shape != (hidden_size,):
        raise MMConceptsError(
            f"{path}: a vector of size {vector.shape[0]} (made on {facts.get('model')!r}) for a model of hidden size {hidden_size}"
        )
    return vector, facts
