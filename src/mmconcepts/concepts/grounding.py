"""Ground each concept in images (most activating samples) and in words (logit lens).

Also the local interpretation of test images (their r most activated concepts)
and the random-words control: random directions decoded through the same lens
and filter, as many words as the concept they stand beside.
"""

from __future__ import annotations

import numpy as np

from mmconcepts.atomic import write_npz
from mmconcepts.concepts.lens import Lens
from mmconcepts.errors import MMConceptsError


def most_activating(activations: np.ndarray, n: int) -> list[list[int]]:
    """Per concept, the row indices of its n largest activations, largest first."""
    order = np.argsort(-activations, axis=0, kind="stable")
    return [order[:n, k].tolist() for k in range(activations.shape[1])]


def top_concepts(activations: np.ndarray, r: int) -> np.ndarray:
    """Per row, the indices of its r most activated concepts, largest first."""
    return np.argsort(-activations, axis=1, kind="stable")[:, :r]


def save_codes(path, codes: np.ndarray, sample_ids: list[str]) -> None:
    """The test images' concept activations, solved once by ground and read by evaluate."""
    write_npz(path, codes=np.asarray(codes, dtype=np.float64), ids=np.array(sample_ids))


def load_codes(path, sample_ids: list[str]) -> np.ndarray:
    """The activations saved by ``save_codes``; they must be of these test samples, in this order."""
    try:
        with np.load(path, allow_pickle=False) as f:
            codes, ids = f["codes"], f["ids"].tolist()
    except (OSError, ValueError, KeyError) as e:
        raise MMConceptsError(f"{path}: cannot read the test codes ({e})") from None
    if ids != list(sample_ids):
        raise MMConceptsError(f"{path}: codes of other test samples than the feature store's ({len(ids)} against {len(sample_ids)})")
    return codes


def random_words(lens: Lens, counts: list[int], dim: int, layer: str, seed: int) -> list[list[str]]:
    """Per count, that many words of a seeded Gaussian direction read at ``layer``."""
    directions = np.random.default_rng(seed).standard_normal((len(counts), dim))
    return [words[:n] for words, n in zip(lens.top_words(directions, max(counts, default=0), layer), counts)]


def ground(
    dictionary,
    lens: Lens,
    train_samples: list[dict],
    test_samples: list[dict],
    test_codes: np.ndarray,
    *,
    n_mas: int,
    n_words: int,
    top_r: int,
    seed: int,
    header: dict,
) -> dict:
    V = np.asarray(dictionary.train_activations)
    U = np.asarray(dictionary.components_)
    layer = str(dictionary.params["layer"])
    words = lens.top_words(U, n_words, layer)
    mas = most_activating(V, n_mas)
    concepts = []
    for k in range(U.shape[0]):
        counts, edges = np.histogram(V[:, k], bins=20)
        concepts.append(
            {
                "index": k,
                "words": words[k],
                "mas": [
                    {
                        "id": train_samples[i]["id"],
                        "image": train_samples[i]["image"],
                        "caption": train_samples[i]["caption"],
                        "activation": float(V[i, k]),
                    }
                    for i in mas[k]
                ],
                "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
                "frequency": float(np.mean(V[:, k] > 1e-12)),
            }
        )
    A = np.asarray(test_codes)
    if A.shape != (len(test_samples), U.shape[0]):
        raise MMConceptsError(f"test codes of shape {A.shape} for {len(test_samples)} test samples and {U.shape[0]} concepts")
    tops = top_concepts(A, min(top_r, U.shape[0]))
    test = [
        {
            "id": s["id"],
            "image": s["image"],
            "caption": s["caption"],
            "top": [{"concept": int(k), "activation": float(A[i, k])} for k in tops[i]],
        }
        for i, s in enumerate(test_samples)
    ]
    return {
        **header,
        "n_train": int(V.shape[0]),
        "n_test": int(A.shape[0]),
        "concepts": concepts,
        "test": test,
        "random_words": random_words(lens, [len(w) for w in words], U.shape[1], layer, seed),
    }
