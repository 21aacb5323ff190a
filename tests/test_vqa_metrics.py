"""The VQAv2 accuracy (vqaEval.py's rules) and the steering effect, on hand-computed cases."""

from __future__ import annotations

import pytest

from mmconcepts.data.vqav2 import Question
from mmconcepts.errors import MMConceptsError
from mmconcepts.steering.vqa_metrics import accuracy_by_type, normalize_answer, steering_effect, vqa_accuracy


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Two", "2"),
        ("the dog.", "dog"),
        ("yes!", "yes"),
        ("  Yes\n", "yes"),
        ("1,000", "1000"),  # a comma between digits: punctuation is deleted, not spaced
        ("isnt", "isn't"),
        ("Dont know", "don't know"),
        ("a red car", "red car"),
        ("An apple", "apple"),
        ("none", "0"),
        ("ten", "10"),
        ("3.5", "3.5"),  # a period before a digit stays
        ("red-white", "red white"),  # punctuation inside a word becomes a space
        ("red - white", "red white"),  # next to a space it is deleted
        ("what?!", "what"),
        ("tennis\tracket", "tennis racket"),
        ("12:30", "12:30"),  # the colon is not in the script's list
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_normalize_answer_rejects_non_strings():
    with pytest.raises(MMConceptsError, match="must be a string, not None"):
        normalize_answer(None)


def _ten(word, matches, other="other"):
    return [word] * matches + [other] * (10 - matches)


@pytest.mark.parametrize(
    "matches, expected",
    [
        (0, 0.0),
        (1, 0.3),  # 9 subsets keep it (1/3), 1 drops it (0): 9/3/10
        (2, 0.6),  # 8 subsets keep both (2/3), 2 keep one (1/3): (16/3 + 2/3)/10
        (3, 0.9),  # 7 subsets keep three (1), 3 keep two (2/3): (7 + 2)/10
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_vqa_accuracy_leave_one_out(matches, expected):
    assert vqa_accuracy("cat", _ten("cat", matches)) == pytest.approx(expected)


def test_vqa_accuracy_normalises_both_sides():
    assert vqa_accuracy("Two.", _ten("2", 2)) == pytest.approx(0.6)
    assert vqa_accuracy("2", _ten("two", 3)) == pytest.approx(0.9)
    assert vqa_accuracy("The red car", ["red car", "a red car", "red car!"] + ["blue"] * 7) == pytest.approx(0.9)


def test_vqa_accuracy_single_answer_is_exact_match_and_empty_is_an_error():
    assert vqa_accuracy("Yes", ["yes"]) == 1.0
    assert vqa_accuracy("no", ["yes"]) == 0.0
    with pytest.raises(MMConceptsError, match="no human answers"):
        vqa_accuracy("yes", [])


def _q(qid, answer_type, answers):
    return Question(id=qid, image_id="1", question="?", answer_type=answer_type, answers=tuple(answers))


QUESTIONS = [
    _q("q1", "yes/no", ["yes"] * 9 + ["no"]),
    _q("q2", "number", ["2"] * 7 + ["3", "3", "two"]),
    _q("q3", "other", ["red"] * 8 + ["maroon", "dark red"]),
    _q("q4", "other", ["blue"] * 10),
]


def test_accuracy_by_type():
    # q1: 9 matches -> 1; q2: "3" has 2 matches -> 0.6; q3: "maroon" 1 match -> 0.3; q4: 0.
    predictions = {"q1": "Yes.", "q2": "three", "q3": "maroon", "q4": "green", "unused": "x"}
    acc = accuracy_by_type(predictions, QUESTIONS)
    assert acc["overall"] == pytest.approx((1 + 0.6 + 0.3 + 0) / 4)
    assert acc["by_type"] == pytest.approx({"yes/no": 1.0, "number": 0.6, "other": 0.15})
    assert list(acc["by_type"]) == ["yes/no", "number", "other"]
    assert acc["n"] == 4 and acc["n_by_type"] == {"yes/no": 1, "number": 1, "other": 2}


def test_accuracy_by_type_errors_name_the_question():
    with pytest.raises(MMConceptsError, match="no prediction for question_id q3"):
        accuracy_by_type({"q1": "yes", "q2": "2", "q4": "blue"}, QUESTIONS)
    unanswered = [Question(id="t1", image_id="1", question="?")]
    with pytest.raises(MMConceptsError, match="question_id t1 has no human answers"):
        accuracy_by_type({"t1": "yes"}, unanswered)
    with pytest.raises(MMConceptsError, match="no questions"):
        accuracy_by_type({}, [])


STEER = [
    _q("a", "yes/no", ["yes"] * 10),
    _q("b", "yes/no", ["no"] * 10),
    _q("c", "yes/no", ["yes"] * 10),
    _q("d", "number", ["2"] * 10),
    _q("e", "other", ["red"] * 10),
    _q("f", "other", ["blue"] * 10),
]
BASE = {"a": "yes", "b": "no", "c": "Yes.", "d": "two", "e": "red", "f": "blue"}
STEERED = {"a": "No", "b": "no", "c": "yes", "d": "3", "e": "red", "f": "no"}


def test_steering_effect_on_a_hand_made_set():
    eff = steering_effect(BASE, STEERED, STEER, source="Yes", target="no")
    assert eff["source"] == "yes" and eff["target"] == "no"
    assert eff["targeted"] == 2  # a and c said yes unsteered
    assert eff["flip_rate"] == pytest.approx(0.5)  # a flipped, c did not
    assert eff["answers_changed"] == 3  # a, d, f ("No" vs "no" and "Yes." vs "yes" are no change)
    assert eff["changed_to_target"] == 2  # a and f (f was not targeted: a side effect)
    # yes/no is the targeted type; number: 1 -> 0; other: e stays right, f turns wrong: 1 -> 0.5.
    assert eff["off_target_accuracy_change"] == pytest.approx({"number": -1.0, "other": -0.5})
    assert eff["accuracy_base"]["overall"] == pytest.approx(1.0)
    assert eff["accuracy_steered"]["overall"] == pytest.approx(3 / 6)
    assert eff["accuracy_steered"]["by_type"]["yes/no"] == pytest.approx(2 / 3)


def test_steering_effect_without_targeted_questions_and_other_targeted_type():
    eff = steering_effect(BASE, BASE, STEER, source="maybe", target="no", targeted_type="number")
    assert eff["targeted"] == 0 and eff["flip_rate"] is None
    assert eff["answers_changed"] == 0 and eff["changed_to_target"] == 0
    assert eff["off_target_accuracy_change"] == {"yes/no": 0.0, "other": 0.0}


def test_steering_effect_errors():
    with pytest.raises(MMConceptsError, match="steered predictions: no prediction for question_id f"):
        steering_effect(BASE, {k: v for k, v in STEERED.items() if k != "f"}, STEER, source="yes", target="no")
    with pytest.raises(MMConceptsError, match="base predictions: no prediction for question_id a"):
        steering_effect({k: v for k, v in BASE.items() if k != "a"}, STEERED, STEER, source="yes", target="no")
    with pytest.raises(MMConceptsError, match="target answer 'the' is empty once normalised"):
        steering_effect(BASE, STEERED, STEER, source="yes", target="the")
