"""Concept dictionaries: Semi-NMF (the paper's) and the baselines, scikit-learn style."""

from __future__ import annotations

from mmconcepts.concepts.decomposition.baselines import KMeansDictionary, PCADictionary, RandomDictionary, SimpleDictionary
from mmconcepts.concepts.decomposition.semi_nmf import SemiNMF
from mmconcepts.concepts.decomposition.store import Dictionary, load_dictionary, save_dictionary
from mmconcepts.concepts.dictionary_methods import METHODS
from mmconcepts.errors import MMConceptsError


def make_decomposer(method: str, n_components: int, *, alpha=1.0, random_state=0, max_iter=None, device="cpu"):
    """An unfitted estimator of ``method``; ``max_iter=None`` keeps the estimator's default.

    ``alpha`` and ``device`` apply to the lasso-coded methods (snmf, random), ``max_iter``
    to the iterative ones (snmf, kmeans).
    """
    iters = {} if max_iter is None else {"max_iter": max_iter}
    if method == "snmf":
        return SemiNMF(n_components, alpha=alpha, random_state=random_state, device=device, **iters)
    if method == "pca":
        return PCADictionary(n_components, random_state=random_state)
    if method == "kmeans":
        return KMeansDictionary(n_components, random_state=random_state, **iters)
    if method == "simple":
        return SimpleDictionary(n_components)
    if method == "random":
        return RandomDictionary(n_components, alpha=alpha, random_state=random_state, device=device)
    raise MMConceptsError(f"unknown decomposition method {method!r}; choose one of {', '.join(METHODS)}")


__all__ = [
    "METHODS",
    "Dictionary",
    "KMeansDictionary",
    "PCADictionary",
    "RandomDictionary",
    "SemiNMF",
    "SimpleDictionary",
    "load_dictionary",
    "make_decomposer",
    "save_dictionary",
]
