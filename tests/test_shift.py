"""The shift analysis end to end on hand-made states whose shift is planted, and its input errors."""

from __future__ import annotations

import numpy as np
import pytest

from mmconcepts.concepts.lens import Lens, write_lens
from mmconcepts.errors import MMConceptsError
from mmconcepts.shift.compare import Side, compare

# 40 words: one planted word among 40 is rare enough by chance (1/40 ≤ 5 %) for a single word to count.
WORDS = ["circle", "square", "red", "blue", "meadow", "studio", "sky", "grass", *(f"filler{i}" for i in range(32))]
DIM = len(WORDS)
PLANTED = "meadow"


def lens_file(path, words=WORDS) -> Lens:
    """A lens whose unembedding is the identity: a state's words are its largest coordinates."""
    n = len(words)
    norm = {"norm_kind": np.array("rms"), "norm_weight": np.ones(n), "norm_bias": np.zeros(n), "norm_eps": np.array(1e-6)}
    write_lens(path, np.eye(n), np.zeros(n), list(words), norm)
    return Lens(path)


def side(name, states, ids, lens) -> Side:
    samples = {i: {"id": i, "image": f"/nowhere/{i}.png", "caption": f"caption {i}"} for i in ids}
    return Side(name=name, states=np.asarray(states, np.float32), ids=list(ids), samples=samples, lens=lens)


@pytest.fixture
def planted(tmp_path):
    """Three clusters of original states; the fine-tune adds one direction (the planted word's) to all."""
    rng = np.random.default_rng(0)
    centres = np.zeros((3, DIM))
    centres[0, 0], centres[1, 1], centres[2, 2] = 6, 6, 6  # circle, square, red
    labels = np.repeat(np.arange(3), 40)
    Za = centres[labels] + 0.3 * rng.standard_normal((120, DIM))
    shift = np.zeros(DIM)
    shift[WORDS.index(PLANTED)] = 3.0
    Zb = Za + shift + 0.05 * rng.standard_normal((120, DIM))
    ids = [f"im{i}" for i in range(120)]
    lens = lens_file(tmp_path / "lens.npz")
    return side("orig", Za, ids, lens), side("tuned", Zb, ids, lens)


def run(a, b, *, vectors: bool = False, **kw):
    args = {"word": "circle", "layer": "final", "method": "kmeans", "k": 3, "aggregate": "mean", "seed": 0}
    result, arrays = compare(a, b, **{**args, "n_words": 2, "n_shift_words": 1, "n_mas": 5, **kw})
    return (result, arrays) if vectors else result


def test_the_concept_shifts_are_written_for_steering(planted):
    """Each Δ_k is its concept's mean sample shift: here the planted direction (3 on the planted word)."""
    a, b = planted
    result, arrays = run(a, b, vectors=True)
    assert arrays["shifts"].shape == (3, DIM) and arrays["counts"].tolist() == [c["n_samples"] for c in result["concepts"]]
    for delta in arrays["shifts"]:
        assert delta[WORDS.index(PLANTED)] == pytest.approx(3.0, abs=0.05)
        assert np.abs(np.delete(delta, WORDS.index(PLANTED))).max() < 0.05
    # The original concepts are the k-means centres: one per cluster (circle, square, red).
    assert sorted(np.argmax(arrays["original"], axis=1).tolist()) == [0, 1, 2]


def test_a_planted_shift_is_recovered_and_named(planted):
    a, b = planted
    truth = {"style": "places", "factor": "background", "planted_words": [PLANTED]}
    out = run(a, b, truth=truth)
    concepts = out["concepts"]
    assert sorted(c["n_samples"] for c in concepts) == [40, 40, 40]  # each cluster is one concept
    assert sorted(c["matched"] for c in concepts) == [0, 1, 2]  # a permutation
    assert all(c["shift_words"] == [PLANTED] for c in concepts)
    assert all(c["improved_cosine"] > 0 and c["improved_distance"] > 0 for c in concepts)
    assert out["summary"]["improved_cosine_positive"] == 1.0
    assert all(abs(c["shift_norm"] - 3.0) < 0.05 for c in concepts)
    assert all(c["cosine_with_shift"] > 0.99 and c["pairwise_cosine"] > 0.98 for c in concepts)
    # the shifted concept lands on the matched fine-tuned concept: the same words and samples
    assert all(c["word_overlap_shifted"] >= c["word_overlap_original"] for c in concepts)
    assert all(c["mas_overlap_shifted"] == 5 for c in concepts)
    assert out["truth"]["planted_needed"] == 1 and out["truth"]["lexicon_size"] == 40
    assert out["truth"]["shift_fraction"] == 1.0
    assert out["truth"]["random_fraction"] < 0.5 and out["truth"]["random_draws"] == 20
    assert out["n_common"] == 120
    # Without a truth only the first random draw is made: the one shown beside each shift, the same.
    assert [c["random_words"] for c in run(a, b)["concepts"]] == [c["random_words"] for c in concepts]


def test_only_samples_both_models_kept_are_compared(planted):
    a, b = planted
    b_fewer = side("tuned", b.states[10:], b.ids[10:], b.lens)
    out = run(a, b_fewer)
    assert out["n_common"] == 110 and out["n_original"] == 120 and out["n_finetuned"] == 110
    assert sum(c["n_samples"] for c in out["concepts"]) == 110


def test_different_hidden_sizes_are_named(planted):
    a, b = planted
    wide = side("wide", np.hstack([b.states, b.states]), b.ids, b.lens)
    with pytest.raises(MMConceptsError, match="orig and wide have different hidden sizes"):
        run(a, wide)


def test_different_tokenizers_are_named(planted, tmp_path):
    a, b = planted
    other = side("other", b.states, b.ids, lens_file(tmp_path / "other.npz", ["x" + w for w in WORDS]))
    with pytest.raises(MMConceptsError, match="different tokenizers"):
        run(a, other)


def test_no_common_samples_is_named(planted):
    a, b = planted
    elsewhere = side("tuned", b.states, [f"other{i}" for i in range(120)], b.lens)
    with pytest.raises(MMConceptsError, match="word 'circle': no train sample is kept for both orig"):
        run(a, elsewhere)


def test_fewer_common_samples_than_k_is_named(planted):
    a, b = planted
    few = side("tuned", b.states[:2], b.ids[:2], b.lens)
    with pytest.raises(MMConceptsError, match="2 samples common .* fewer than K = 3"):
        run(a, few)
