"""Images per second of captioning and extraction, and what each of the scale features gains.

    .venv/bin/python bench/extraction.py [MODEL_DIR] [--images N] [--batch-size B] [--split-images N]

Side by side, measured in this run, each as a ratio against its reference:
  - captioning and extraction at batch size 1 against the default batch size;
  - extraction of block 2 of 4: the whole forward pass against the pass that stops there;
  - captioning a split's images from disk: no loader workers against 2 (prefetch);
  - captioning and extracting a split with Snakemake under --cores 2: one job against
    two shards of one thread each (--split-images images of the world's test split).

MODEL_DIR defaults to the trained shapes-world LLaVA (resources/models/shapes-llava,
built by the workflow's train_lmm rule); when it is missing, a random LLaVA of the
same size is built with the tests' helper. Images come from the shapes world when it
exists, else are noise; the prefetch and shard figures need the world and the model.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the stages' progress bars would bury the table
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


def interleaved_rates(ways: list[tuple], items: list, repeats: int) -> list[float]:
    """Best items per second of each (fn, batch_size) over ``repeats`` interleaved rounds: the least disturbed by other load."""
    best = [0.0] * len(ways)
    for _ in range(repeats):
        for i, (fn, batch_size) in enumerate(ways):
            best[i] = max(best[i], rate(fn, items, batch_size))
    return best


def best_rates(fn, items: list, batch_size: int, repeats: int) -> tuple[float, float]:
    """Batch size 1 against ``batch_size``."""
    one, many = interleaved_rates([(fn, 1), (fn, batch_size)], items, repeats)
    return one, many


def parser(doc: str) -> argparse.ArgumentParser:
    """The arguments the generation benchmarks share: model, images, batch size, repeats."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, default=REPO / "resources/models/shapes-llava")
    ap.add_argument("--world", type=Path, default=REPO / "resources/worlds/shapes")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--split-images", type=int, default=1000, help="test images captioned by the prefetch and shard runs")
    return ap


def row(name: str, reference: str, ours: str, ref_value: float, our_value: float, unit: str, faster_is_higher: bool) -> str:
    ratio = our_value / ref_value if faster_is_higher else ref_value / our_value
    return f"{name:<34}{reference + ':':<26}{ref_value:>8.1f} {unit:<6}{ours + ':':<24}{our_value:>8.1f} {unit:<6}{ratio:>6.2f}x"


def prefetch_rates(adapter, world: Path, n: int, batch_size: int, max_new_tokens: int, repeats: int) -> tuple[float, float]:
    """Images per second of caption_split over the test split's first n images, no workers and 2 workers."""
    from mmconcepts.concepts.captioning import caption_split
    from mmconcepts.data.karpathy import load_karpathy

    samples = load_karpathy(world / "captions.json", world, split="test", limit=n)
    best = {0: float("inf"), 2: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for workers in (0, 2):
                start = time.perf_counter()
                caption_split(adapter, samples, Path(tmp) / f"{workers}.jsonl", instruction=INSTRUCTION,
                              batch_size=batch_size, max_new_tokens=max_new_tokens, workers=workers)  # fmt: skip
                best[workers] = min(best[workers], time.perf_counter() - start)
    return len(samples) / best[0], len(samples) / best[2]


def snakemake_seconds(model: Path, world: Path, n: int, shard_size: int, threads: int) -> float:
    """Wall time of Snakemake captioning and extracting n test images under --cores 2, from no results."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "resources/worlds").mkdir(parents=True)
        (work / "resources/models").mkdir(parents=True)
        (work / "resources/worlds/shapes").symlink_to(world.resolve())
        (work / "resources/models/shapes-llava").symlink_to(model.resolve())
        cmd = [
            str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--cores", "2", "--quiet", "all",
            "--config", f"scale={{shard_size: {shard_size}, workers: 0}}", f"datasets={{shapes: {{limit: {{test: {n}}}}}}}",
            "--set-threads", f"captions={threads}", f"extract={threads}",
            "--", "results/shapes-llava/circle/features/test",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - start


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

        def extract(batch, read=layers, stop_early=True):
            # The longest read: the last generated token of each caption.
            gen = [captions[i] for i in batch]
            hidden_states_at(adapter, [images[i] for i in batch], prompt, gen, [len(g) - 1 for g in gen], read, stop_early)

        order = list(range(a.images))
        caption(order[:2])  # warm-up: first-call allocations and lazy imports
        rows = []
        for name, fn in (("captioning", caption), ("extraction, every layer", extract)):
            one, many = best_rates(fn, order, a.batch_size, a.repeats)
            rows.append(row(name, "batch size 1", f"batch size {a.batch_size}", one, many, "img/s", True))
        mean_len = np.mean([len(c) for c in captions.values()])

        middle = str(adapter.n_layers // 2)
        full, stopped = interleaved_rates(
            [(lambda b: extract(b, [middle], False), a.batch_size), (lambda b: extract(b, [middle], True), a.batch_size)],
            order, a.repeats,
        )  # fmt: skip
        rows.append(
            row(f"extraction, block {middle} of {adapter.n_layers}", "whole pass", "stop after the block", full, stopped, "img/s", True)
        )

        if a.world.is_dir() and a.model.is_dir():
            none, ahead = prefetch_rates(adapter, a.world, a.split_images, a.batch_size, a.max_new_tokens, a.repeats)
            rows.append(row(f"captioning {a.split_images} images", "no loader workers", "2 loader workers", none, ahead, "img/s", True))
            one_job = snakemake_seconds(a.model, a.world, a.split_images, 100000, 2)
            shard_size = -(-a.split_images // 2)
            two_jobs = snakemake_seconds(a.model, a.world, a.split_images, shard_size, 1)
            rows.append(row("split, snakemake --cores 2", "1 job, 2 threads", "2 shards, 1 thread each", one_job, two_jobs, "s", False))
        else:
            print(f"(no prefetch or shard figures: {a.world} or {a.model} is missing)")

        print(f"mean caption length: {mean_len:.1f} tokens; layers read: {len(layers)}; best of {a.repeats} runs")
        for line in rows:
            print(line)


if __name__ == "__main__":
    main()
