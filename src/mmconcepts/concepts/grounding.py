"""Ground each concept in images (most activating samples) and in words (logit lens).

Also the local interpretation of test images (their r most activated concepts)
and the random-words control: random directions decoded through the same lens
and filter, as many words as the concept they stand beside.
"""

from __future__ import annotations

import numpy as np

from mmconcepts.lens import Lens


def most_activating(activations: np.ndarray, n: int) -> list[list[int]]:
    """Per concept, the row indices of its n largest activations, largest first."""
    order = np.argsort(-activations, axis=0, kind="stable")
    return [order[:n, k].tolist() for k in range(activations.shape[1])]


def top_concepts(activations: np.ndarray, r: int) -> np.ndarray:
    """Per row, the indices of its r most activated concepts, largest first."""
    return np.argsort(-activations, axis=1, kind="stable")[:, :r]


def random_words(lens: Lens, counts: list[int], dim: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((len(counts), dim))
    longest = max(counts, default=0)
    return [words[:n] for words, n in zip(lens.top_words(directions, longest), counts)] if longest else [[] for _ in counts]


def ground(
    dictionary,
    lens: Lens,
    train_samples: list[dict],
    test_samples: list[dict],
    test_features: np.ndarray,
    *,
    n_mas: int,
    n_words: int,
    top_r: int,
    seed: int,
    header: dict,
) -> dict:
    V = np.asarray(dictionary.train_activations)
    U = np.asarray(dictionary.components_)
    words = lens.top_words(U, n_words)
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
    A = np.asarray(dictionary.transform(test_features))
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
        "random_words": random_words(lens, [len(w) for w in words], U.shape[1], seed),
    }
