"""What the two tiny-model trainers share: settings, world data, seeding, the LR schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mmconcepts.data.karpathy import Sample, load_karpathy
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb


def merge_params(defaults: dict, params: dict, where: str, positive=()) -> dict:
    """The defaults updated with ``params``, checked against their types; errors name the key.

    Numbers must be non-negative, and those named in ``positive`` at least 1.
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise MMConceptsError(f"{where}: unknown key(s) {unknown}; known: {', '.join(defaults)}")
    p = {**defaults, **params}
    for key, default in defaults.items():
        value = p[key]
        if isinstance(default, str) and not isinstance(value, str):
            raise MMConceptsError(f"{where}: {key} must be a string, not {value!r}")
        if key == "threads" and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise MMConceptsError(f"{where}: threads must be a positive integer, not {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise MMConceptsError(f"{where}: {key} must be a non-negative number, not {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise MMConceptsError(f"{where}: {key} must be an integer, not {value!r}")
            p[key] = type(default)(value)
    for key in positive:
        if p[key] < 1:
            raise MMConceptsError(f"{where}: {key} must be at least 1, not {p[key]!r}")
    return p


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
