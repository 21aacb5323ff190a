"""What the two tiny-model trainers share: settings, world data, seeding, the LR schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mmconcepts.data.karpathy import Sample, load_karpathy
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb


def world_split(world_dir, split: str, captions=None) -> tuple[list[Sample], list]:
    """The samples of one split of a generated world and their images (RGB PIL).

    ``captions``: another captions file of the world's images (a style's); default its own.
    """
    world_dir = Path(world_dir)
    captions = Path(captions) if captions else world_dir / "captions.json"
    samples = load_karpathy(captions, world_dir, split=split)
    if not samples:
        raise MMConceptsError(f"{captions}: no images in split {split!r}")
    images = [open_rgb(s.path) for s in samples]
    missing = [str(s.path) for s, im in zip(samples, images) if im is None]
    if missing:
        raise MMConceptsError(f"{world_dir}: {len(missing)} unreadable image(s), e.g. {missing[0]}")
    return samples, images


def batch_order(rng: np.random.Generator, n: int, batch_size: int, steps: int):
    """Per step, the indices of its batch: shuffled epochs, reshuffled each time they run out."""
    pool: list[int] = []
    for _ in range(steps):
        while len(pool) < batch_size:
            pool.extend(rng.permutation(n).tolist())
        yield pool[:batch_size]
        del pool[:batch_size]


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
