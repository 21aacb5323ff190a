"""Hidden states about the word: one batched teacher-forced pass, every layer at once.

The sequence is the captioning prompt followed by the generated tokens up to
the read position. Batches are right-padded: with causal attention, padding
after the last real token cannot change any earlier state, and every row keeps
the positions it had during generation. Forward hooks (``models.hooks``) on the
decoder blocks and the final norm gather just the read position of each row,
and the pass stops after the deepest of them. Batches are built ahead in loader
workers (``models.prefetch``); rows go to the stores in whole chunks
(``feature_store``). An extraction shard writes a run of the selection's rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mmconcepts.concepts.feature_store import CHUNK_ROWS, shard_stores
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb
from mmconcepts.models.base import Encoder, LMMAdapter
from mmconcepts.models.hooks import parse_layer, read_states
from mmconcepts.models.prefetch import prefetched


def build_batch(encoder: Encoder, images, prompt: str, gen_ids: list[list[int]]) -> tuple[dict, list[int]]:
    """Processor inputs (CPU) with each row's generated ids appended right after its own prompt."""
    inputs = encoder(images, prompt, padding_side="right")
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    prompt_lens = mask.sum(1).tolist()
    total = max(p + len(g) for p, g in zip(prompt_lens, gen_ids))
    pad = encoder.tokenizer.pad_token_id
    new_ids = torch.full((len(gen_ids), total), pad, dtype=ids.dtype)
    new_mask = torch.zeros((len(gen_ids), total), dtype=mask.dtype)
    for b, (p, g) in enumerate(zip(prompt_lens, gen_ids)):
        new_ids[b, :p] = ids[b, :p]
        new_ids[b, p : p + len(g)] = torch.tensor(g, dtype=ids.dtype)
        new_mask[b, : p + len(g)] = 1
    # Other per-token inputs (Qwen's mm_token_type_ids, from which it derives M-RoPE positions)
    # grow with zeros: the appended tokens are text.
    for key, value in inputs.items():
        if key not in ("input_ids", "attention_mask") and torch.is_tensor(value) and value.shape == ids.shape:
            grown = torch.zeros((len(gen_ids), total), dtype=value.dtype)
            grown[:, : ids.shape[1]] = value
            inputs[key] = grown
    inputs.update(input_ids=new_ids, attention_mask=new_mask)
    return inputs, prompt_lens


@torch.inference_mode()
def states_of_batch(adapter: LMMAdapter, inputs: dict, index: list[int], layers, stop_early: bool = True) -> dict[str, torch.Tensor]:
    """For each layer, the (batch, hidden) states of a built batch at ``index[row]`` of every row.

    ``stop_early``: the pass ends at the deepest layer read (the same states, less work).
    """
    index = torch.tensor(index, device=adapter.device)
    with read_states(adapter, layers, index, stop_early) as found:
        # logits_to_keep=1: when the pass does run to the end, the LM head over the whole sequence is wasted work.
        adapter.model(**adapter.to_device(inputs), use_cache=False, logits_to_keep=1)
    return found


def hidden_states_at(adapter: LMMAdapter, images, prompt: str, gen_ids, positions, layers, stop_early: bool = True):
    """For each layer, the (batch, hidden) states at prompt_len + position of every row."""
    inputs, prompt_lens = build_batch(adapter.encoder(), images, prompt, gen_ids)
    return states_of_batch(adapter, inputs, [p + q for p, q in zip(prompt_lens, positions)], layers, stop_early)


def store_meta(selection: dict, rows: range, attrs: dict | None = None) -> dict:
    """A feature store's attributes for ``rows`` of the selection."""
    samples = selection["samples"][rows.start : rows.stop]
    return {
        **(attrs or {}),
        "sample_ids": [s["id"] for s in samples],
        "positions": [s["position"] for s in samples],
        "word": selection["word"],
        "position_kind": selection["position"],
    }


@dataclass(frozen=True)
class ExtractionBatches:
    """Batch i of the rows: images opened, the batch built, read positions found (picklable: loader workers make it)."""

    encoder: Encoder
    samples: list[dict]
    prompt: str
    batch_size: int

    def __call__(self, i: int) -> dict:
        batch = self.samples[i * self.batch_size : (i + 1) * self.batch_size]
        images = []
        for s in batch:
            im = open_rgb(s["image"])
            if im is None:
                raise MMConceptsError(f"{s['image']}: image was readable at captioning but not now")
            images.append(im)
        inputs, prompt_lens = build_batch(self.encoder, images, self.prompt, [s["token_ids"] for s in batch])
        return {"inputs": inputs, "index": [p + s["position"] for p, s in zip(prompt_lens, batch)]}


def extract_features(
    adapter: LMMAdapter,
    selection: dict,
    out_paths: dict[str, Path],
    *,
    rows: range | None = None,
    instruction: str,
    batch_size: int,
    dtype: str = "float32",
    chunk_rows: int = CHUNK_ROWS,
    attrs: dict | None = None,
    workers: int = 0,
) -> None:
    """Write one Zarr store per layer holding ``rows`` of the selection (all by default), in selection order."""
    layers = [parse_layer(L, adapter.n_layers) for L in out_paths]
    if not selection["samples"]:
        raise MMConceptsError(f"word {selection['word']!r}: no samples to extract")
    rows = range(len(selection["samples"])) if rows is None else rows
    samples = selection["samples"][rows.start : rows.stop]
    hidden = adapter.language_model().config.hidden_size
    meta = store_meta(selection, rows, attrs)
    paths = dict(zip(layers, out_paths.values()))
    n_batches = math.ceil(len(samples) / batch_size)
    make = ExtractionBatches(adapter.encoder(), samples, adapter.caption_prompt(instruction), batch_size)
    with shard_stores(paths, rows, len(selection["samples"]), hidden, dtype, meta, chunk_rows) as writers:
        batches = prefetched(make, n_batches, workers=workers, pin=adapter.device.type == "cuda")
        for item in tqdm(batches, total=n_batches, desc="extract", unit="batch"):
            states = states_of_batch(adapter, item["inputs"], item["index"], layers)
            for L in layers:
                writers[L].append(states[L].numpy())
