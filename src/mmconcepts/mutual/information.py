"""The mutual-knowledge score between CLIP's two encoders, its dynamics and their summaries.

Sammani & Deligiannis (NeurIPS 2024), sections 1(e), 1(f), 2 and 3 of the reference notes.
The vision side D_v (an image's descriptors, in importance order) and the language side
D_ŷ (the predicted class's top-u descriptors) are sets of integer indices into the
descriptor bank D; their overlap is the shared ("mutual") knowledge. Removing D_v's
entries most important first and rescoring gives the MI curve; its AUC summarises how
much is shared and how deep in the importance order it sits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from mmconcepts.errors import MMConceptsError

SENTINEL = -1
"""Marks a removed slot of D_v in the dynamics: it never matches a descriptor (indices are ≥ 0)."""

Score = Callable[[Sequence[int], Sequence[int]], float]


# ---------------------------------------------------------------- language side


def language_side(class_descriptor_sim: np.ndarray, u: int = 50) -> np.ndarray:
    """D_ŷ: the top-u descriptor indices by text similarity to the predicted class, largest first.

    Ties go to the lower index (stable sort). The paper never states u; the authors' demo
    uses 50. A u above D means all of D.
    """
    sim = np.asarray(class_descriptor_sim, dtype=np.float64)
    if sim.ndim != 1 or sim.size == 0:
        raise MMConceptsError(f"class_descriptor_sim must be a non-empty 1-D array, got shape {sim.shape}")
    if not np.isfinite(sim).all():
        raise MMConceptsError("class_descriptor_sim holds NaN or infinite values")
    if isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u < 1:
        raise MMConceptsError(f"u must be a positive integer, got {u!r}")
    return np.argsort(-sim, kind="stable")[: int(u)].astype(np.int64)


# ---------------------------------------------------------------- scores


def _ids(x: Sequence[int], name: str, sentinel_ok: bool) -> list[int]:
    """Integer descriptor ids, ≥ 0 and distinct (the sentinel −1 repeatable where allowed)."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise MMConceptsError(f"{name} must be a 1-D sequence of descriptor indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise MMConceptsError(f"{name} must hold integer descriptor indices, got dtype {arr.dtype}")
    ids = [int(v) for v in arr]
    real = [v for v in ids if not (sentinel_ok and v == SENTINEL)]
    if any(v < 0 for v in real):
        raise MMConceptsError(f"{name} holds negative descriptor indices")
    if len(set(real)) != len(real):
        raise MMConceptsError(f"{name} holds a descriptor more than once; D_v and D_ŷ are sets")
    return ids


def _counts(dv: Sequence[int], dy: Sequence[int]) -> tuple[int, int, int]:
    """N = |D_v| (removed slots included), u = |D_ŷ|, m = |D_v ∩ D_ŷ|."""
    v = _ids(dv, "dv", sentinel_ok=True)
    y = _ids(dy, "dy", sentinel_ok=False)
    return len(v), len(y), len(set(v) & set(y))


def mi_score(dv: Sequence[int], dy: Sequence[int]) -> float:
    """The authors' code: log(N·u·m) when m ≥ 1, else 0 (the default score).

    This is Eq. (1) with the sign of the joint entropy flipped to "+H" (as the appendix's
    Eq. (9) and the code write it), so in effect a monotone overlap count rather than a true
    mutual information. Table 3's values (up to 8.19 > log(15·50)) fit this version.
    """
    n, u, m = _counts(dv, dy)
    return math.log(n * u * m) if m >= 1 else 0.0


def mi_eq1(dv: Sequence[int], dy: Sequence[int]) -> float:
    """Eq. (1) taken literally: log(N·u/m) when m ≥ 1, else 0 (a named variant, not the default).

    I = H(X) + H(Y) − H(X, Y). Each set is uniform over its entries, so H(X) = log N and
    H(Y) = log u. The joint is the contingency table T_ij = 1[X_i = Y_j], normalised: it is
    uniform over the m matching pairs, so H(X, Y) = log m. Hence I = log N + log u − log m.
    With no match the table is all zeros and has no distribution; 0 mirrors the code's score.
    """
    n, u, m = _counts(dv, dy)
    return math.log(n * u / m) if m >= 1 else 0.0


