"""Recovery of the shapes world's ground-truth factors by the concept activations.

For every factor value that some but not all samples have, each concept's
activation is scored as a detector of that value (AUROC against the indicator
"sample has this value"), and the best concept is kept. AUROC below 0.5 is
taken as it is, never flipped to 1 - AUROC: a concept that fires when a value
is absent is not a detector of that value, and flipping would credit any
concept for the complement of a binary factor.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from mmconcepts.errors import MMConceptsError


def recovery(activations: np.ndarray, factors: list[dict[str, str]]) -> dict:
    """``{"mean": float, "table": [{"factor", "value", "n_positive", "auroc", "concept"}]}``.

    ``activations`` is N × K (test samples × concepts), ``factors`` the N samples'
    ``{factor: value}``; a sample without a factor counts as not having any of its
    values. Rows are sorted by factor then value; ties between concepts go to the
    lowest index.
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise MMConceptsError(f"recovery: activations must be N × K with K ≥ 1, got shape {a.shape}")
    if a.shape[0] != len(factors):
        raise MMConceptsError(f"recovery: {a.shape[0]} activation rows but {len(factors)} factor records")
    if not np.isfinite(a).all():
        raise MMConceptsError("recovery: activations contain NaN or infinity")

    table = []
    for factor in sorted({f for record in factors for f in record}):
        column = [record.get(factor) for record in factors]
        for value in sorted({v for v in column if v is not None}, key=str):
            y = np.array([v == value for v in column])
            n_pos = int(y.sum())
            if n_pos == len(y):  # AUROC needs both classes
                continue
            aurocs = [roc_auc_score(y, a[:, k]) for k in range(a.shape[1])]
            best = int(np.argmax(aurocs))
            table.append({"factor": factor, "value": value, "n_positive": n_pos, "auroc": float(aurocs[best]), "concept": best})
    if not table:
        raise MMConceptsError("recovery: no factor value is held by some but not all samples")
    return {"mean": float(np.mean([row["auroc"] for row in table])), "table": table}
