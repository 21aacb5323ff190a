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
        inputs, prompt_lens = build_batch(adapter, images, prompt, [r["token_ids"] for r in rows])
        starts = torch.tensor([p + r["start"] for p, r in zip(prompt_lens, rows)], device=adapter.device)
        ends = torch.tensor([p + r["end"] for p, r in zip(prompt_lens, rows)], device=adapter.device)
        with read_mean_states(adapter, [layer], starts, ends) as found:
            adapter.model(**inputs, use_cache=False, logits_to_keep=1)
        states = found[layer].double()
        total = states.sum(0) if total is None else total + states.sum(0)
        n += len(rows)
    return (total / n).numpy()


def save_vector(out_dir, vector: np.ndarray, base_mean: np.ndarray, target_mean: np.ndarray, facts: dict) -> None:
    """``vector.safetensors`` and ``vector.json`` in ``out_dir``, each written whole."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    tensors = {"vector": vector.astype(np.float32), "base_mean": base_mean.astype(np.float32), "target_mean": target_mean.astype(np.float32)}
    with atomic_path(out_dir / "vector.safetensors") as tmp:
        save_file(tensors, str(tmp))
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
