"""One shift analysis: an original and a fine-tuned model's states about a word, compared.

Every step of DESIGN.md ("Shift analysis"), on the train samples both models kept:
a dictionary on the original's states, each sample assigned to its most activated
concept, the concept shifts Δ_k, the shifted concepts s_k = u_k + Δ_k, a dictionary
learned the same way on the fine-tuned states and matched to the original's
(Hungarian on −cos), then per concept the recovery figures (words, most activating
samples, improved cosine and distance), the consistency of its shifts, and Δ_k's
words. Concept words of the original come through its own lens; those of the shifted,
the matched fine-tuned concepts and of Δ_k through the fine-tuned model's lens.

Where the fine-tune's change is known (a shapes-world style), the ground truth: how
many Δ_k name one of the style's planted words, against random directions of the
same norms; for a style about the background, how many shifted concepts' most
activating samples share the background of the concept's own samples.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmconcepts.concepts.decomposition import make_decomposer
from mmconcepts.concepts.decomposition.store import Dictionary
from mmconcepts.concepts.dictionary_methods import FACTS
from mmconcepts.concepts.grounding import most_activating
from mmconcepts.concepts.lens import Lens
from mmconcepts.errors import MMConceptsError
from mmconcepts.shift import analysis as sa

N_SHOWN = 5  # most activating samples kept per concept for the report
RANDOM_DRAWS = 20  # random directions per concept shift for the planted-words chance level


@dataclasses.dataclass
class Side:
    """One model's view of the word: its name, states, kept samples (by id) and lens."""

    name: str
    states: np.ndarray
    ids: list[str]
    samples: dict[str, dict]
    lens: Lens


