"""``dictionary.npz``: a fitted dictionary, its training activations and how to transform.

Plain arrays only (loaded with ``allow_pickle=False``); ``params`` is a JSON string.
What ``transform`` needs besides the components is stored per method: ``alpha`` for
the lasso-coded ones (snmf, random), ``mean`` for PCA.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmconcepts.atomic import write_npz
from mmconcepts.concepts.decomposition._input import as_features, check_fitted
from mmconcepts.concepts.decomposition.baselines import centred_projection, inverse_distance
from mmconcepts.concepts.decomposition.coding import lasso_codes
from mmconcepts.concepts.dictionary_methods import FACTS, METHODS
from mmconcepts.errors import MMConceptsError

LASSO_CODED = tuple(m for m in METHODS if FACTS[m].coding == "lasso")


def save_dictionary(path, estimator, *, method: str, train_activations, sample_ids, params: dict) -> None:
    """Write ``path`` atomically from a fitted estimator of ``method``."""
    if method not in METHODS:
        raise MMConceptsError(f"{path}: unknown dictionary method {method!r}")
    V = np.asarray(train_activations)
    ids = [str(i) for i in sample_ids]
    if V.shape[0] != len(ids):
        raise MMConceptsError(f"{path}: {V.shape[0]} activation rows but {len(ids)} sample ids")
    arrays = {
        "components": np.asarray(estimator.components_),
        "train_activations": V,
        "sample_ids": np.array(ids, dtype=str),
        "method": np.array(method),
        "params": np.array(json.dumps(params, sort_keys=True)),
        "objective": np.array(float(getattr(estimator, "objective_", np.nan))),
        "n_iter": np.array(int(getattr(estimator, "n_iter_", 0))),
    }
    if method in LASSO_CODED:
        arrays["alpha"] = np.array(float(estimator.alpha))
    if FACTS[method].coding == "projection":
        arrays["mean"] = np.asarray(estimator.mean_)
    write_npz(path, **arrays)


@dataclass
class Dictionary:
    """A loaded dictionary; ``transform`` gives the fitted estimator's activations.

    ``mean_`` is PCA's mean (None for the other methods), which reconstructions add back.
    """

    method: str
    components_: np.ndarray
    train_activations: np.ndarray
    sample_ids: list[str]
    params: dict
    objective: float
    n_iter: int
    alpha: float | None = None
    mean_: np.ndarray | None = None

    def transform(self, Z) -> np.ndarray:
        if self.method in LASSO_CODED:
            return lasso_codes(Z, self.components_, self.alpha, "auto", f"the {self.method} dictionary")[0]
        X = as_features(Z).numpy()
        check_fitted(self, X.shape[1])
        if FACTS[self.method].coding == "projection":
            return centred_projection(X, self.mean_, self.components_)
        return inverse_distance(X, self.components_)


def load_dictionary(path) -> Dictionary:
    path = Path(path)
    if not path.is_file():
        raise MMConceptsError(f"{path}: dictionary file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            method = str(f["method"])
            if method not in METHODS:
                raise MMConceptsError(f"{path}: unknown dictionary method {method!r}")
            d = Dictionary(
                method=method,
                components_=f["components"],
                train_activations=f["train_activations"],
                sample_ids=[str(s) for s in f["sample_ids"]],
                params=json.loads(str(f["params"])),
                objective=float(f["objective"]),
                n_iter=int(f["n_iter"]),
                alpha=float(f["alpha"]) if method in LASSO_CODED else None,
                mean_=f["mean"] if FACTS[method].coding == "projection" else None,
            )
    except MMConceptsError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise MMConceptsError(f"{path}: not a valid dictionary file ({type(e).__name__}: {e})") from None
    return d

