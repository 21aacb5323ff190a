"""Fine-tune the tiny LLaVA on one caption style: a fine-tune whose change is known.

The original model's folder is loaded as any checkpoint is; captioning is trained
again on the style's captions of the same train images, with the vision tower
frozen (as LLaVA-1.5's fine-tuning does), and the result is saved in the same
layout, so the pipeline serves it exactly like the original. The tokenizer is the
original's: it learned every style's words when the original was trained.

The gate, on the test split: the captions carry the style (a planted word in at
least ``min_style_rate`` of them) and still name the main shape right.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mmconcepts.atomic import read_json
from mmconcepts.data.karpathy import factors_of
from mmconcepts.device import set_threads
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.families import FAMILIES
from mmconcepts.shapes.caption_quality import caption_quality
from mmconcepts.shapes.llava import CaptionData, generate_captions, save_model, train_loop, vision_tower
from mmconcepts.shapes.llava_settings import FINETUNE_DEFAULTS
from mmconcepts.shapes.params import merge_params
from mmconcepts.shapes.styles import style_rates
from mmconcepts.shapes.training import world_split


def style_folder(world_dir, style: str) -> Path:
    folder = Path(world_dir) / "styles" / style
    if not (folder / "captions.json").is_file():
        written = sorted(p.name for p in (Path(world_dir) / "styles").glob("*")) or ["none"]
        raise MMConceptsError(f"{world_dir}: no captions in style {style!r} (the world wrote: {', '.join(written)})")
    return folder


def finetune_tiny_llava(base_dir, world_dir, style: str, out_dir, **params) -> dict:
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    p = merge_params(FINETUNE_DEFAULTS, params, "finetune_lmm", positive=("steps", "batch_size", "eval_batch_size"))
    set_threads(p["threads"])
    started = time.perf_counter()
    folder = style_folder(world_dir, style)
    info = read_json(folder / "style.json", "style file")

    torch.manual_seed(p["seed"])
    processor = AutoProcessor.from_pretrained(base_dir)
    model = LlavaForConditionalGeneration.from_pretrained(base_dir)
    vision_tower(model).requires_grad_(False)
    adapter = FAMILIES["llava"].from_loaded(model, processor)
    prompt = adapter.caption_prompt(p["prompt"])
    train_samples, train_images = world_split(world_dir, "train", folder / "captions.json")
    data = CaptionData(processor, train_images, train_samples, prompt)
    losses = train_loop(model, data, p, np.random.default_rng(p["seed"]))
    train_seconds = time.perf_counter() - started

    test_samples, test_images = world_split(world_dir, "test", folder / "captions.json")
    if p["eval_images"]:
        test_samples, test_images = test_samples[: p["eval_images"]], test_images[: p["eval_images"]]
    generated = generate_captions(adapter, test_images, prompt, p["eval_batch_size"], p["max_new_tokens"])
    factors = factors_of(world_dir, [s.id for s in test_samples])
    quality = {
        **caption_quality(generated, [list(s.captions) for s in test_samples], factors),
        **style_rates(generated, factors, info["planted"], info["factor"]),
    }
    print(f"finetune_lmm {style}: planted words in {quality['style_rate']:.1%} of {quality['images']} test captions "
          f"(the image's own in {quality['style_right']:.1%}), shape named right in {quality['shape_accuracy']:.1%}")
    for key, floor, what in (("style_rate", "min_style_rate", "carry the style"), ("shape_accuracy", "min_shape_accuracy", "name the main shape")):
        if quality[key] < p[floor]:
            raise MMConceptsError(
                f"finetune_lmm: only {quality[key]:.1%} of the {style} fine-tune's test captions {what} "
                f"({floor} = {p[floor]}); train longer (steps)"
            )
    summary = {
        "finetune": {"from": str(base_dir), "style": style, "planted_words": info["planted_words"]},
        "params": p,
        "torch_threads": torch.get_num_threads(),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "quality": quality,
        "examples": [{"id": s.id, "generated": g, "reference": s.captions[0]} for s, g in zip(test_samples[:5], generated)],
    }
    save_model(out_dir, model, processor, summary)
    return {k: summary[k] for k in ("train_seconds", "total_seconds", "final_loss", "quality")}
