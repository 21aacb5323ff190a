"""Score one dictionary on the test split: grounding quality, disentanglement, fidelity.

Every figure is mean ± std over test images. The same scores are computed for
the random-words control, so each method's table row can be read against it.
"""

from __future__ import annotations

import numpy as np

from mmconcepts.grounding import top_concepts
from mmconcepts.metrics import BertScorer, clip_score, concept_text, mean_std, overlap, recovery


def _per_image_scores(score_matrix: np.ndarray, tops: np.ndarray) -> dict:
    """score_matrix[i, k] for each test image's top concepts: top-1 and mean of top-r."""
    picked = np.take_along_axis(score_matrix, tops, axis=1)
    return {"top1": mean_std(picked[:, 0]), "top3": mean_std(picked.mean(1))}


def clipscores(image_emb: np.ndarray, encode_texts, word_lists: list[list[str]], tops: np.ndarray) -> dict:
    text_emb = encode_texts([concept_text(w) for w in word_lists])
    return _per_image_scores(clip_score(image_emb, text_emb), tops)


def bertscores(scorer: BertScorer, word_lists: list[list[str]], references: list[list[str]], tops: np.ndarray) -> dict:
    """F1 of each test image's top concepts' words against that image's ground-truth captions."""
    pairs = sorted({(i, int(k)) for i in range(tops.shape[0]) for k in tops[i]})
    f1 = scorer.score([" ".join(word_lists[k]) for _, k in pairs], [references[i] for i, _ in pairs])
    matrix = np.zeros((tops.shape[0], len(word_lists)))
    for (i, k), f in zip(pairs, f1):
        matrix[i, k] = f
    return _per_image_scores(matrix, tops)


def fidelity(dictionary, Z: np.ndarray, A: np.ndarray) -> dict:
    """Relative reconstruction error ‖z − (v U + mean)‖ / ‖z‖ and the fraction of zero activations."""
    mean = getattr(dictionary, "mean_", None)
    Zhat = A @ np.asarray(dictionary.components_) + (0.0 if mean is None else np.asarray(mean))
    rel = np.linalg.norm(Z - Zhat, axis=1) / np.maximum(np.linalg.norm(Z, axis=1), 1e-12)
    return {"reconstruction": mean_std(rel), "sparsity": mean_std(np.mean(np.abs(A) <= 1e-12, axis=1))}


def evaluate(
    dictionary,
    grounding: dict,
    Z_test: np.ndarray,
    *,
    image_emb: np.ndarray,
    gt_clipscore: np.ndarray,
    encode_texts,
    bert: BertScorer,
    references: list[list[str]],
    factors: list[dict] | None,
    top_r: int,
    header: dict,
) -> dict:
    A = np.asarray(dictionary.transform(Z_test))
    tops = top_concepts(A, min(top_r, A.shape[1]))
    words = [c["words"] for c in grounding["concepts"]]
    rnd = grounding["random_words"]
    return {
        **header,
        "n_test": int(Z_test.shape[0]),
        "clipscore": clipscores(image_emb, encode_texts, words, tops),
        "bertscore": bertscores(bert, words, references, tops),
        "overlap": overlap(words),
        **fidelity(dictionary, Z_test, A),
        "recovery": recovery(A, factors) if factors else None,
        "random_words": {
            "clipscore": clipscores(image_emb, encode_texts, rnd, tops),
            "bertscore": bertscores(bert, rnd, references, tops),
            "overlap": overlap(rnd),
        },
        "ground_truth": {"clipscore": mean_std(gt_clipscore)},
    }
