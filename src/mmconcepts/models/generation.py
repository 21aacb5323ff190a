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
def generate_from(adapter: LMMAdapter, inputs: dict, max_new_tokens: int) -> list[list[int]]:
    """Greedy-decode a batch already encoded (left-padded, on the device); each row's ids up to (excluding) its first stop token."""
    config = greedy_config(adapter, max_new_tokens)
    with _bare_generation_config(adapter.model):
        out = adapter.model.generate(**inputs, generation_config=config)
    generated = out[:, inputs["input_ids"].shape[1] :].tolist()
    stop = set(config.eos_token_id) | {config.pad_token_id}
    return [trim(row, stop) for row in generated]


def greedy_generate(adapter: LMMAdapter, images, prompt: str, max_new_tokens: int) -> list[list[int]]:
    """Greedy-decode a batch of images under one prompt."""
    return generate_from(adapter, adapter.encode(images, prompt, padding_side="left"), max_new_tokens)


VQA_SUFFIX = "Answer the question using a single word or phrase."  # LLaVA-1.5's short-answer instruction
ANSWER_TOKENS = 4  # new tokens for a short answer


def vqa_instruction(question: str) -> str:
    """The user turn of a short-answer question, as LLaVA-1.5 was trained on VQAv2."""
    return f"{question}\n{VQA_SUFFIX}"


def greedy_by_prompt(adapter: LMMAdapter, images, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[list[int]]:
    """Greedy ids for rows that each have their own prompt (VQA questions): rows of one prompt go in one batch."""
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(i)
    out: list[list[int]] = [[] for _ in prompts]
    for prompt, rows in groups.items():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            for row, ids in zip(chunk, greedy_generate(adapter, [images[i] for i in chunk], prompt, max_new_tokens)):
                out[row] = ids
    return out


def greedy_texts(adapter: LMMAdapter, images, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """``greedy_by_prompt``, decoded and stripped: one text per row."""
    ids = greedy_by_prompt(adapter, images, prompts, batch_size, max_new_tokens)
    return [t.strip() for t in adapter.tokenizer.batch_decode(ids, skip_special_tokens=True)]
