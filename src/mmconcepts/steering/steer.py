"""Steered generation on held-out items, and what it changed.

An evaluation item is a val image with its prompt: the caption instruction, or one
VQA question under LLaVA-1.5's short-answer instruction. ``generate`` answers every item
with α·v added to one layer (``models.hooks.add_vector``), batched (rows that share a
prompt go together); ``evaluate`` compares the outputs with the unsteered ones.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from tqdm import tqdm

from mmconcepts.images import require_rgb
from mmconcepts.models.generation import greedy_texts
from mmconcepts.models.hooks import add_vector
from mmconcepts.shapes.world import COLOURS, SHAPES
from mmconcepts.shift import analysis as shift_analysis
from mmconcepts.steering.caption_metrics import caption_effect
from mmconcepts.steering.vqa_metrics import steering_effect


def generate(adapter, items: list[dict], *, layer: str | None, vector, alpha: float, apply: str, batch_size: int, max_new_tokens: int) -> dict[str, str]:
    """Item id -> generated text, with ``alpha · vector`` added at ``layer`` (no hook when layer is None)."""
    images = [require_rgb(item["image"]) for item in tqdm(items, desc="images", mininterval=5)]
    steering = contextlib.nullcontext() if layer is None else add_vector(adapter, layer, torch.as_tensor(vector), alpha, apply)
    with steering:
        texts = greedy_texts(adapter, images, [item["prompt"] for item in items], batch_size, max_new_tokens)
    return {item["id"]: text for item, text in zip(items, texts)}


def random_like(vector: np.ndarray, seed: int) -> np.ndarray:
    """A seeded random direction of the vector's norm: the control that steering is not just any push."""
    return shift_analysis.random_like(np.asarray(vector)[None], seed)[0]


def evaluate(task: str, base: dict[str, str], steered: dict[str, str], *, questions=None, references=None,
             factors=None, source=None, target=None) -> dict:
    """The task's figures of a steered run against the unsteered one (DESIGN.md, steering metrics)."""
    if task == "vqa":
        return steering_effect(base, steered, questions, source=source, target=target)
    untargeted = {"shape": SHAPES} if target in COLOURS else {"shape": SHAPES, "colour": COLOURS}
    return caption_effect(
        base, steered, references, target_words={target}, factors=factors, untargeted=untargeted if factors else None
    )
