"""Reading VQAv2-format question and annotation files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmconcepts.data.vqav2 import Question, image_path, load_vqa
from mmconcepts.errors import MMConceptsError


def _answers(*words):
    return [{"answer": w, "answer_confidence": "yes", "answer_id": i + 1} for i, w in enumerate(words)]


QUESTIONS = {
    "info": {"description": "VQA v2 (hand-made excerpt)"},
    "task_type": "Open-Ended",
    "data_type": "mscoco",
    "license": {"name": "CC BY 4.0"},
    "data_subtype": "val2014",
    "questions": [
        {"image_id": 42, "question": "Is the dog asleep?", "question_id": 42000},
        {"image_id": 42, "question": "How many dogs are there?", "question_id": 42001},
        {"image_id": 7, "question": "What color is the car?", "question_id": 7002},
    ],
}
ANNOTATIONS = {
    "info": {},
    "annotations": [
        # Not in file order of the questions: load_vqa must follow the questions file.
        {
            "question_id": 7002, "image_id": 7, "question_type": "what color is the", "answer_type": "other",
            "multiple_choice_answer": "red", "answers": _answers(*["red"] * 8, "maroon", "dark red"),
        },
        {
            "question_id": 42000, "image_id": 42, "question_type": "is the", "answer_type": "yes/no",
            "multiple_choice_answer": "yes", "answers": _answers(*["yes"] * 9, "no"),
        },
        {
            "question_id": 42001, "image_id": 42, "question_type": "how many", "answer_type": "number",
            "multiple_choice_answer": "2", "answers": _answers(*["2"] * 7, "3", "3", "two"),
        },
    ],
}


def _write(folder: Path, questions=QUESTIONS, annotations=ANNOTATIONS) -> tuple[Path, Path]:
    q, a = folder / "questions.json", folder / "annotations.json"
    q.write_text(json.dumps(questions))
    a.write_text(json.dumps(annotations))
    return q, a


def test_questions_in_file_order_with_their_annotations(tmp_path):
    qs = load_vqa(*_write(tmp_path))
    assert [q.id for q in qs] == ["42000", "42001", "7002"]
    assert qs[0] == Question(
        id="42000", image_id="42", question="Is the dog asleep?", answer_type="yes/no",
        answers=("yes",) * 9 + ("no",), multiple_choice_answer="yes",
    )
    assert [q.answer_type for q in qs] == ["yes/no", "number", "other"]
    assert qs[1].answers == ("2",) * 7 + ("3", "3", "two")
    assert qs[2].multiple_choice_answer == "red" and qs[2].image_id == "7"
    with pytest.raises(AttributeError):
        qs[0].question = "changed"  # frozen


def test_without_annotations_like_test_dev_and_limit(tmp_path):
    q, _ = _write(tmp_path)
    qs = load_vqa(q)
    assert [x.id for x in qs] == ["42000", "42001", "7002"]
    assert all(x.answer_type is None and x.answers == () and x.multiple_choice_answer is None for x in qs)
    assert [x.id for x in load_vqa(q, limit=2)] == ["42000", "42001"]


def test_limit_needs_annotations_only_for_the_kept_questions(tmp_path):
    only_first = {"annotations": [a for a in ANNOTATIONS["annotations"] if a["question_id"] == 42000]}
    q, a = _write(tmp_path, annotations=only_first)
    assert [x.id for x in load_vqa(q, a, limit=1)] == ["42000"]


def test_a_question_without_annotation_is_named(tmp_path):
    partial = {"annotations": ANNOTATIONS["annotations"][:2]}
    q, a = _write(tmp_path, annotations=partial)
    with pytest.raises(MMConceptsError, match=r"annotations\.json: no annotation for question_id 42001"):
        load_vqa(q, a)


def test_an_image_id_mismatch_is_named(tmp_path):
    anns = json.loads(json.dumps(ANNOTATIONS))
    anns["annotations"][1]["image_id"] = 43
    q, a = _write(tmp_path, annotations=anns)
    with pytest.raises(MMConceptsError, match=r"annotations\[1\]: image_id 43 of question_id 42000 disagrees .* says 42"):
        load_vqa(q, a)


def test_missing_keys_name_the_file_and_index(tmp_path):
    qs = json.loads(json.dumps(QUESTIONS))
    del qs["questions"][2]["question"]
    q, a = _write(tmp_path, questions=qs)
    with pytest.raises(MMConceptsError, match=r"questions\.json: questions\[2\]: missing key 'question'"):
        load_vqa(q, a)

    anns = json.loads(json.dumps(ANNOTATIONS))
    del anns["annotations"][2]["answers"]
    q, a = _write(tmp_path, annotations=anns)
    with pytest.raises(MMConceptsError, match=r"annotations\.json: annotations\[2\]: missing key 'answers'"):
        load_vqa(q, a)

    anns = json.loads(json.dumps(ANNOTATIONS))
    del anns["annotations"][0]["answers"][3]["answer"]
    q, a = _write(tmp_path, annotations=anns)
    with pytest.raises(MMConceptsError, match=r"annotations\[0\]: missing key 'answer'"):
        load_vqa(q, a)

    q, a = _write(tmp_path, questions={"info": {}}, annotations={"annotations": []})
    with pytest.raises(MMConceptsError, match=r"questions\.json: missing key 'questions'"):
        load_vqa(q)


def test_bad_values_are_named(tmp_path):
    anns = json.loads(json.dumps(ANNOTATIONS))
    anns["annotations"][0]["answer_type"] = "colour"
    q, a = _write(tmp_path, annotations=anns)
    with pytest.raises(MMConceptsError, match=r"annotations\[0\]: unknown answer_type 'colour'"):
        load_vqa(q, a)

    qs = json.loads(json.dumps(QUESTIONS))
    qs["questions"][1]["question_id"] = 42000
    q, a = _write(tmp_path, questions=qs)
    with pytest.raises(MMConceptsError, match=r"questions\[1\]: question_id 42000 appears twice"):
        load_vqa(q, a)

    qs = json.loads(json.dumps(QUESTIONS))
    qs["questions"][0]["image_id"] = None
    q, a = _write(tmp_path, questions=qs)
    with pytest.raises(MMConceptsError, match=r"questions\[0\]: image_id must be an integer or a string, not None"):
        load_vqa(q, a)

    with pytest.raises(MMConceptsError, match=r"nowhere\.json: questions file not found"):
        load_vqa(tmp_path / "nowhere.json")


def test_image_path_formats_numeric_ids(tmp_path):
    assert image_path("42", "/coco/val2014", "COCO_val2014_{image_id:012d}.jpg") == Path(
        "/coco/val2014/COCO_val2014_000000000042.jpg"
    )
    assert image_path(7, tmp_path, "{image_id:05d}.png") == tmp_path / "00007.png"
    assert image_path("00007", tmp_path, "{image_id}.png") == tmp_path / "7.png"  # documented: numeric ids lose zeros
    assert image_path("cat-3", tmp_path, "{image_id}.png") == tmp_path / "cat-3.png"
    with pytest.raises(MMConceptsError, match=r"pattern '\{image_id:05d\}\.png' does not fit image_id 'cat-3'"):
        image_path("cat-3", tmp_path, "{image_id:05d}.png")
    with pytest.raises(MMConceptsError, match=r"may use only \{image_id\}"):
        image_path("3", tmp_path, "{imgid}.png")
