"""Score one dictionary on the test split: grounding quality, disentanglement, fidelity.

Every figure is mean ± std over test images. The same scores are computed for
the random-words control, so each method's table row can be read against it.
The test activations come from ground (``test_codes.npz``): nothing is solved again here.
"""

from __future__ import annotations

import numpy as np

from mmconcepts.concepts.dictionary_methods import FACTS
from mmconcepts.concepts.grounding import top_concepts
from mmconcepts.concepts.metrics import BertScorer, clip_score, concept_text, mean_std, overlap, recovery
from mmconcepts.errors import MMConceptsError


def _per_image_scores(score_matrix: np.ndarray, tops: np.ndarray) -> dict:
    """score_matrix[i, k] for each test image's top concepts: the top-1 and the mean of the top r."""
    picked = np.take_along_axis(score_matrix, tops, axis=1)
    return {"top1": mean_std(picked[:, 0]), "top_r": mean_std(picked.mean(1)), "r": int(tops.shape[1])}


def clipscores(image_emb: np.ndarray, encode_texts, word_lists: list[list[str]], tops: np.ndarray) -> dict:
    text_emb = encode_texts([concept_text(w) for w in word_lists])
    return _per_image_scores(clip_score(image_emb, text_emb), tops)


def bertscore_matrix(scorer: BertScorer, word_lists: list[list[str]], references: list[list[str]], tops: np.ndarray):
    """F1[i, k] of concept k's words against image i's ground-truth captions, for the pairs in ``tops`` (0 elsewhere)."""
    pairs = sorted({(i, int(k)) for i in range(tops.shape[0]) for k in tops[i]})
    f1 = scorer.score([" ".join(word_lists[k]) for _, k in pairs], [references[i] for i, _ in pairs])
    matrix = np.zeros((tops.shape[0], len(word_lists)))
    for (i, k), f in zip(pairs, f1):
        matrix[i, k] = f
    return matrix


def bertscores(scorer: BertScorer, word_lists: list[list[str]], references: list[list[str]], tops: np.ndarray) -> dict:
    return _per_image_scores(bertscore_matrix(scorer, word_lists, references, tops), tops)


def fidelity(dictionary, Z: np.ndarray, A: np.ndarray) -> dict:
    """The figures that mean something for the dictionary's method (dictionary_methods.FACTS).

    reconstruction: relative error ‖z − (v U + mean)‖ / ‖z‖; sparsity: the fraction of zero activations.
    """
    facts = FACTS[dictionary.method]
    out = {}
    if facts.reconstruction:
        mean = getattr(dictionary, "mean_", None)
        Zhat = A @ np.asarray(dictionary.components_) + (0.0 if mean is None else np.asarray(mean))
        out["reconstruction"] = mean_std(np.linalg.norm(Z - Zhat, axis=1) / np.maximum(np.linalg.norm(Z, axis=1), 1e-12))
    if facts.sparsity:
        out["sparsity"] = mean_std(np.mean(np.abs(A) <= 1e-12, axis=1))
    return out


def recovery_with_probe(A: np.ndarray, probe: dict, factors: list[dict], sign_free: bool) -> dict:
    """Recovery, each factor value's row also holding the layer's linear-probe AUROC (None: too few samples)."""
    result = recovery(A, factors, sign_free=sign_free)
    for row in result["table"]:
        row["probe_auroc"] = probe.get((row["factor"], row["value"]))
    scored = [row["probe_auroc"] for row in result["table"] if row["probe_auroc"] is not None]
    result["probe_mean"] = float(np.mean(scored)) if scored else None
    return result


def evaluate(
    dictionary,
    grounding: dict,
    Z_test: np.ndarray,
    codes: np.ndarray,
    *,
    image_emb: np.ndarray,
    gt_clipscore: np.ndarray,
    encode_texts,
    bert: BertScorer,
    references: list[list[str]],
    factors: list[dict] | None,
    top_r: int,
    header: dict,
    probe: dict | None = None,
) -> dict:
    """Every score of one dictionary on the test split; ``probe``: the layer's linear-probe AUROC per
    (factor, value) (``metrics.probe_auroc``, computed once per layer by the ``probe`` job)."""
    A = np.asarray(codes)
    K = np.asarray(dictionary.components_).shape[0]
    if A.shape != (Z_test.shape[0], K):
        raise MMConceptsError(f"test codes of shape {A.shape} for {Z_test.shape[0]} test samples and {K} concepts")
    tops = top_concepts(A, min(top_r, K))
    words = [c["words"] for c in grounding["concepts"]]
    rnd = grounding["random_words"]
    sign_free = FACTS[dictionary.method].sign_free
    return {
        **header,
        "n_test": int(Z_test.shape[0]),
        "clipscore": clipscores(image_emb, encode_texts, words, tops),
        "bertscore": bertscores(bert, words, references, tops),
        "overlap": overlap(words),
        **fidelity(dictionary, Z_test, A),
        "recovery": recovery_with_probe(A, probe or {}, factors, sign_free) if factors else None,
        "random_words": {
            "clipscore": clipscores(image_emb, encode_texts, rnd, tops),
            "bertscore": bertscores(bert, rnd, references, tops),
            "overlap": overlap(rnd),
        },
        "ground_truth": {"clipscore": mean_std(gt_clipscore)},
    }