def common_samples(a: Side, b: Side, word: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The states of the samples both models kept, aligned, in the original's order."""
    if a.states.shape[1] != b.states.shape[1]:
        raise MMConceptsError(
            f"{a.name} and {b.name} have different hidden sizes ({a.states.shape[1]} and {b.states.shape[1]}); "
            "a shift compares the same space"
        )
    if a.lens.words != b.lens.words or a.lens.p["unembedding"].shape != b.lens.p["unembedding"].shape:
        raise MMConceptsError(
            f"{a.name} and {b.name} have different tokenizers or vocabularies "
            f"({a.lens.p['unembedding'].shape[0]} and {b.lens.p['unembedding'].shape[0]} tokens); "
            "a shift needs a fine-tune of the same model"
        )
    row_b = {i: r for r, i in enumerate(b.ids)}
    ids = [i for i in a.ids if i in row_b]
    if not ids:
        raise MMConceptsError(
            f"word {word!r}: no train sample is kept for both {a.name} ({len(a.ids)} kept) and {b.name} ({len(b.ids)} kept); "
            "the fine-tune never says the word where the original does"
        )
    row_a = {i: r for r, i in enumerate(a.ids)}
    return a.states[[row_a[i] for i in ids]], b.states[[row_b[i] for i in ids]], ids


def _fit(method: str, k: int, Z: np.ndarray, seed: int, alpha: float) -> Dictionary:
    est = make_decomposer(method, k, alpha=alpha, random_state=seed)
    V = est.fit_transform(Z)
    return Dictionary(
        method=method,
        components_=np.asarray(est.components_, dtype=np.float64),
        train_activations=np.asarray(V),
        sample_ids=[],
        params={},
        objective=float(getattr(est, "objective_", np.nan)),
        n_iter=int(getattr(est, "n_iter_", 0)),
        alpha=getattr(est, "alpha", None) if FACTS[method].coding == "lasso" else None,
        mean_=getattr(est, "mean_", None),
    )


def _mean(values) -> float | None:
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _number(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def _shown(side: Side, ids: list[str], rows: list[int]) -> list[dict]:
    return [{key: side.samples[ids[r]][key] for key in ("id", "image", "caption")} for r in rows[:N_SHOWN]]


def compare(
    a: Side,
    b: Side,
    *,
    word: str,
    layer: str,
    method: str,
    k: int,
    aggregate: str,
    seed: int,
    alpha: float = 1.0,
    n_words: int = 15,
    n_shift_words: int = 30,
    n_mas: int = 20,
    truth: dict | None = None,
    factors: dict | None = None,
) -> tuple[dict, dict]:
    """The comparison's figures (JSON-ready), and its arrays: Δ_k (``shifts``, NaN rows for empty concepts),
    ``counts`` of samples per concept, the ``original`` concepts U."""
    Za, Zb, ids = common_samples(a, b, word)
    if len(ids) < k:
        raise MMConceptsError(f"word {word!r}: {len(ids)} samples common to {a.name} and {b.name}, fewer than K = {k}")
    da = _fit(method, k, Za, seed, alpha)
    db = _fit(method, k, Zb, seed, alpha)
    U, Va = da.components_, da.train_activations
    assignment = sa.assign(Va)
    deltas = Zb.astype(np.float64) - Za.astype(np.float64)
    Delta, counts = sa.concept_shifts(deltas, assignment, k, aggregate)
    empty = counts == 0
    S = U + Delta  # NaN rows where a concept has no sample
    perm = sa.match_concepts(U, db.components_)
    D = db.components_[perm]
    gains = sa.improvements(U, S, D)
    steady = sa.consistency(deltas, assignment, Delta)

    # Words; an empty concept has no shift and shifts nothing.
    S_or_U = np.where(empty[:, None], U, S)
    words_u = a.lens.top_words(U, n_words, layer)
    words_s = b.lens.top_words(S_or_U, n_words, layer)
    words_d = b.lens.top_words(D, n_words, layer)
    words_delta = b.lens.top_words(np.nan_to_num(Delta), n_shift_words, layer)
    # Chance level: random directions of the same norms. The first is shown beside each shift; the
    # planted-words check, where there is a truth, takes several draws so its fraction is stable.
    random_draws = [
        b.lens.top_words(np.nan_to_num(sa.random_like(Delta, seed + r)), n_shift_words, layer) for r in range(RANDOM_DRAWS if truth else 1)
    ]

    # Most activating samples: the original concept's among the original states, the shifted
    # and the matched fine-tuned concept's among the fine-tuned states.
    mas_u = most_activating(Va, n_mas)
    mas_s = most_activating(dataclasses.replace(da, components_=S_or_U).transform(Zb), n_mas)
    mas_d = most_activating(db.train_activations[:, perm], n_mas)
    overlap = {
        "word_overlap_original": sa.overlap_counts(words_d, words_u),
        "word_overlap_shifted": sa.overlap_counts(words_d, words_s),
        "mas_overlap_original": sa.overlap_counts(mas_d, mas_u),
        "mas_overlap_shifted": sa.overlap_counts(mas_d, mas_s),
    }

    concepts = []
    for c in range(k):
        live = not empty[c]
        concepts.append(
            {
                "index": c,
                "n_samples": int(counts[c]),
                "matched": int(perm[c]),
                "words_original": words_u[c],
                "words_shifted": words_s[c] if live else None,
                "words_matched": words_d[c],
                "shift_words": words_delta[c] if live else None,
                "random_words": random_draws[0][c] if live else None,
                "mas_original": _shown(a, ids, mas_u[c]),
                "mas_shifted": _shown(b, ids, mas_s[c]) if live else [],
                "mas_matched": _shown(b, ids, mas_d[c]),
                **{key: values[c] if live else None for key, values in overlap.items()},
                **{key: _number(values[c]) for key, values in {**gains, **steady}.items()},
            }
        )
    live = [c for c in concepts if c["n_samples"]]
    summary = {
        "concepts_with_samples": len(live),
        "improved_cosine_positive": _mean([c["improved_cosine"] > 0 for c in live if c["improved_cosine"] is not None]),
        "improved_distance_positive": _mean([c["improved_distance"] > 0 for c in live if c["improved_distance"] is not None]),
        **{
            f"mean_{key}": _mean(c[key] for c in live)
            for key in ("improved_cosine", "improved_distance", "pairwise_cosine", "cosine_with_shift", "shift_norm", *overlap)
        },
        "pearson_consistency_improved_cosine": sa.pearson(steady["pairwise_cosine"], gains["improved_cosine"]),
        "pearson_consistency_improved_cosine_normalised": sa.pearson(steady["pairwise_cosine"], gains["improved_cosine_normalised"]),
    }
    result = {
        "word": word,
        "original": a.name,
        "finetuned": b.name,
        "layer": str(layer),
        "method": method,
        "k": k,
        "aggregate": aggregate,
        "seed": seed,
        "n_words": n_words,
        "n_shift_words": n_shift_words,
        "n_original": len(a.ids),
        "n_finetuned": len(b.ids),
        "n_common": len(ids),
        "summary": summary,
        "truth": ground_truth(
            concepts, random_draws, {w for w in b.lens.words if w}, ids, assignment, mas_s, most_activating(da.transform(Zb), n_mas), truth, factors
        )
        if truth
        else None,
        "concepts": concepts,
    }
    # The directions themselves, for steering the original model with a concept's shift.
    vectors = {"shifts": Delta, "counts": counts, "original": U}
    return result, vectors


def ground_truth(
    concepts, random_draws, lexicon: set[str], ids, assignment, mas_s, mas_unshifted, truth: dict, factors: dict | None
) -> dict:
    """The planted-style check: do the concept shifts name the style's words, more than random directions?

    A concept shift names the style when its words hold at least ``planted_needed`` planted
    words: the fewest a random draw of as many words from the lens's lexicon reaches with
    probability ≤ 5 % (one on a real vocabulary; more on the shapes world's 65 words, where
    30 words are nearly half the lexicon and any list would hold a planted word).
    ``random_draws``: per draw, the words of a random direction of each concept shift's norm.
    ``mas_s`` and ``mas_unshifted``: the most activating fine-tuned samples of the shifted
    and of the unshifted original concepts, the background check's concept and baseline.
    """
    planted = set(truth["planted_words"]) & lexicon  # a word the lens cannot name cannot be found
    live = [c for c in concepts if c["n_samples"]]
    for c in live:
        c["planted_in_shift"] = sorted(planted & set(c["shift_words"]))
    draws = [[draw[c["index"]] for c in live] for draw in random_draws]
    n_words = max((len(c["shift_words"]) for c in live), default=0)
    need = sa.chance_threshold(len(lexicon), len(planted), n_words)

    def naming(lists) -> float | None:
        return _mean(len(planted & set(ws)) >= need for ws in lists)

    out = {
        "style": truth["style"],
        "factor": truth["factor"],
        "planted_words": sorted(planted),
        "lexicon_size": len(lexicon),
        "planted_needed": need,
        "shift_fraction": naming(c["shift_words"] for c in live),
        "random_fraction": _mean(naming(d) for d in draws),
        "shift_any_planted": sa.fraction_with([c["shift_words"] for c in live], planted),
        "random_any_planted": _mean(sa.fraction_with(d, planted) for d in draws),
        "shift_planted_per_concept": _mean(len(c["planted_in_shift"]) for c in live),
        "random_planted_per_concept": _mean(len(planted & set(ws)) for d in draws for ws in d),
        "random_draws": len(random_draws),
    }
    if factors is not None and truth["factor"] == "background":
        # Does a shifted concept pick, among the fine-tuned states, samples of its own samples' background?
        def shares(mas):
            hits = [
                sa.majority([factors[ids[r]]["background"] for r in mas[c["index"]]])
                == sa.majority([factors[ids[r]]["background"] for r in np.flatnonzero(assignment == c["index"])])
                for c in live
            ]
            return _mean(hits)

        out["background_shared_shifted"] = shares(mas_s)
        out["background_shared_unshifted"] = shares(mas_unshifted)
    return out
