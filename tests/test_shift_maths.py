"""Representation-shift maths (mmconcepts.shift.analysis) on hand-made vectors."""

import itertools
import math

import numpy as np
import pytest

from mmconcepts.errors import MMConceptsError
from mmconcepts.shift.analysis import (
    assign,
    concept_shifts,
    consistency,
    cosine_rows,
    fraction_with,
    improvements,
    majority,
    match_concepts,
    overlap_counts,
    pearson,
    random_like,
)

# ---------------------------------------------------------------- assignment and concept shifts


def test_assign_takes_row_argmax_and_lowest_index_on_ties():
    acts = np.array([[0.1, 0.9, 0.0], [2.0, 2.0, 1.0], [0.0, 0.0, 0.5]])
    assert assign(acts).tolist() == [1, 0, 2]


def test_concept_shift_is_mean_of_its_samples_and_empty_concept_is_nan():
    deltas = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, -10.0], [5.0, 0.0]])
    assignment = np.array([0, 0, 2, 0])
    shifts, counts = concept_shifts(deltas, assignment, k=3)
    assert counts.tolist() == [3, 0, 1]
    np.testing.assert_allclose(shifts[0], [3.0, 2.0])  # (1+3+5)/3, (2+4+0)/3
    assert np.isnan(shifts[1]).all()
    np.testing.assert_allclose(shifts[2], [10.0, -10.0])


def test_median_and_trimmed_resist_an_outlier():
    first = np.array([0, 1, 1, 1, 2, 3, 4, 5, 6, 100], dtype=float)
    deltas = np.column_stack([first, np.ones(10)])
    assignment = np.zeros(10, dtype=int)
    mean, _ = concept_shifts(deltas, assignment, 1, "mean")
    median, _ = concept_shifts(deltas, assignment, 1, "median")
    trimmed, _ = concept_shifts(deltas, assignment, 1, "trimmed")
    np.testing.assert_allclose(mean[0], [12.3, 1.0])
    np.testing.assert_allclose(median[0], [2.5, 1.0])
    # 10 % of 10 samples: drop 0 and 100, mean of 1,1,1,2,3,4,5,6 = 23/8.
    np.testing.assert_allclose(trimmed[0], [23 / 8, 1.0])


def test_unknown_aggregate_and_length_mismatch_raise():
    deltas = np.zeros((3, 2))
    with pytest.raises(MMConceptsError, match="'mode'.*mean, median, trimmed"):
        concept_shifts(deltas, np.zeros(3, dtype=int), 2, "mode")
    with pytest.raises(MMConceptsError, match="assignment"):
        concept_shifts(deltas, np.zeros(2, dtype=int), 2)


# ---------------------------------------------------------------- Hungarian matching


def test_match_recovers_known_shuffle_of_noisy_copies():
    rng = np.random.default_rng(0)
    Ua = rng.standard_normal((8, 16))
    shuffle = rng.permutation(8)
    Ub = Ua[shuffle] + 0.05 * rng.standard_normal((8, 16))
    perm = match_concepts(Ua, Ub)
    assert sorted(perm.tolist()) == list(range(8))
    # Ub[j] is a copy of Ua[shuffle[j]], so Ua[k] belongs with j = shuffle⁻¹[k].
    assert perm.tolist() == np.argsort(shuffle).tolist()


def test_match_is_optimal_where_greedy_is_not():
    # Unit rows; the cosines with the basis rows of Ub are
    # [[0.7, 0.6, 0], [0.6, 0, 0], [0, 0, 1]]: greedy gives row 0 column 0 (total 1.7), best is 2.2.
    Ua = np.array([[0.7, 0.6, 0.0, math.sqrt(1 - 0.49 - 0.36)], [0.6, 0.0, 0.0, 0.8], [0.0, 0.0, 1.0, 0.0]])
    Ub = np.eye(4)[:3]
    cos = np.array([[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in Ub] for a in Ua])

    def total(p):
        return sum(cos[k, p[k]] for k in range(3))

    greedy, taken = [], set()
    for k in range(3):
        j = max((j for j in range(3) if j not in taken), key=lambda j: cos[k, j])
        greedy.append(j)
        taken.add(j)
    best = max(total(p) for p in itertools.permutations(range(3)))
    assert total(greedy) < best - 0.4
    perm = match_concepts(Ua, Ub)
    assert total(perm) == pytest.approx(best)
    assert perm.tolist() == [1, 0, 2]


