"""The tiny CLIP family's training settings, apart from the trainer so that config checks need no torch."""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.params import merge_params

FAMILY_DEFAULTS = {
    "seed": 0,
    "widths": [64, 128],  # vision and text width of each architecture
    "layers": 2,
    "patch_size": 8,
    "embed_dim": 64,
    "steps": 300,
    "checkpoints": [0, 25, 60, 300],  # steps at which each width is saved (0: random weights)
    "batch_size": 128,
    "lr": 1e-3,
    "warmup": 30,
    "weight_decay": 0.05,
    "gap": "background",  # the attribute no training text names
    "eval_batch_size": 250,
    "threads": None,
}
GAPS = ("background", "colour")
HEAD_WIDTH = 32


def family_params(**params) -> dict:
    p = merge_params(FAMILY_DEFAULTS, params, "clip_family", positive=("steps", "batch_size", "layers", "patch_size", "embed_dim"))
    for key in ("widths", "checkpoints"):
        values = p[key]
        if not isinstance(values, list) or not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise MMConceptsError(f"clip_family: {key} must be a non-empty list of integers, not {values!r}")
        if len(set(values)) != len(values):
            raise MMConceptsError(f"clip_family: {key} lists a value twice: {values}")
    bad = [w for w in p["widths"] if w < HEAD_WIDTH or w % HEAD_WIDTH]
    if bad:
        raise MMConceptsError(f"clip_family: widths {bad} must be multiples of {HEAD_WIDTH} (the attention head width)")
    late = [s for s in p["checkpoints"] if not 0 <= s <= p["steps"]]
    if late:
        raise MMConceptsError(f"clip_family: checkpoints {late} must lie in 0…steps ({p['steps']})")
    if p["gap"] not in GAPS:
        raise MMConceptsError(f"clip_family: gap must be one of {', '.join(GAPS)}, not {p['gap']!r}")
    return p


def model_name(width: int, step: int) -> str:
    """A family member's name and folder: ``w<width>-s<step>``."""
    return f"w{width}-s{step}"
