"""How good generated captions of the shapes world are: the tiny LMM's quality gate."""

from __future__ import annotations

from mmconcepts.shapes.world import COLOURS, SHAPES, caption_tokens


def _edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, wb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (wa != wb))
    return row[-1]


def word_accuracy(caption: str, references: list[str]) -> float:
    """1 − word error rate against the closest reference, floored at 0."""
    words = caption_tokens(caption)
    best = 0.0
    for ref in references:
        ref_words = caption_tokens(ref)
        best = max(best, 1 - _edit_distance(words, ref_words) / max(1, len(ref_words)))
    return best


def first_of(caption: str, vocabulary) -> str | None:
    """The first word of the caption that is in ``vocabulary`` (the main object comes first in every template)."""
    return next((w for w in caption_tokens(caption) if w in vocabulary), None)


def caption_quality(captions: list[str], references: list[list[str]], factors: list[dict]) -> dict:
    """Mean word accuracy, exact matches, and how often the main shape and colour are named right."""
    n = len(captions)
    exact = sum(caption_tokens(c) in [caption_tokens(r) for r in refs] for c, refs in zip(captions, references))
    return {
        "images": n,
        "word_accuracy": sum(word_accuracy(c, refs) for c, refs in zip(captions, references)) / n,
        "exact_match": exact / n,
        "shape_accuracy": sum(first_of(c, SHAPES) == f["shape"] for c, f in zip(captions, factors)) / n,
        "colour_accuracy": sum(first_of(c, COLOURS) == f["colour"] for c, f in zip(captions, factors)) / n,
    }
