"""Images per second of captioning and extraction, batch size 1 against the default batch size.

    .venv/bin/python bench/extraction.py [MODEL_DIR] [--images N] [--batch-size B]

MODEL_DIR defaults to the trained shapes-world LLaVA (resources/models/shapes-llava,
built by the workflow's train_lmm rule); when it is missing, a random LLaVA of the
same size is built with the tests' helper. Images come from the shapes world when it
exists, else are noise. Both figures are measured in this run and printed as ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
INSTRUCTION = "Provide a one-sentence caption for the provided image."


def load_model(path: Path, tmp: Path):
    from mmconcepts.models.registry import load_adapter

    if path.is_dir():
        return load_adapter("llava", str(path), dtype="float32", device="cpu"), f"trained model {path}"
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_lmms import build_llava

    # The shapes-llava default architecture: 128 wide, 4 blocks, 64-pixel images.
    built = build_llava(tmp / "random-llava", hidden=128, layers=4, image_size=64)
    return load_adapter("llava", str(built), dtype="float32", device="cpu"), f"random LLaVA ({path} is missing)"


def load_images(n: int, world: Path) -> tuple[list[Image.Image], str]:
    files = sorted(world.glob("**/*.png"))[:n]
    if len(files) == n:
        return [Image.open(f).convert("RGB") for f in files], f"shapes world {world}"
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(n)], "noise"


def rate(fn, items: list, batch_size: int) -> float:
    """Items per second of fn over consecutive batches."""
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        fn(items[i : i + batch_size])
    return len(items) / (time.perf_counter() - start)


def best_rates(fn, items: list, batch_size: int, repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` interleaved runs at batch size 1 and batch_size: the least disturbed by other load."""
    runs = [(rate(fn, items, 1), rate(fn, items, batch_size)) for _ in range(repeats)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


def parser(doc: str) -> argparse.ArgumentParser:
    """The arguments the generation benchmarks share: model, images, batch size, repeats."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, default=REPO / "resources/models/shapes-llava")
    ap.add_argument("--world", type=Path, default=REPO / "resources/worlds/shapes")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    return ap


def main() -> None:
    from mmconcepts.concepts.extraction import hidden_states_at
    from mmconcepts.models.generation import greedy_generate

    a = parser(__doc__).parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        adapter, model_desc = load_model(a.model, Path(tmp))
        images, image_desc = load_images(a.images, a.world)
        prompt = adapter.caption_prompt(INSTRUCTION)
        layers = [*map(str, range(1, adapter.n_layers + 1)), "final"]
        print(f"model: {model_desc}; images: {a.images} from {image_desc}; torch threads: {torch.get_num_threads()}")

        captions = {}

        def caption(batch):
            for i, ids in zip(batch, greedy_generate(adapter, [images[i] for i in batch], prompt, a.max_new_tokens)):
                captions[i] = ids

        def extract(batch):
            # The longest read: the last generated token of each caption, every layer.
            gen = [captions[i] for i in batch]
            hidden_states_at(adapter, [images[i] for i in batch], prompt, gen, [len(g) - 1 for g in gen], layers)

        order = list(range(a.images))
        caption(order[:2])  # warm-up: first-call allocations and lazy imports
        stages = (("captioning", caption), ("extraction", extract))
        rows = [(name, *best_rates(fn, order, a.batch_size, a.repeats)) for name, fn in stages]
        mean_len = np.mean([len(c) for c in captions.values()])
        print(f"mean caption length: {mean_len:.1f} tokens; layers read: {len(layers)}; best of {a.repeats} runs")
        print(f"{'stage':<12}{'bs=1 img/s':>12}{f'bs={a.batch_size} img/s':>14}{'ratio':>8}")
        for name, one, many in rows:
            print(f"{name:<12}{one:>12.1f}{many:>14.1f}{many / one:>7.1f}x")


if __name__ == "__main__":
    main()
