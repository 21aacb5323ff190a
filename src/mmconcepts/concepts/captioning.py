"""Batched greedy captioning (``models.generation``) of one split or shard, once per model and shared by every token.

Each row of the JSONL output keeps the generated token ids and the character
span of every token in the decoded caption, so that selection can map a word
to its first sub-token without re-tokenizing (re-tokenizing a caption does not
always give back the ids the model generated).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mmconcepts.data.karpathy import Sample
from mmconcepts.images import open_rgb
from mmconcepts.models.base import Encoder, LMMAdapter
from mmconcepts.models.generation import generate_from
from mmconcepts.models.prefetch import prefetched
from mmconcepts.partial_rows import PartialRows


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


@dataclass(frozen=True)
class CaptionBatches:
    """Batch ``first + i`` of the samples, its images opened and encoded (picklable: loader workers make it)."""

    encoder: Encoder
    samples: list[Sample]
    prompt: str
    batch_size: int
    first: int

    def __call__(self, i: int) -> dict:
        start = (self.first + i) * self.batch_size
        opened = [open_rgb(s.path) for s in self.samples[start : start + self.batch_size]]
        readable = [im for im in opened if im is not None]
        inputs = self.encoder(readable, self.prompt, padding_side="left") if readable else None
        return {"start": start, "readable": [im is not None for im in opened], "inputs": inputs}


def caption_split(
    adapter: LMMAdapter,
    samples: list[Sample],
    out_path: str | Path,
    *,
    instruction: str,
    batch_size: int,
    max_new_tokens: int,
    workers: int = 0,
) -> dict:
    """Caption every sample and write one JSON line per image, in sample order; unreadable images are
    skipped and counted. Batches are appended to ``<out>.partial`` (``partial_rows``): a restarted
    job captions only the batches after those a killed one finished."""
    prompt = adapter.caption_prompt(instruction)
    settings = {"model": str(adapter.model.name_or_path), "prompt": prompt, "max_new_tokens": max_new_tokens}
    partial = PartialRows(out_path, [s.id for s in samples], batch_size, settings)
    done = partial.resume()
    counts = {"images": len(samples), "resumed": done, "captioned": 0, "skipped": 0}
    first = done // batch_size
    n_batches = math.ceil(len(samples) / batch_size) - first
    make = CaptionBatches(adapter.encoder(), samples, prompt, batch_size, first)
    batches = prefetched(make, n_batches, workers=workers, pin=adapter.device.type == "cuda")
    for item in tqdm(batches, total=n_batches, desc="captions", unit="batch"):
        inputs = item["inputs"]
        generated = iter(generate_from(adapter, adapter.to_device(inputs), max_new_tokens) if inputs else [])
        lines = []
        for s, readable in zip(samples[item["start"] : item["start"] + batch_size], item["readable"]):
            if readable:
                ids = next(generated)
                text, spans = token_spans(adapter.tokenizer, ids)
                row = {"id": s.id, "image": str(s.path), "caption": text, "token_ids": ids, "spans": spans}
            else:
                row = {"id": s.id, "image": str(s.path), "error": "missing or unreadable image"}
            counts["captioned" if readable else "skipped"] += 1
            lines.append(json.dumps(row) + "\n")
        partial.write_batch(lines)
    partial.finish()
    return counts


def read_captions(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
