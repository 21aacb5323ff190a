"""Greedy generation, the same for every family and for the tiny LLaVA's quality gate.

The checkpoint's ``generation_config`` (repetition penalties, sampling flags,
n-gram bans, ...) is never inherited: ``generate`` fills every setting left
unset from the model's own config, so the model's config is swapped for a bare
one during the call and the decoding is plain argmax. It stops on any of the
adapter's stop tokens and never emits an image token.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import GenerationConfig

from mmconcepts.models.base import LMMAdapter


def greedy_config(adapter: LMMAdapter, max_new_tokens: int) -> GenerationConfig:
    banned = sorted(adapter.never_generated_ids())
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        eos_token_id=sorted(adapter.stop_token_ids()),
        pad_token_id=adapter.tokenizer.pad_token_id,
        bad_words_ids=[[i] for i in banned] or None,
    )


@contextlib.contextmanager
def _bare_generation_config(model):
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def trim(ids: list[int], stop: set[int]) -> list[int]:
    """The ids before the first stop (or padding) token."""
    for i, t in enumerate(ids):
        if t in stop:
            return ids[:i]
    return ids


@torch.inference_mode()
def greedy_generate(adapter: LMMAdapter, images, prompt: str, max_new_tokens: int) -> list[list[int]]:
    """Greedy-decode a batch of images under one prompt; each row's ids up to (excluding) its first stop token."""
    config = greedy_config(adapter, max_new_tokens)
    inputs = adapter.encode(images, prompt, padding_side="left")
    with _bare_generation_config(adapter.model):
        out = adapter.model.generate(**inputs, generation_config=config)
    generated = out[:, inputs["input_ids"].shape[1] :].tolist()
    stop = set(config.eos_token_id) | {config.pad_token_id}
    return [trim(row, stop) for row in generated]
