"""Hidden states about the word: one batched teacher-forced pass, every layer at once.

The sequence is the captioning prompt followed by the generated tokens up to
the read position. Batches are right-padded: with causal attention, padding
after the last real token cannot change any earlier state, and every row keeps
the positions it had during generation. Forward hooks (``models.hooks``) on the
decoder blocks and the final norm gather just the read position of each row.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm import tqdm

from mmconcepts.atomic import atomic_path
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb
from mmconcepts.models.base import LMMAdapter
from mmconcepts.models.hooks import parse_layer, read_states

# Snakemake drops a .snakemake_timestamp file into directory outputs; zarr 3 warns about it.
warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy.*")


def build_batch(adapter: LMMAdapter, images, prompt: str, gen_ids: list[list[int]]):
    """Processor inputs with each row's generated ids appended right after its own prompt."""
    inputs = adapter.encode(images, prompt, padding_side="right")
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    prompt_lens = mask.sum(1).tolist()
    total = max(p + len(g) for p, g in zip(prompt_lens, gen_ids))
    pad = adapter.tokenizer.pad_token_id
    new_ids = torch.full((len(gen_ids), total), pad, dtype=ids.dtype, device=ids.device)
    new_mask = torch.zeros((len(gen_ids), total), dtype=mask.dtype, device=mask.device)
    for b, (p, g) in enumerate(zip(prompt_lens, gen_ids)):
        new_ids[b, :p] = ids[b, :p]
        new_ids[b, p : p + len(g)] = torch.tensor(g, dtype=ids.dtype)
        new_mask[b, : p + len(g)] = 1
    # Other per-token inputs (Qwen's mm_token_type_ids, from which it derives M-RoPE positions)
    # grow with zeros: the appended tokens are text.
    for key, value in inputs.items():
        if key not in ("input_ids", "attention_mask") and torch.is_tensor(value) and value.shape == ids.shape:
            grown = torch.zeros((len(gen_ids), total), dtype=value.dtype, device=value.device)
            grown[:, : ids.shape[1]] = value
            inputs[key] = grown
    inputs.update(input_ids=new_ids, attention_mask=new_mask)
    return inputs, prompt_lens


@torch.inference_mode()
def hidden_states_at(adapter: LMMAdapter, images, prompt: str, gen_ids, positions, layers) -> dict[str, torch.Tensor]:
    """For each layer, the (batch, hidden) states at prompt_len + position of every row."""
    inputs, prompt_lens = build_batch(adapter, images, prompt, gen_ids)
    index = torch.tensor([p + q for p, q in zip(prompt_lens, positions)], device=adapter.device)
    with read_states(adapter, layers, index) as found:
        # logits_to_keep=1: the LM head over the whole sequence is wasted work here.
        adapter.model(**inputs, use_cache=False, logits_to_keep=1)
    return found


def extract_features(
    adapter: LMMAdapter,
    selection: dict,
    out_paths: dict[str, Path],
    *,
    instruction: str,
    batch_size: int,
    dtype: str = "float32",
    chunk_rows: int = 1024,
    attrs: dict | None = None,
) -> None:
    """Write one Zarr store per layer: rows = kept samples in selection order."""
    layers = [parse_layer(L, adapter.n_layers) for L in out_paths]
    samples = selection["samples"]
    if not samples:
        raise MMConceptsError(f"word {selection['word']!r}: no samples to extract")
    prompt = adapter.caption_prompt(instruction)
    hidden = adapter.language_model().config.hidden_size
    meta = {
        **(attrs or {}),
        "sample_ids": [s["id"] for s in samples],
        "positions": [s["position"] for s in samples],
        "word": selection["word"],
        "position_kind": selection["position"],
    }
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(p, is_dir=True)) for p in out_paths.values()]
        arrays = {}
        for L, tmp in zip(layers, tmps):
            group = zarr.open_group(tmp, mode="w")
            group.attrs.update({**meta, "layer": L})
            arrays[L] = group.create_array(
                "features", shape=(len(samples), hidden), chunks=(min(chunk_rows, len(samples)), hidden), dtype=dtype
            )
        for start in tqdm(range(0, len(samples), batch_size), desc="extract", unit="batch"):
            batch = samples[start : start + batch_size]
            images = []
            for s in batch:
                im = open_rgb(s["image"])
                if im is None:
                    raise MMConceptsError(f"{s['image']}: image was readable at captioning but not now")
                images.append(im)
            states = hidden_states_at(
                adapter, images, prompt, [s["token_ids"] for s in batch], [s["position"] for s in batch], layers
            )
            for L in layers:
                arrays[L][start : start + len(batch)] = states[L].numpy().astype(dtype)


def read_features(path: str | Path) -> tuple[np.ndarray, dict]:
    """The feature matrix and the store's attributes; a store without them is rejected by name."""
    path = Path(path)
    try:
        group = zarr.open_group(path, mode="r")
        z = group["features"][:]
    except Exception as e:  # zarr raises several types for a missing or broken store
        raise MMConceptsError(f"{path}: not a complete feature store ({e.__class__.__name__}: {e})") from None
    attrs = dict(group.attrs)
    if len(attrs.get("sample_ids", [])) != z.shape[0]:
        raise MMConceptsError(f"{path}: {z.shape[0]} rows but {len(attrs.get('sample_ids', []))} sample ids")
    return np.asarray(z, dtype=np.float32), json.loads(json.dumps(attrs))
