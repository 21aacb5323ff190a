"""Seconds per step of the tiny LLaVA's captioning training: pixels through the frozen tower at every
step (the reference) against the tower's features cached once (ours, ``shapes.llava.train_loop``).

    .venv/bin/python bench/training.py [--world DIR] [--steps N] [--repeats R] [--threads T]

Both run the same forward and backward pass of the default architecture (LMM_DEFAULTS) on the same
batches of the shapes world's train split, from the same weights, interleaved, best of ``--repeats``.
The world defaults to the workflow's (resources/worlds/shapes); without it a small one is built here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmconcepts.device import set_threads
from mmconcepts.models.families import FAMILIES
from mmconcepts.shapes.llava import (
    CaptionData,
    build_model,
    build_processor,
    build_tokenizer,
    frozen_vision_features,
    vision_tower,
    with_image_features,
)
from mmconcepts.shapes.llava_settings import LMM_DEFAULTS, PROMPT
from mmconcepts.shapes.training import world_split
from mmconcepts.shapes.world import generate_world


def timed_steps(model, optimizer, batches, inputs) -> float:
    started = time.perf_counter()
    for batch in batches:
        loss = model(**inputs(batch)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / len(batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="resources/worlds/shapes")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    set_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(a.world)
        if not (world / "captions.json").is_file():
            world = Path(tmp) / "world"
            generate_world(world, n_train=600, n_val=0, n_test=10, image_size=64)
        samples, images = world_split(world, "train")
        captions = [c for s in samples for c in s.captions]
        torch.manual_seed(0)
        p = dict(LMM_DEFAULTS)
        tokenizer = build_tokenizer(captions, [PROMPT], p["max_vocab"])
        processor = build_processor(tokenizer, images[0].width, p["patch_size"])
        model = build_model(tokenizer, images[0].width, p)
        prompt = FAMILIES["llava"].from_loaded(model, processor).caption_prompt(PROMPT)
        data = CaptionData(processor, images, samples, prompt)
    vision_tower(model).requires_grad_(False)
    model.train()
    rng = np.random.default_rng(0)
    batches = [data.batch(list(rng.choice(len(samples), p["batch_size"], replace=False)), rng.integers(0, 5, p["batch_size"]))
               for _ in range(a.steps)]  # fmt: skip
    started = time.perf_counter()
    features = frozen_vision_features(model, data.pixels)
    cache_seconds = time.perf_counter() - started
    optimizer = torch.optim.AdamW([t for t in model.parameters() if t.requires_grad], lr=1e-4)

    def pixels(batch):
        return {**{k: v for k, v in batch.items() if k != "image_rows"}, "pixel_values": data.pixels[batch["image_rows"]]}

    def cached(batch):
        return with_image_features(model, features, batch)

    timed_steps(model, optimizer, batches[:2], pixels)  # warm-up
    best = {"pixels": float("inf"), "cached": float("inf")}
    for _ in range(a.repeats):
        best["pixels"] = min(best["pixels"], timed_steps(model, optimizer, batches, pixels))
        best["cached"] = min(best["cached"], timed_steps(model, optimizer, batches, cached))
    print(f"tiny LLaVA captioning step, batch {p['batch_size']}, {len(samples)} train images, {a.threads} threads, "
          f"best of {a.repeats} × {a.steps} steps")  # fmt: skip
    print(f"  pixels through the frozen tower: {best['pixels'] * 1000:7.1f} ms/step")
    print(f"  cached tower features (ours):    {best['cached'] * 1000:7.1f} ms/step   {best['pixels'] / best['cached']:.2f}x")
    print(f"  caching every image once: {cache_seconds:.1f} s, the time of {cache_seconds / best['pixels']:.0f} reference steps")


if __name__ == "__main__":
    main()
