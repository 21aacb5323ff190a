"""Concept-level maths of the representation shift between an original and a fine-tuned model.

Samples are assigned to concepts of a dictionary learned on the original model; the
per-sample shifts are aggregated per concept and compared with a dictionary learned on
the fine-tuned model (Khayatan et al., "Analyzing Fine-tuning Representation Shift for
Multimodal LLMs Steering", ICCV 2025).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import trim_mean

from mmconcepts.errors import MMConceptsError

AGGREGATES = ("mean", "median", "trimmed")


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise MMConceptsError(f"{name} must be a 2-D array, got shape {x.shape}")
    return x


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; zero rows stay zero so that their cosines are 0."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def assign(activations: np.ndarray) -> np.ndarray:
    """Index of each sample's most activated concept (ties: lowest index)."""
    return np.argmax(_matrix(activations, "activations"), axis=1)


def concept_shifts(
    deltas: np.ndarray, assignment: np.ndarray, k: int, aggregate: str = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-concept aggregate of the sample shifts (K×D, NaN rows for empty concepts) and the counts."""
    deltas = _matrix(deltas, "deltas")
    assignment = np.asarray(assignment)
    if aggregate not in AGGREGATES:
        raise MMConceptsError(f"unknown aggregate {aggregate!r}; choose one of {', '.join(AGGREGATES)}")
    if assignment.shape != (len(deltas),):
        raise MMConceptsError(f"assignment has shape {assignment.shape} but deltas has {len(deltas)} rows")
    if len(assignment) and (assignment.min() < 0 or assignment.max() >= k):
        raise MMConceptsError(f"assignment holds concepts outside 0..{k - 1}")
    reduce = {
        "mean": lambda x: x.mean(axis=0),
        "median": lambda x: np.median(x, axis=0),
        "trimmed": lambda x: trim_mean(x, 0.1, axis=0),
    }[aggregate]
    shifts = np.full((k, deltas.shape[1]), np.nan)
    counts = np.bincount(assignment, minlength=k)
    for c in np.flatnonzero(counts):
        shifts[c] = reduce(deltas[assignment == c])
    return shifts, counts


def cosine_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two equal-shape matrices; 0 where a norm is 0, NaN where a row is NaN."""
    A, B = _matrix(A, "A"), _matrix(B, "B")
    if A.shape != B.shape:
        raise MMConceptsError(f"cosine_rows needs equal shapes, got {A.shape} and {B.shape}")
    denom = np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom == 0, 0.0, np.einsum("ij,ij->i", A, B) / denom)


def match_concepts(Ua: np.ndarray, Ub: np.ndarray) -> np.ndarray:
    """Permutation perm with Ua[k] matched to Ub[perm[k]], maximising the total cosine (Hungarian)."""
    Ua, Ub = _matrix(Ua, "Ua"), _matrix(Ub, "Ub")
    if Ua.shape != Ub.shape:
        raise MMConceptsError(f"Ua has shape {Ua.shape} but Ub has shape {Ub.shape}")
    rows, cols = linear_sum_assignment(-(_unit_rows(Ua) @ _unit_rows(Ub).T))
    return cols[np.argsort(rows)]


def improvements(U: np.ndarray, S: np.ndarray, D: np.ndarray) -> dict[str, np.ndarray]:
    """How much closer the shifted concepts S are to the matched fine-tuned concepts D than U is."""
    U, S, D = _matrix(U, "U"), _matrix(S, "S"), _matrix(D, "D")
    cos_u, cos_s = cosine_rows(D, U), cosine_rows(D, S)
    dist_u, dist_s = np.linalg.norm(D - U, axis=1), np.linalg.norm(D - S, axis=1)
    cosine, distance = cos_s - cos_u, dist_u - dist_s
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "improved_cosine": cosine,
            "improved_distance": distance,
            "improved_cosine_normalised": np.where(cos_u == 0, np.nan, cosine / np.abs(cos_u)),
            "improved_distance_normalised": np.where(dist_u == 0, np.nan, distance / dist_u),
        }


def _mean_pair_dot(x: np.ndarray) -> float:
    # Sum over pairs i<j of x_i·x_j = (‖Σx‖² − Σ‖x‖²)/2, without the N×N Gram matrix.
    n = len(x)
    total = x.sum(axis=0)
    pair_sum = (total @ total - np.einsum("ij,ij->", x, x)) / 2
    return pair_sum / (n * (n - 1) / 2)


def consistency(deltas: np.ndarray, assignment: np.ndarray, Delta: np.ndarray) -> dict[str, np.ndarray]:
    """Per concept: how aligned its samples' shifts are with each other and with the concept shift."""
    deltas, Delta = _matrix(deltas, "deltas"), _matrix(Delta, "Delta")
    assignment = np.asarray(assignment)
    if assignment.shape != (len(deltas),):
        raise MMConceptsError(f"assignment has shape {assignment.shape} but deltas has {len(deltas)} rows")
    k = len(Delta)
    out = {key: np.full(k, np.nan) for key in ("pairwise_cosine", "pairwise_dot", "cosine_with_shift", "shift_norm")}
    for c in range(k):
        x = deltas[assignment == c]
        if len(x) == 0:
            continue
        if len(x) >= 2:
            out["pairwise_cosine"][c] = _mean_pair_dot(_unit_rows(x))
            out["pairwise_dot"][c] = _mean_pair_dot(x)
        out["cosine_with_shift"][c] = cosine_rows(x, np.broadcast_to(Delta[c], x.shape)).mean()
        out["shift_norm"][c] = np.linalg.norm(Delta[c])
    return out


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson r over entries finite in both; None with fewer than 3 such entries or a constant side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise MMConceptsError(f"pearson needs equal shapes, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def overlap_counts(a: list[list], b: list[list]) -> list[int]:
    """Per position, the number of items the two lists share."""
    if len(a) != len(b):
        raise MMConceptsError(f"overlap_counts needs lists of equal length, got {len(a)} and {len(b)}")
    return [len(set(x) & set(y)) for x, y in zip(a, b)]


def random_like(Delta: np.ndarray, seed: int) -> np.ndarray:
    """Seeded random directions with the norms of Delta's rows: the chance baseline for the shifts."""
    Delta = _matrix(Delta, "Delta")
    directions = _unit_rows(np.random.default_rng(seed).standard_normal(Delta.shape))
    return directions * np.linalg.norm(Delta, axis=1, keepdims=True)


def fraction_with(word_lists: list[list[str] | None], planted: set[str]) -> float | None:
    """Fraction of the given (non-None) word lists holding at least one planted word."""
    present = [words for words in word_lists if words is not None]
    if not present:
        return None
    return sum(bool(planted & set(words)) for words in present) / len(present)


def majority(values: list) -> object:
    """Most common value; ties go to the value seen first."""
    if not values:
        raise MMConceptsError("majority needs at least one value")
    return Counter(values).most_common(1)[0][0]


def chance_threshold(lexicon_size: int, planted: int, n_words: int, level: float = 0.05) -> int:
    """The fewest planted words among ``n_words`` words that a random draw from the lexicon reaches with
    probability at most ``level`` (hypergeometric). 1 on real vocabularies: any planted word counts;
    more on a tiny one, where ``n_words`` words are a large part of the lexicon."""
    from scipy.stats import hypergeom

    n = min(n_words, lexicon_size)
    for m in range(1, min(planted, n) + 1):
        if hypergeom.sf(m - 1, lexicon_size, planted, n) <= level:
            return m
    return min(planted, n) + 1  # no count is rare enough: nothing passes
