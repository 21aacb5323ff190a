"""Recovery of the shapes world's ground-truth factors by the concept activations.

For every factor value that some but not all samples have, each concept's
activation is scored as a detector of that value (AUROC against the indicator
"sample has this value"), and the best concept is kept.

AUROC below 0.5 is taken as it is for methods whose activation has a meaningful
sign (non-negative codes, 1 / (1 + distance)): a concept that fires when a value
is absent is not a detector of that value, and flipping would credit any concept
for the complement of a binary factor. A sign-free method (PCA) is different:
u and −u are equally its solution and the solver's pick between them is
arbitrary, so the concept is the axis, and max(AUROC, 1 − AUROC) is the AUROC of
its better-signed direction.

The linear probe is the ceiling a single concept is measured against: the AUROC
of a logistic regression on all test features, from cross-validated scores.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmconcepts.errors import MMConceptsError

PROBE_FOLDS = 5


def _matrix(x, name: str, factors: list[dict]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise MMConceptsError(f"recovery: {name}s must be N × K with K ≥ 1, got shape {a.shape}")
    if a.shape[0] != len(factors):
        raise MMConceptsError(f"recovery: {a.shape[0]} {name} rows but {len(factors)} factor records")
    if not np.isfinite(a).all():
        raise MMConceptsError(f"recovery: {name}s contain NaN or infinity")
    return a


def column_aurocs(y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """AUROC of every column of ``a`` (N × K) as a detector of the boolean labels ``y``, at once.

    The Mann–Whitney form, ties counted half as ``roc_auc_score`` does; one call instead of K,
    since sklearn's per-call input checks took 5 of an evaluation job's 20 seconds.
    """
    ranks = rankdata(a, axis=0)  # average ranks for ties
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    return (ranks[y].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _factor_values(factors: list[dict[str, str]]) -> Iterator[tuple[str, str, np.ndarray]]:
    """(factor, value, indicator) for every value held by some but not all samples, by factor then value.

    A sample without a factor counts as not having any of its values.
    """
    for factor in sorted({f for record in factors for f in record}):
        column = [record.get(factor) for record in factors]
        for value in sorted({v for v in column if v is not None}, key=str):
            y = np.array([v == value for v in column])
            if not y.all():  # AUROC needs both classes
                yield factor, value, y


def recovery(activations: np.ndarray, factors: list[dict[str, str]], sign_free: bool = False) -> dict:
    """``{"mean": float, "table": [{"factor", "value", "n_positive", "auroc", "concept"}]}``.

    ``activations`` is N × K (test samples × concepts), ``factors`` the N samples'
    ``{factor: value}``. ``sign_free``: score each concept by its better sign (PCA
    only, see the module's docstring). Ties between concepts go to the lowest index.
    """
    a = _matrix(activations, "activation", factors)
    table = []
    for factor, value, y in _factor_values(factors):
        aurocs = column_aurocs(y, a)
        if sign_free:
            aurocs = np.maximum(aurocs, 1.0 - aurocs)
        best = int(np.argmax(aurocs))
        row = {"factor": factor, "value": value, "n_positive": int(y.sum()), "auroc": float(aurocs[best]), "concept": best}
        table.append(row)
    if not table:
        raise MMConceptsError("recovery: no factor value is held by some but not all samples")
    return {"mean": float(np.mean([row["auroc"] for row in table])), "table": table}


def probe_auroc(features: np.ndarray, factors: list[dict[str, str]], seed: int = 0) -> dict[tuple[str, str], float | None]:
    """Per (factor, value) that ``recovery`` scores: the AUROC of a linear probe on the features.

    Standardised features, logistic regression, decision scores from stratified
    cross-validation (5 folds, fewer when a class has fewer samples, seeded). None
    for a value with fewer than 2 positives or 2 negatives: too few to cross-validate.
    """
    X = _matrix(features, "feature", factors)
    out: dict[tuple[str, str], float | None] = {}
    for factor, value, y in _factor_values(factors):
        folds = min(PROBE_FOLDS, int(y.sum()), int((~y).sum()))
        if folds < 2:
            out[factor, value] = None
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        scores = cross_val_predict(probe, X, y, cv=cv, method="decision_function")
        out[factor, value] = float(roc_auc_score(y, scores))
    return out