SCORES: dict[str, Score] = {"code": mi_score, "eq1": mi_eq1}


def _score_function(score: Score | str) -> Score:
    """A score given as a callable or by its name in SCORES."""
    if isinstance(score, str):
        if score not in SCORES:
            raise MMConceptsError(f"unknown MI score {score!r}; choose one of {', '.join(SCORES)}")
        return SCORES[score]
    if not callable(score):
        raise MMConceptsError(f"score must be a callable or one of {', '.join(SCORES)}, got {score!r}")
    return score


# ---------------------------------------------------------------- dynamics and summaries


def mi_dynamics(dv: Sequence[int], dy: Sequence[int], score: Score | str = mi_score) -> np.ndarray:
    """The MI curve, length N+1: at step t the top-t entries of D_v (importance order) are removed.

    Removed entries become a sentinel that never matches, so N stays |D_v| at every step,
    as in the authors' code. ``score`` is a callable or a name in SCORES ("code", "eq1").
    """
    fn = _score_function(score)
    ids = _ids(dv, "dv", sentinel_ok=False)
    _ids(dy, "dy", sentinel_ok=False)
    return np.array([fn([SENTINEL] * t + ids[t:], dy) for t in range(len(ids) + 1)], dtype=np.float64)


def _curve(curve: np.ndarray) -> np.ndarray:
    arr = np.asarray(curve, dtype=np.float64)
    if arr.ndim != 1:
        raise MMConceptsError(f"a curve must be a 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MMConceptsError("a curve holds NaN or infinite values")
    return arr


def pad_curve(curve: np.ndarray, length: int = 16) -> np.ndarray:
    """The curve zero-padded to ``length`` (16 = the longest curve, N = 15, plus t = 0)."""
    arr = _curve(curve)
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise MMConceptsError(f"length must be a positive integer, got {length!r}")
    if arr.size > length:
        raise MMConceptsError(f"a curve of length {arr.size} is longer than the padding length {length}")
    out = np.zeros(int(length), dtype=np.float64)
    out[: arr.size] = arr
    return out


def mean_curve(curves: Sequence[np.ndarray], length: int = 16) -> np.ndarray:
    """The curves zero-padded to ``length`` and averaged over images, point by point."""
    if len(curves) == 0:
        raise MMConceptsError("no curves to average")
    return np.mean([pad_curve(c, length) for c in curves], axis=0)


def auc(curves: Sequence[np.ndarray], length: int = 16) -> float:
    """The MI AUC as the authors' code computes it: the mean of the averaged padded curve's points.

    Not a trapezoidal area: every point, padding included, weighs 1/length.
    """
    return float(mean_curve(curves, length).mean())


def curve_area(values: Sequence[float]) -> float:
    """Trapezoidal area under a Deletion/Insertion/AccDrop/AccInc curve, unit spacing between steps.

    The paper does not state the normalisation. Unit steps (not a [0, 1] axis) make the
    area grow with the number of concepts removed, as Table 1's magnitudes (2.4-3.4 for a
    class score 2.5·cos over 5 concepts) suggest. One point gives 0.
    """
    arr = _curve(values)
    if arr.size == 0:
        raise MMConceptsError("an empty curve has no area")
    return float(np.trapezoid(arr))


def correlations(x: Sequence[float], y: Sequence[float]) -> dict[str, float | int | None]:
    """Pearson and Spearman r of y against x (e.g. top-1 against AUC across models), with n.

    With fewer than 3 points a correlation says nothing (two points always give ±1), and
    with a constant input it is undefined (scipy returns NaN with a warning): both values
    are then None, which serialises to JSON null, rather than NaN.
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != ys.shape:
        raise MMConceptsError(f"x and y must be 1-D of the same length, got shapes {xs.shape} and {ys.shape}")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise MMConceptsError("x or y holds NaN or infinite values")
    n = int(xs.size)
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return {"pearson": None, "spearman": None, "n": n}
    return {
        "pearson": float(stats.pearsonr(xs, ys).statistic),
        "spearman": float(stats.spearmanr(xs, ys).statistic),
        "n": n,
    }
