"""Input checks and conversion shared by every decomposer."""

from __future__ import annotations

import numpy as np
import torch

from mmconcepts.errors import MMConceptsError


def as_features(Z, *, device: torch.device | str = "cpu", name: str = "Z") -> torch.Tensor:
    """Z (samples × features, numpy or torch) as a float tensor on ``device``.

    float64 stays float64; any other float (float16 from a feature store) becomes float32.
    """
    t = Z.detach() if isinstance(Z, torch.Tensor) else torch.from_numpy(np.asarray(Z))
    if t.ndim != 2:
        raise MMConceptsError(f"{name} must be a 2-D samples × features matrix, got {t.ndim}-D shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise MMConceptsError(f"{name} must hold real numbers, got dtype {t.dtype}")
    t = t.to(device=device, dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise MMConceptsError(f"{name} is empty: shape {tuple(t.shape)}")
    # A NaN or Inf entry makes the sum non-finite; the sum is far cheaper than an
    # elementwise test on a large Z, which only runs to tell overflow from bad entries.
    if not torch.isfinite(t.sum()) and not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise MMConceptsError(f"{name} contains NaN or Inf values (in {bad} of its {t.shape[0]} samples)")
    return t


def check_n_components(n_components, n_samples: int) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise MMConceptsError(f"n_components (K) must be an integer ≥ 1, got {n_components!r}")
    if n_components > n_samples:
        raise MMConceptsError(f"K = {n_components} concepts is larger than the number of samples M = {n_samples}")
    return int(n_components)


def check_fitted(est, n_features: int) -> None:
    if not hasattr(est, "components_"):
        raise MMConceptsError(f"{type(est).__name__} is not fitted yet: call fit first")
    if n_features != est.components_.shape[1]:
        raise MMConceptsError(
            f"{type(est).__name__} was fitted on {est.components_.shape[1]} features, got {n_features}"
        )
