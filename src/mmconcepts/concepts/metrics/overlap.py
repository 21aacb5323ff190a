"""Overlap between the concepts' grounded words (DESIGN.md; lower is more disentangled)."""

from __future__ import annotations


def overlap(word_lists: list[list[str]]) -> float:
    """Mean over ordered pairs i != j of |T_i ∩ T_j| / |T_i|.

    Words are compared as exact strings and each T_i as a set, so a repeated
    word counts once. An empty T_i contributes 0 to its K - 1 pairs (as in the
    reference code) instead of being dropped; fewer than 2 concepts give 0.0.
    """
    sets = [set(words) for words in word_lists]
    k = len(sets)
    if k < 2:
        return 0.0
    total = sum(len(a & b) / len(a) for i, a in enumerate(sets) if a for j, b in enumerate(sets) if j != i)
    return total / (k * (k - 1))
