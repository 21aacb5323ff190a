"""Caption metrics for steering: scorer inputs, hand-counted rates, id checks, empty captions."""

from __future__ import annotations

import math

import pytest

from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.world import COLOURS, SHAPES
from mmconcepts.steering.caption_metrics import (
    caption_effect,
    cider_bleu,
    degenerate,
    degeneration_rate,
    factor_named,
    target_word_rate,
    tokens,
    unchanged_fraction,
)

REFS = {
    "0": ["a red circle on grass", "a red circle on a grassy field"],
    "1": ["a blue square in the sky", "a small blue square against the sky"],
    "2": ["a green star on stripes", "a large green star with stripes behind it"],
}


def test_tokens_lower_case_keep_digits_drop_punctuation():
    assert tokens("Two, RED circles; 3 stars!") == ["two", "red", "circles", "3", "stars"]


def test_exact_match_beats_unrelated_caption():
    exact = cider_bleu({k: refs[0] for k, refs in REFS.items()}, REFS)
    unrelated = cider_bleu({k: "zebra piano underwater yesterday" for k in REFS}, REFS)
    assert exact["cider_d"] > 1.0
    assert unrelated["cider_d"] == pytest.approx(0.0, abs=1e-9)
    assert unrelated["bleu4"] < 1e-6


def test_bleu4_of_exact_match_against_itself_is_one():
    same = {k: "a red circle on grass number 7" for k in REFS}
    scores = cider_bleu(same, {k: [v] for k, v in same.items()})
    assert scores["bleu4"] == pytest.approx(1.0, abs=1e-6)


def test_bleu4_by_hand():
    # candidate 5 words, reference 6: precisions 5/5, 3/4, 2/3, 1/2; brevity penalty exp(1 - 6/5).
    scores = cider_bleu({"a": "A red circle on grass."}, {"a": ["a red circle on the grass"]})
    assert scores["bleu4"] == pytest.approx((1 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25 * math.exp(-0.2), abs=1e-6)


def test_cider_of_a_single_image_is_zero():
    # Every reference n-gram occurs in all (one) images, so its idf weight is log(1) - log(1) = 0.
    assert cider_bleu({"0": REFS["0"][0]}, {"0": REFS["0"]})["cider_d"] == 0.0


def test_empty_candidate_does_not_crash_and_scores_lower():
    full = cider_bleu({k: refs[0] for k, refs in REFS.items()}, REFS)
    one_empty = cider_bleu({"0": "", "1": REFS["1"][0], "2": REFS["2"][0]}, REFS)
    assert 0 < one_empty["cider_d"] < full["cider_d"]
    assert 0 < one_empty["bleu4"] < full["bleu4"]
    all_empty = cider_bleu({k: "" for k in REFS}, REFS)
    assert all_empty == {"cider_d": 0.0, "bleu4": 0.0}


def test_missing_and_extra_ids_are_named():
    with pytest.raises(MMConceptsError, match="'2'"):
        cider_bleu({"0": "a", "1": "b"}, REFS)
    with pytest.raises(MMConceptsError, match="'9'"):
        cider_bleu({"0": "a", "1": "b", "2": "c", "9": "d"}, REFS)
    with pytest.raises(MMConceptsError, match="'x'"):
        cider_bleu({"x": "a"}, {"x": ["", "!"]})


def test_target_word_rate_counts_whole_words():
    captions = ["a red circle", "a reddish circle", "A RED square.", "a blue star"]
    assert target_word_rate(captions, {"red"}) == 0.5
    assert target_word_rate(captions, {"red", "star"}) == 0.75
    with pytest.raises(MMConceptsError, match="empty"):
        target_word_rate([], {"red"})


def test_degenerate_repeated_trigram():
    assert degenerate("a red circle a red circle")
    assert not degenerate("a red circle next to a blue square")
    assert not degenerate("a red a red")  # repeated bigram only
    assert degeneration_rate(["a red circle a red circle", "a red circle", "x y z x y z", "a b c"]) == 0.5


def test_unchanged_fraction_compares_tokens():
    before = {"0": "a red circle", "1": "a blue square", "2": "a green star", "3": "a star"}
    after = {"0": "A red circle.", "1": "a red square", "2": "a green star", "3": "a star star"}
    assert unchanged_fraction(before, after) == 0.5
    with pytest.raises(MMConceptsError, match="'3'"):
        unchanged_fraction(before, {k: v for k, v in after.items() if k != "3"})


def test_factor_named_uses_first_vocabulary_word():
    captions = ["a red circle next to a square", "a square and a circle", "a blue thing", "a red square beside a circle"]
    factors = [{"shape": "circle", "colour": "red"}, {"shape": "circle", "colour": "red"},
               {"shape": "star", "colour": "blue"}, {"shape": "square", "colour": "green"}]
    assert factor_named(captions, factors, "shape", SHAPES) == 0.5
    assert factor_named(captions, factors, "colour", COLOURS) == 0.5
    with pytest.raises(MMConceptsError, match="'size'"):
        factor_named(captions, factors, "size", ("small", "large"))


def test_caption_effect_before_and_after():
    base = {"0": "a red circle on grass", "1": "a blue square in the sky", "2": "a green star on stripes"}
    steered = {"0": "a purple circle on grass", "1": "a purple purple purple purple purple", "2": "a green star on stripes"}
    factors = {"0": {"shape": "circle", "colour": "red"}, "1": {"shape": "square", "colour": "blue"},
               "2": {"shape": "star", "colour": "green"}, "3": {"shape": "cross", "colour": "red"}}
    out = caption_effect(base, steered, REFS, target_words={"purple"}, factors=factors, untargeted={"shape": SHAPES})
    assert out["n"] == 3
    assert (out["target_rate_base"], out["target_rate"]) == (0.0, pytest.approx(2 / 3))
    assert out["unchanged"] == pytest.approx(1 / 3)
    assert (out["degeneration_base"], out["degeneration"]) == (0.0, pytest.approx(1 / 3))
    assert out["cider_d"] < out["cider_d_base"] and out["bleu4"] < out["bleu4_base"]
    assert out["factors_named"] == {"shape": {"base": 1.0, "steered": pytest.approx(2 / 3)}}
    assert "factors_named" not in caption_effect(base, steered, REFS, target_words={"purple"})
    with pytest.raises(MMConceptsError, match="factors"):
        caption_effect(base, steered, REFS, target_words={"purple"}, untargeted={"shape": SHAPES})
    with pytest.raises(MMConceptsError, match="'2'"):
        caption_effect(base, steered, REFS, target_words={"purple"}, factors={"0": factors["0"], "1": factors["1"]},
                       untargeted={"shape": SHAPES})