def test_match_rejects_shape_mismatch_and_tolerates_zero_rows():
    with pytest.raises(MMConceptsError, match=r"\(2, 3\).*\(3, 3\)"):
        match_concepts(np.ones((2, 3)), np.ones((3, 3)))
    perm = match_concepts(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert perm.tolist() == [1, 0]


def test_cosine_rows_zero_norm_gives_zero():
    got = cosine_rows(np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]]), np.array([[1.0, 1.0], [1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(got, [1 / math.sqrt(2), 0.0, 1.0])


# ---------------------------------------------------------------- improvements


def test_improvements_hand_computed_2d():
    U, D, S = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])
    out = improvements(U, S, D)
    # cos(d, s) = 1/√2, cos(d, u) = 0; ‖d − u‖ = √2, ‖d − s‖ = 1.
    assert out["improved_cosine"][0] == pytest.approx(1 / math.sqrt(2))
    assert out["improved_distance"][0] == pytest.approx(math.sqrt(2) - 1)
    assert np.isnan(out["improved_cosine_normalised"][0])  # cos(d, u) = 0
    assert out["improved_distance_normalised"][0] == pytest.approx((math.sqrt(2) - 1) / math.sqrt(2))


def test_improved_cosine_sign_and_nan_for_empty_concept():
    U = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    D = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    S = np.array([[0.2, 1.0], [1.0, 0.1], [np.nan, np.nan]])  # closer in angle, farther, empty
    out = improvements(U, S, D)
    assert out["improved_cosine"][0] > 0
    assert out["improved_cosine"][1] < 0
    # cos(d, u) = 1/√2 here, so the normalised value is the plain one times √2.
    assert out["improved_cosine_normalised"][0] == pytest.approx(out["improved_cosine"][0] * math.sqrt(2))
    assert all(np.isnan(out[key][2]) for key in out)


# ---------------------------------------------------------------- consistency


def test_consistency_identical_and_opposite_shifts():
    x = np.array([1.0, -2.0, 0.5])
    deltas = np.array([x, x, x, x, -x])
    assignment = np.array([0, 0, 0, 1, 1])
    Delta = np.array([x, np.zeros(3), np.full(3, np.nan)])
    out = consistency(deltas, assignment, Delta)
    assert out["pairwise_cosine"][0] == pytest.approx(1.0)
    assert out["cosine_with_shift"][0] == pytest.approx(1.0)
    assert out["pairwise_dot"][0] == pytest.approx(x @ x)
    assert out["shift_norm"][0] == pytest.approx(np.linalg.norm(x))
    assert out["pairwise_cosine"][1] == pytest.approx(-1.0)
    assert out["pairwise_dot"][1] == pytest.approx(-(x @ x))
    assert all(np.isnan(out[key][2]) for key in out)  # empty concept


def test_consistency_single_sample_has_no_pairs():
    out = consistency(np.array([[1.0, 0.0]]), np.array([0]), np.array([[1.0, 0.0]]))
    assert np.isnan(out["pairwise_cosine"][0]) and np.isnan(out["pairwise_dot"][0])
    assert out["cosine_with_shift"][0] == pytest.approx(1.0)


def test_consistency_matches_naive_double_loop():
    rng = np.random.default_rng(1)
    deltas = rng.standard_normal((50, 7)) + 0.5
    assignment = np.r_[np.zeros(30, dtype=int), np.ones(20, dtype=int)]
    Delta = rng.standard_normal((2, 7))
    out = consistency(deltas, assignment, Delta)
    for c in range(2):
        x = deltas[assignment == c]
        cosines, dots = [], []
        for i in range(len(x)):
            for j in range(i + 1, len(x)):
                dots.append(float(np.dot(x[i], x[j])))
                cosines.append(dots[-1] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])))
        with_shift = [np.dot(v, Delta[c]) / (np.linalg.norm(v) * np.linalg.norm(Delta[c])) for v in x]
        assert out["pairwise_cosine"][c] == pytest.approx(np.mean(cosines), rel=1e-10)
        assert out["pairwise_dot"][c] == pytest.approx(np.mean(dots), rel=1e-10)
        assert out["cosine_with_shift"][c] == pytest.approx(np.mean(with_shift), rel=1e-10)


# ---------------------------------------------------------------- pearson, overlaps, baselines


def test_pearson():
    assert pearson([1, 2, 3, 4], [3, 5, 7, 9]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # The NaN pair is skipped; otherwise the outlier-free points are perfectly linear.
    assert pearson([1, 2, np.nan, 3, 4], [2, 4, 100, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [5, 5, 5]) is None
    assert pearson([1, 2, np.nan], [1, 2, 3]) is None


def test_overlap_counts():
    assert overlap_counts([["a", "b", "c"], ["x"], []], [["c", "a", "a"], ["y"], ["z"]]) == [2, 0, 0]
    with pytest.raises(MMConceptsError, match="equal length"):
        overlap_counts([["a"]], [])


def test_random_like_keeps_norms_and_is_seeded():
    Delta = np.array([[3.0, 4.0, 0.0], [np.nan, np.nan, np.nan], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    r = random_like(Delta, seed=7)
    np.testing.assert_allclose(np.linalg.norm(r[[0, 2, 3]], axis=1), [5.0, 0.5, 0.0])
    assert np.isnan(r[1]).all()
    np.testing.assert_array_equal(random_like(Delta, seed=7), r)
    assert not np.allclose(random_like(Delta, seed=8)[0], r[0])


def test_fraction_with():
    lists = [["cat", "dog"], ["sun"], None, ["moon", "cat"], []]
    assert fraction_with(lists, {"cat"}) == pytest.approx(2 / 4)
    assert fraction_with(lists, {"sun", "moon"}) == pytest.approx(2 / 4)
    assert fraction_with([None, None], {"cat"}) is None
    assert fraction_with([], {"cat"}) is None


def test_majority_breaks_ties_by_first_appearance():
    assert majority(["b", "a", "a", "b", "c"]) == "b"
    assert majority([3, 1, 1]) == 1


def test_chance_threshold_is_one_on_a_large_vocabulary_and_more_on_a_tiny_one():
    from scipy.stats import hypergeom

    from mmconcepts.shift.analysis import chance_threshold

    assert chance_threshold(30000, 8, 30) == 1  # 30 words of 30,000 rarely hold one of 8 planted words
    need = chance_threshold(65, 8, 30)  # the shapes world: 30 words are nearly half its lexicon
    assert hypergeom.sf(need - 1, 65, 8, 30) <= 0.05 < hypergeom.sf(need - 2, 65, 8, 30)
    assert chance_threshold(8, 1, 1) == 2  # one word of eight is never rare: nothing can pass
