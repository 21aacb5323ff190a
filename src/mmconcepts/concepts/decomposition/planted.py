"""Planted dictionary problems: data built from known atoms, for tests and benchmarks.

``make_planted``: Z = V* U* + noise with unit-norm atoms U* that share a common
direction (hidden states of one word are far from orthogonal), and sparse non-negative
codes V* in which atom 0 is used by every sample (LMM features are not centred) and
every other atom by a few.

``make_sparse_planted``: independent random atoms, each used by a fifth of the samples,
so that some samples use none and are pure noise: the problem on which a fit used to
lose planted atoms at COCO scale.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def make_planted(
    n_samples: int,
    n_features: int,
    n_components: int,
    *,
    active: float = 3.0,
    correlation: float = 0.2,
    noise: float = 0.05,
    seed: int = 0,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (Z, U*, V*): samples × features data, K × features atoms, samples × K codes.

    ``active`` is the mean number of atoms per sample besides atom 0, ``correlation``
    the typical cosine between two atoms, ``noise`` the per-entry noise std.
    """
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(n_features)
    shared /= np.linalg.norm(shared)
    own = rng.standard_normal((n_components, n_features))
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    atoms = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * own
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)

    p = min(1.0, active / max(n_components - 1, 1))
    on = rng.random((n_samples, n_components)) < p
    on[:, 0] = True
    codes = np.where(on, rng.uniform(5.0, 25.0, (n_samples, n_components)), 0.0)
    Z = codes @ atoms + noise * rng.standard_normal((n_samples, n_features))
    return Z.astype(dtype), atoms, codes


def make_sparse_planted(
    n_samples: int,
    n_features: int,
    n_components: int,
    *,
    density: float = 0.2,
    scale: float = 10.0,
    noise: float = 0.1,
    seed: int = 7,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (Z, U*, V*) with Z = V* U* + noise, drawn from ``default_rng(seed)`` in this order:

    K × B standard normal atoms, each scaled to unit norm; M × K exponential(1) codes, each
    kept when a uniform draw is below ``density`` and multiplied by ``scale``; M × B
    standard normal noise times ``noise``. A fraction (1 − density)^K of the samples
    (1.2 % at K = 20) uses no atom. The noise is drawn in row blocks (the same stream as
    one draw), so a COCO-sized Z never needs a float64 copy of the whole.
    """
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((n_components, n_features))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = rng.exponential(1.0, (n_samples, n_components))
    codes *= scale * (rng.random((n_samples, n_components)) < density)
    Z = np.empty((n_samples, n_features), dtype=dtype)
    block = max(1, (1 << 24) // n_features)
    for s in range(0, n_samples, block):
        e = min(s + block, n_samples)
        Z[s:e] = codes[s:e] @ atoms + noise * rng.standard_normal((e - s, n_features))
    return Z, atoms, codes


def atom_recovery(found: np.ndarray, planted: np.ndarray) -> float:
    """Mean cosine between planted atoms and found ones after the best one-to-one matching."""
    f = found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)
    p = planted / np.linalg.norm(planted, axis=1, keepdims=True)
    cos = p @ f.T
    rows, cols = linear_sum_assignment(-cos)
    return float(cos[rows, cols].mean())
