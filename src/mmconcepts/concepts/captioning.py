"""Batched greedy captioning (``models.generation``) of one split, once per model and shared by every token.

Each row of the JSONL output keeps the generated token ids and the character
span of every token in the decoded caption, so that selection can map a word
to its first sub-token without re-tokenizing (re-tokenizing a caption does not
always give back the ids the model generated).
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from mmconcepts.atomic import atomic_path
from mmconcepts.data.karpathy import Sample
from mmconcepts.images import open_rgb
from mmconcepts.models.base import LMMAdapter
from mmconcepts.models.generation import greedy_generate


def token_spans(tokenizer, ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded caption, without leading spaces, and the [start, end) character span of each token in it."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    lead = len(text) - len(text.lstrip())
    spans, prev = [], 0
    for i in range(len(ids)):
        # Prefix decoding gives where each token ends; clamp because a byte-level
        # prefix ending inside a multi-byte character decodes to a replacement char.
        end = min(max(len(tokenizer.decode(ids[: i + 1], skip_special_tokens=True)) - lead, prev), len(text) - lead)
        spans.append((prev, end))
        prev = end
    return text[lead:], spans


def caption_split(
    adapter: LMMAdapter,
    samples: list[Sample],
    out_path: str | Path,
    *,
    instruction: str,
    batch_size: int,
    max_new_tokens: int,
) -> dict:
    """Caption every sample and write one JSON line per image; unreadable images are skipped and counted."""
    prompt = adapter.caption_prompt(instruction)
    counts = {"images": len(samples), "captioned": 0, "skipped": 0}
    with atomic_path(out_path) as tmp, open(tmp, "w") as f:
        for start in tqdm(range(0, len(samples), batch_size), desc="captions", unit="batch"):
            batch = samples[start : start + batch_size]
            opened = [(s, open_rgb(s.path)) for s in batch]
            for s, im in opened:
                if im is None:
                    counts["skipped"] += 1
                    f.write(json.dumps({"id": s.id, "image": str(s.path), "error": "missing or unreadable image"}) + "\n")
            good = [(s, im) for s, im in opened if im is not None]
            if not good:
                continue
            for (s, _), ids in zip(good, greedy_generate(adapter, [im for _, im in good], prompt, max_new_tokens)):
                text, spans = token_spans(adapter.tokenizer, ids)
                row = {"id": s.id, "image": str(s.path), "caption": text, "token_ids": ids, "spans": spans}
                f.write(json.dumps(row) + "\n")
                counts["captioned"] += 1
    return counts


def read_captions(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
