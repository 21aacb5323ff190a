"""Baseline dictionaries behind the Semi-NMF interface.

Each has ``fit``, ``transform``, ``fit_transform``, ``components_`` (K × B),
``reconstruction_err_`` and ``objective_`` (its own fitting objective, see each class).
The activations of a saved dictionary are recomputed by the same module-level
functions (``centred_projection``, ``inverse_distance``, ``coding.lasso_codes``), so a
loaded dictionary transforms exactly as the fitted estimator did.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from mmconcepts.concepts.decomposition._input import as_features, check_fitted, check_n_components
from mmconcepts.concepts.decomposition.coding import Features, LassoCoder, encode
from mmconcepts.errors import MMConceptsError


def centred_projection(Z: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """PCA activations (Z − mean) Uᵀ; signed."""
    return (Z - mean) @ components.T


def inverse_distance(Z: np.ndarray, components: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Activation 1 / (1 + ‖z − c_k‖) of every sample for every component (float64).

    Rows go through in chunks so a large Z is never copied to float64 whole.
    """
    C = torch.from_numpy(np.asarray(components, dtype=np.float64))
    out = np.empty((len(Z), len(C)))
    for s in range(0, len(Z), chunk):
        d = torch.cdist(torch.from_numpy(np.asarray(Z[s : s + chunk], dtype=np.float64)), C)
        out[s : s + chunk] = (1.0 / (1.0 + d)).numpy()
    return out


def _features(Z) -> np.ndarray:
    return as_features(Z).numpy()


class _Baseline(TransformerMixin, BaseEstimator):
    """fit / fit_transform / transform plumbing; subclasses define ``_fit`` and ``_transform``."""

    def fit(self, Z, y=None):
        X = _features(Z)
        check_n_components(self.n_components, X.shape[0])
        self._fit(X)
        return self

    def fit_transform(self, Z, y=None):
        return self.fit(Z).transform(Z)

    def transform(self, Z):
        X = _features(Z)
        check_fitted(self, X.shape[1])
        return self._transform(X)


class PCADictionary(_Baseline):
    """Principal components of the centred data; activations are signed projections.

    ``objective_`` is ½‖Z − (A U + mean)‖²_F.
    """

    def __init__(self, n_components=20, random_state=0):
        self.n_components = n_components
        self.random_state = random_state

    def _fit(self, X):
        if self.n_components > X.shape[1]:
            raise MMConceptsError(f"PCA: K = {self.n_components} components exceed the {X.shape[1]} features")
        pca = PCA(n_components=self.n_components, random_state=self.random_state).fit(X)
        self.components_, self.mean_ = pca.components_, pca.mean_
        R = X - self.mean_ - self._transform(X) @ self.components_
        self.reconstruction_err_ = float(np.linalg.norm(R))
        self.objective_ = 0.5 * self.reconstruction_err_**2

    def _transform(self, X):
        return centred_projection(X, self.mean_, self.components_)


class _NearestCentres(_Baseline):
    """Components are points in feature space; activation 1 / (1 + distance).

    ``objective_`` is ½ Σ_i min_k ‖z_i − c_k‖² (the k-means objective).
    """

    def _set_centres(self, X, centres):
        self.components_ = centres
        d = 1.0 / inverse_distance(X, centres) - 1.0
        self.reconstruction_err_ = float(np.sqrt(np.square(d.min(axis=1)).sum()))
        self.objective_ = 0.5 * self.reconstruction_err_**2

    def _transform(self, X):
        return inverse_distance(X, self.components_)


class KMeansDictionary(_NearestCentres):
    """k-means centroids (scikit-learn, seeded)."""

    def __init__(self, n_components=20, max_iter=300, random_state=0):
        self.n_components = n_components
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, X):
        km = KMeans(self.n_components, max_iter=self.max_iter, random_state=self.random_state, n_init=1).fit(X)
        self.n_iter_ = int(km.n_iter_)
        self._set_centres(X, km.cluster_centers_)


class SimpleDictionary(_NearestCentres):
    """The K training samples of largest norm (ties to the earliest sample)."""

    def __init__(self, n_components=20):
        self.n_components = n_components

    def _fit(self, X):
        order = np.argsort(-np.linalg.norm(X, axis=1), kind="stable")
        self._set_centres(X, X[order[: self.n_components]].copy())


class RandomDictionary(LassoCoder):
    """Seeded Gaussian atoms of unit norm, coded by the same non-negative lasso as Semi-NMF.

    The control for Semi-NMF: only the atoms differ. ``objective_`` is the Semi-NMF objective.
    """

    def __init__(self, n_components=20, alpha=1.0, random_state=0, device="cpu"):
        self.n_components = n_components
        self.alpha = alpha
        self.random_state = random_state
        self.device = device

    def _fit(self, feats: Features) -> torch.Tensor:
        U = np.random.default_rng(self.random_state).standard_normal((self.n_components, feats.Z.shape[1]))
        U = torch.from_numpy(U / np.linalg.norm(U, axis=1, keepdims=True)).to(feats.Z.device)
        Vt, obj = encode(feats, U, float(self.alpha))
        self._set_result(Vt, U, obj)
        return Vt
