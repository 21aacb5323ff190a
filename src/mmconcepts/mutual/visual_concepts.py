"""Visual concepts: the foreground patches of a class split into n parts, pooled over the class's images.

Clustering all foreground patches of a class at once (not image by image) is what makes a concept id
mean the same part in every image of the class. Two routes, as in the paper: PCA (n components,
each min-max scaled over the patches, argmax per patch) and k-means (on L2-normalised features).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.foreground import check_features, check_mask, normalise_rows
from mmconcepts.mutual.settings import METHODS


def _check_count(features: np.ndarray, n: int) -> np.ndarray:
    """Validated (M, C) features with at least ``n`` rows, for ``n`` ≥ 1 concepts."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MMConceptsError(f"the number of concepts must be a positive integer, got {n!r}")
    features = check_features(features)
    if features.shape[0] < n:
        raise MMConceptsError(f"{n} concepts need at least {n} foreground patches, got {features.shape[0]}")
    return features


def minmax_columns(scores: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1] over the rows; a constant column becomes all zeros."""
    low, high = scores.min(axis=0), scores.max(axis=0)
    span = high - low
    return (scores - low) / np.where(span > 0, span, 1.0)


def pca_concepts(features: np.ndarray, n: int = 5) -> np.ndarray:
    """Concept id per row: argmax over the n min-max scaled PCA components (ties go to the lower component).

    ``svd_solver="full"`` makes it deterministic, and sklearn fixes each component's sign, which matters
    here because min-max scaling is not sign-symmetric. Needs n ≤ min(M, C).
    """
    features = _check_count(features, n)
    if features.shape[1] < n:
        raise MMConceptsError(f"{n} PCA concepts need at least {n} feature channels, got {features.shape[1]}")
    scores = PCA(n_components=n, svd_solver="full").fit_transform(features)
    return np.argmax(minmax_columns(scores), axis=1).astype(np.int64)


def kmeans_concepts(features: np.ndarray, n: int = 5, seed: int = 0) -> np.ndarray:
    """Concept id per row: k-means (Euclidean, 500 iterations at most, 10 restarts) on L2-normalised rows."""
    features = _check_count(features, n)
    model = KMeans(n_clusters=n, max_iter=500, n_init=10, random_state=seed)
    return model.fit_predict(normalise_rows(features)).astype(np.int64)


def concept_labels(tokens: np.ndarray, foreground: np.ndarray, method: str, n: int = 5, seed: int = 0) -> np.ndarray:
    """Concept id (B, h, w) of every foreground patch of a class's images, -1 on the background.

    ``tokens`` (B, h, w, C) are the patch tokens, ``foreground`` (B, h, w) the class's foreground masks.
    ``seed`` only matters for k-means.
    """
    if method not in METHODS:
        raise MMConceptsError(f"unknown visual-concept method {method!r}; choose one of {METHODS}")
    tokens = np.asarray(tokens)
    if tokens.ndim != 4:
        raise MMConceptsError(f"tokens must have shape (B, h, w, C), got {tokens.shape}")
    foreground = check_mask(foreground, "foreground", ndim=3)
    if foreground.shape != tokens.shape[:3]:
        raise MMConceptsError(f"foreground {foreground.shape} does not match the tokens' (B, h, w) {tokens.shape[:3]}")
    selected = tokens[foreground]
    if selected.shape[0] < n:
        raise MMConceptsError(f"{n} concepts need at least {n} foreground patches, got {selected.shape[0]}")
    labels = pca_concepts(selected, n) if method == "pca" else kmeans_concepts(selected, n, seed)
    out = np.full(foreground.shape, -1, dtype=np.int64)
    out[foreground] = labels
    return out
