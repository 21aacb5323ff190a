"""Mutual-knowledge maths (mmconcepts.mutual.matching and .information) on hand-made numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.information import (
    SCORES,
    auc,
    correlations,
    curve_area,
    language_side,
    mean_curve,
    mi_dynamics,
    mi_eq1,
    mi_score,
    pad_curve,
)
from mmconcepts.mutual.matching import (
    RELEVANCE_RULES,
    DescribedImage,
    assignment_entropy,
    candidates,
    describe,
    relevance_filter,
    sinkhorn_plan,
    top_per_concept,
)


def crowded_scores() -> np.ndarray:
    """3 concepts × 9 descriptors: all three concepts rank descriptors 0-2 highest, but each
    also has two descriptors of its own (3+2i, 4+2i) that no other concept likes."""
    scores = np.zeros((3, 9))
    scores[:, :3] = 1.0
    for i in range(3):
        scores[i, i] += 0.05
        scores[i, [3 + 2 * i, 4 + 2 * i]] = 0.8
    return scores


# ---------------------------------------------------------------- candidates and relevance


def test_candidates_are_the_sorted_intersection_of_each_concepts_top_k():
    scores = np.array([[0.7, 0.1, 0.8, 0.9, 0.0], [0.5, 0.9, 0.8, 0.7, 0.1]])
    # row 0's top-3: 3, 2, 0; row 1's: 1, 2, 3
    got = candidates(scores, 3)
    assert got.tolist() == [2, 3]
    assert candidates(scores, 1).tolist() == []
    assert candidates(scores, 10).tolist() == [0, 1, 2, 3, 4]  # top_k > D: all of D


def test_candidates_break_ties_towards_the_lower_index():
    assert candidates(np.array([[1.0, 1.0, 1.0, 0.0]]), 2).tolist() == [0, 1]


def test_relevance_rules_on_hand_numbers():
    relevance = np.array([0.10, 0.20, 0.30, 0.50, 0.90])
    cand = np.array([0, 1, 2, 4])  # values 0.1, 0.2, 0.3, 0.9
    # mean 0.375 - 0.02 = 0.355: only 0.9 survives
    assert relevance_filter(relevance, cand, "mean", 0.02).tolist() == [4]
    # median 0.25 + 0.02 = 0.27: 0.3 and 0.9 survive
    assert relevance_filter(relevance, cand, "percentile", 0.02).tolist() == [2, 4]
    assert RELEVANCE_RULES == ("mean", "percentile")


def test_relevance_filter_keeps_the_best_candidate_when_nothing_survives():
    relevance = np.array([0.50, 0.51, 0.505, 0.0])
    # median 0.505 + 0.02 = 0.525: nobody is above it, the most relevant (id 1) is kept
    assert relevance_filter(relevance, [0, 1, 2], "percentile", 0.02).tolist() == [1]
    # equal relevances, offset 0: nothing is > the mean; the first is kept
    assert relevance_filter(np.full(3, 0.3), [0, 1, 2], "mean", 0.0).tolist() == [0]
    assert relevance_filter(relevance, [], "mean").tolist() == []


# ---------------------------------------------------------------- Sinkhorn


def test_sinkhorn_plan_has_uniform_marginals():
    scores = np.random.default_rng(0).uniform(-0.3, 0.4, size=(3, 7))
    plan = sinkhorn_plan(scores)
    assert plan.shape == (3, 7)
    assert (plan > 0).all()
    np.testing.assert_allclose(plan.sum(axis=1), np.full(3, 1 / 3), atol=1e-6)
    np.testing.assert_allclose(plan.sum(axis=0), np.full(7, 1 / 7), atol=1e-6)


def test_square_plan_scaled_by_l_is_doubly_stochastic():
    scores = np.random.default_rng(1).normal(size=(4, 4))
    plan = 4 * sinkhorn_plan(scores)
    np.testing.assert_allclose(plan.sum(axis=0), np.ones(4), atol=1e-6)
    np.testing.assert_allclose(plan.sum(axis=1), np.ones(4), atol=1e-6)


def test_plan_has_the_sinkhorn_form_diag_a_kernel_diag_b():
    scale = 2.5
    scores = np.random.default_rng(2).uniform(-1, 1, size=(5, 6))
    residual = np.log(sinkhorn_plan(scores, scale=scale)) - scale * scores
    # a row term plus a column term: every 2×2 "interaction" vanishes
    interaction = residual - residual[:, :1] - residual[:1, :] + residual[0, 0]
    np.testing.assert_allclose(interaction, 0.0, atol=1e-8)


def test_plan_is_unchanged_by_a_constant_shift_of_the_scores():
    scores = np.random.default_rng(3).uniform(size=(3, 5))
    np.testing.assert_allclose(sinkhorn_plan(scores + 7.0), sinkhorn_plan(scores), rtol=1e-9, atol=1e-12)


def test_ot_spreads_the_assignment_over_descriptors():
    scores = crowded_scores()
    raw = top_per_concept(scores, 3)
    assert [sorted(row) for row in raw] == [[0, 1, 2]] * 3  # every concept claims the same three
    spread = top_per_concept(sinkhorn_plan(scores), 3)
    assert spread == [[3, 4, 0], [5, 6, 1], [7, 8, 2]]
    assert assignment_entropy(raw) == pytest.approx(math.log(3))
    assert assignment_entropy(spread) == pytest.approx(math.log(9))


def test_top_per_concept_orders_descending_and_caps_at_the_column_count():
    plan = np.array([[0.1, 0.5, 0.2], [0.3, 0.3, 0.9]])
    assert top_per_concept(plan, 2) == [[1, 2], [2, 0]]
    assert top_per_concept(plan, 5) == [[1, 2, 0], [2, 0, 1]]


def test_assignment_entropy_hand_cases():
    assert assignment_entropy([[4], [4], [4]]) == 0.0
    assert assignment_entropy([[1, 2], [1, 3]]) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert assignment_entropy([]) == 0.0


# ---------------------------------------------------------------- describe


def test_describe_orders_by_importance_and_deduplicates():
    scores = crowded_scores()
    relevance = np.full(9, 0.2)
    importance = np.array([0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6])
    without = describe(scores, relevance, importance, top_k=9, use_ot=False)
    assert without.descriptors == (1, 2, 0)  # three concepts, same three descriptors, each once
    assert without.candidates == 9
    assert without.per_concept == ((0, 1, 2), (1, 0, 2), (2, 0, 1))
    with_ot = describe(scores, relevance, importance, top_k=9)
    assert isinstance(with_ot, DescribedImage)
    assert with_ot.per_concept == ((3, 4, 0), (5, 6, 1), (7, 8, 2))
    assert with_ot.descriptors == (1, 4, 6, 8, 2, 7, 3, 5, 0)
    assert list(importance[list(with_ot.descriptors)]) == sorted(importance, reverse=True)


def test_describe_maps_filtered_columns_back_to_descriptor_ids():
    scores = np.array([[0.9, 0.8, 0.1, 0.7, 0.6], [0.8, 0.9, 0.2, 0.6, 0.7]])
    relevance = np.array([0.9, 0.1, 0.0, 0.8, 0.7])  # candidates {0, 1, 3, 4}; mean 0.625 drops 1
    importance = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    got = describe(scores, relevance, importance, top_k=4, per_concept=2)
    # kept columns 0, 1, 2 of the sub-problem are descriptors 0, 3, 4
    assert got == DescribedImage(descriptors=(4, 3, 0), per_concept=((0, 3), (4, 0)), candidates=3)


def test_describe_with_no_common_candidate_is_empty():
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    got = describe(scores, np.zeros(2), np.zeros(2), top_k=1)
    assert got == DescribedImage(descriptors=(), per_concept=((), ()), candidates=0)


def test_same_inputs_give_the_same_bytes():
    rng = np.random.default_rng(5)
    scores, relevance, importance = rng.normal(size=(5, 40)), rng.normal(size=40), rng.normal(size=40)
    assert sinkhorn_plan(scores).tobytes() == sinkhorn_plan(scores.copy()).tobytes()
    first = describe(scores, relevance, importance, top_k=30)
    assert first == describe(scores.copy(), relevance.copy(), importance.copy(), top_k=30)
    dy = language_side(rng.normal(size=40), 10)
    assert mi_dynamics(list(first.descriptors), dy).tobytes() == mi_dynamics(list(first.descriptors), dy.copy()).tobytes()


# ---------------------------------------------------------------- language side and scores


def test_language_side_is_top_u_descending_with_stable_ties():
    sim = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
    assert language_side(sim, 3).tolist() == [1, 3, 2]
    assert language_side(sim, 50).tolist() == [1, 3, 2, 0, 4]  # u > D: all of D
    many = np.round(np.random.default_rng(0).uniform(size=200), 1)  # many ties, past small-array sorts
    order = language_side(many, 200)
    assert all((many[a], -a) > (many[b], -b) for a, b in itertools.pairwise(order))


def test_mi_scores_on_hand_cases():
    dv = list(range(15))
    dy = [0, 1, 2, *range(100, 147)]  # u = 50, m = 3
    assert mi_score(dv, dy) == pytest.approx(math.log(2250))
    assert mi_eq1(dv, dy) == pytest.approx(math.log(250))
    assert mi_score([1, 2], [3, 4]) == 0.0
    assert mi_eq1([1, 2], [3, 4]) == 0.0
    assert SCORES == {"code": mi_score, "eq1": mi_eq1}


def test_dynamics_drop_when_mutual_descriptors_are_removed():
    dv, dy = [5, 7, 9, 11], [5, 9, 100]  # mutual ones at ranks 1 and 3; N = 4, u = 3
    curve = mi_dynamics(dv, dy)
    expected = [math.log(24), math.log(12), math.log(12), 0.0, 0.0]
    np.testing.assert_allclose(curve, expected)
    np.testing.assert_allclose(mi_dynamics(dv, dy, "eq1"), [math.log(6), math.log(12), math.log(12), 0.0, 0.0])
    assert mi_dynamics([], dy).tolist() == [0.0]


# ---------------------------------------------------------------- padding, AUC, areas, correlation


def test_pad_and_auc_on_hand_curves():
    np.testing.assert_array_equal(pad_curve([1.0, 2.0], 4), [1.0, 2.0, 0.0, 0.0])
    curves = [np.array([1.0, 2.0]), np.array([3.0])]
    np.testing.assert_allclose(mean_curve(curves, 4), [2.0, 1.0, 0.0, 0.0])
    assert auc(curves, 4) == pytest.approx(0.75)  # mean of the points, not a trapezoid (which gives 1.5)
    assert auc([np.full(16, 2.0)]) == pytest.approx(2.0)


def test_a_curve_longer_than_the_padding_is_an_error():
    with pytest.raises(MMConceptsError, match=r"17.*16"):
        pad_curve(np.ones(17))
    with pytest.raises(MMConceptsError):
        auc([np.ones(3), np.ones(17)])


def test_curve_area_is_trapezoidal_with_unit_steps():
    assert curve_area([3.0, 2.0, 1.0, 0.0]) == pytest.approx(4.5)
    assert curve_area([1.0, 3.0]) == pytest.approx(2.0)
    assert curve_area([5.0]) == 0.0


def test_correlations_on_monotone_data_and_too_few_points():
    got = correlations([1, 2, 3, 4], [1, 4, 9, 16])
    assert got["spearman"] == pytest.approx(1.0)
    assert 0.9 < got["pearson"] < 1.0
    assert got["n"] == 4
    assert correlations([1, 2], [3, 4]) == {"pearson": None, "spearman": None, "n": 2}
    assert correlations([1, 1, 1], [1, 2, 3]) == {"pearson": None, "spearman": None, "n": 3}


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: candidates(np.ones(4), 2),
        lambda: candidates(np.ones((2, 4)), 0),
        lambda: relevance_filter(np.ones(4), [0, 1], rule="median"),
        lambda: relevance_filter(np.ones(4), [0, 9]),
        lambda: sinkhorn_plan(np.array([[np.nan, 1.0]])),
        lambda: sinkhorn_plan(np.ones(3)),
        lambda: describe(np.ones((2, 4)), np.ones(3), np.ones(4)),
        lambda: describe(np.ones((2, 4)), np.ones(4), np.ones((4, 1))),
        lambda: describe(np.ones((2, 4)), np.ones(4), np.ones(4), rule="paper"),
        lambda: mi_dynamics([1, 2], [2], score="unknown"),
        lambda: mi_score([1, 1], [1]),
        lambda: mi_score([1.5], [1]),
        lambda: language_side(np.ones((2, 2))),
        lambda: pad_curve(np.ones((2, 2))),
        lambda: auc([]),
        lambda: curve_area([]),
        lambda: correlations([1, 2, 3], [1, 2]),
    ],
)
def test_bad_input_raises_a_clear_error(call):
    with pytest.raises(MMConceptsError):
        call()


def test_the_settings_name_exactly_the_scores_there_are():
    from mmconcepts.mutual.information import SCORES
    from mmconcepts.mutual.settings import SCORE_NAMES

    assert tuple(SCORES) == SCORE_NAMES
