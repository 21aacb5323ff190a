"""Mean ± std over test images, the form every figure is reported in."""

from __future__ import annotations

import numpy as np

from mmconcepts.errors import MMConceptsError


def mean_std(x) -> dict[str, float]:
    """Mean and population std (ddof=0: it describes the test set, it estimates nothing beyond it)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise MMConceptsError("mean_std: no values to summarise")
    if not np.isfinite(a).all():
        raise MMConceptsError("mean_std: values contain NaN or infinity")
    return {"mean": float(a.mean()), "std": float(a.std())}
