"""Images per second of the whole mutual-knowledge explanation: batched (ours) against one image at a time.

    .venv/bin/python bench/mutual.py [--model DIR] [--classes DIR] [--batch-size B] [--repeats R] [--device D]

The authors' notebook explains one image at a time: each forward pass of the vision encoder
holds one image (the image, then each of its visual prompts, then each perturbed copy). Ours
gathers every image's prompts and perturbations and encodes them ``--batch-size`` at a time.
Both run the same code (mmconcepts.mutual.explain.explain_model, both methods) on the same
model and images, differing only in the batch size; the class-level steps (foreground,
concepts) are the same in both. Rates are measured in this run, interleaved, best of
``--repeats``, with the settings of config.yaml's shapes-classes entry. Defaults: the default
run's widest trained CLIP of the family and the world's class set, when present; else a tiny
CLIP trained for a few steps on a small world built here (the rates then compare the same work;
the explanations mean nothing).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

DEFAULT_MODEL = Path("resources/models/clip-family/w128/w128-s250")
DEFAULT_CLASSES = Path("resources/worlds/shapes/classes")


def _inputs(a, tmp: Path) -> tuple[Path, Path, str]:
    if a.model.is_dir() and a.classes.is_dir():
        return a.model, a.classes, f"{a.model} on {a.classes}"
    from mmconcepts.shapes.clip_family import train_width
    from mmconcepts.shapes.world import generate_world

    world = tmp / "world"
    generate_world(world, n_train=16, n_val=0, n_test=1, classes_per_shape=20, classes_train_per_shape=50)
    train_width(world, tmp / "w128", 128, widths=[128], steps=20, checkpoints=[20], warmup=5)
    return tmp / "w128" / "w128-s20", world / "classes", "a tiny CLIP trained 20 steps on a world built here"


def main() -> None:
    from mmconcepts.data.classification import load_classification
    from mmconcepts.mutual.encoders import ClipEncoders
    from mmconcepts.mutual.explain import explain_model
    from mmconcepts.mutual.settings import mutual_settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--classes", type=Path, default=DEFAULT_CLASSES)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model, classes, desc = _inputs(a, Path(tmp))
        data = load_classification(classes / "images", classes / "descriptors.json", classes / "templates.json", classes / "classes.json")
        enc = ClipEncoders.load("bench", {"path": str(model)}, device=a.device)
        settings = yaml.safe_load(Path("config.yaml").read_text())["mutual"]["shapes-classes"]["settings"]
        print(f"model: {desc}; {len(data.images)} images, {len(data.classes)} classes; settings {settings}; "
              f"device {enc.device}; torch threads: {torch.get_num_threads()}")  # fmt: skip

        def rate(batch_size: int) -> float:
            enc.batch_size = batch_size
            started = time.perf_counter()
            explain_model(enc, data, mutual_settings(**settings, batch_size=batch_size), progress=False)
            return len(data.images) / (time.perf_counter() - started)

        one, many = 0.0, 0.0
        for _ in range(a.repeats):
            one = max(one, rate(1))
            many = max(many, rate(a.batch_size))
        print(f"explanation (both methods), images/s: one image at a time {one:.2f}, batch size {a.batch_size} {many:.2f} "
              f"({many / one:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
