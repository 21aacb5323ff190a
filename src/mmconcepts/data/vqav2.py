"""Reading VQAv2-format question and annotation files (COCO's and the shapes world's).

Questions: ``{"questions": [{"image_id", "question", "question_id"}]}``; annotations:
``{"annotations": [{"question_id", "image_id", "answer_type", "multiple_choice_answer",
"answers": [{"answer", ...}]}]}``. Other top-level keys ("info", "license", ...) are ignored.
Annotations are optional because test-dev has none; given, every question needs one, so
that a scored split never silently loses questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError

ANSWER_TYPES = ("yes/no", "number", "other")


@dataclass(frozen=True)
class Question:
    id: str
    image_id: str
    question: str
    answer_type: str | None = None
    answers: tuple[str, ...] = ()
    multiple_choice_answer: str | None = None


def _id(value, key: str, where: str) -> str:
    # bool is an int subclass; True as an id is a broken file, not question 1.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MMConceptsError(f"{where}: {key} must be an integer or a string, not {value!r}")
    return str(value)


def _entries(path: Path, key: str, what: str) -> list:
    data = read_json(path, what)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise MMConceptsError(f"{path}: missing key {key!r} (not a VQAv2-format {what})")
    return data[key]


def _question(entry, where: str) -> Question:
    try:
        text = entry["question"]
        qid, image_id = _id(entry["question_id"], "question_id", where), _id(entry["image_id"], "image_id", where)
    except KeyError as e:
        raise MMConceptsError(f"{where}: missing key {e.args[0]!r}") from None
    except TypeError:
        raise MMConceptsError(f"{where}: not a VQAv2 question entry") from None
    if not isinstance(text, str):
        raise MMConceptsError(f"{where}: question must be a string, not {text!r}")
    return Question(id=qid, image_id=image_id, question=text)


def _annotation(entry, where: str) -> tuple[str, str, dict]:
    """(question_id, image_id, the Question fields the annotation fills in)."""
    try:
        qid, image_id = _id(entry["question_id"], "question_id", where), _id(entry["image_id"], "image_id", where)
        answer_type = entry["answer_type"]
        answers = tuple(a["answer"] for a in entry["answers"])
        mc = entry.get("multiple_choice_answer")
    except KeyError as e:
        raise MMConceptsError(f"{where}: missing key {e.args[0]!r}") from None
    except (TypeError, AttributeError):
        raise MMConceptsError(f"{where}: not a VQAv2 annotation entry") from None
    if answer_type not in ANSWER_TYPES:
        raise MMConceptsError(f"{where}: unknown answer_type {answer_type!r}; known: {', '.join(ANSWER_TYPES)}")
    if not answers or not all(isinstance(a, str) for a in answers):
        raise MMConceptsError(f"{where}: answers must be a non-empty list of {{'answer': str}} entries")
    if mc is not None and not isinstance(mc, str):
        raise MMConceptsError(f"{where}: multiple_choice_answer must be a string, not {mc!r}")
    return qid, image_id, {"answer_type": answer_type, "answers": answers, "multiple_choice_answer": mc}


def load_vqa(questions_json, annotations_json=None, *, limit: int | None = None) -> list[Question]:
    """The questions in file order, at most ``limit`` of them, with their answers when annotations are given.

    Only the kept questions need an annotation; annotations of other questions are ignored.
    """
    questions_json = Path(questions_json)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise MMConceptsError(f"limit must be a non-negative integer or None, not {limit!r}")
    questions, seen = [], set()
    for i, entry in enumerate(_entries(questions_json, "questions", "questions file")):
        q = _question(entry, f"{questions_json}: questions[{i}]")
        if q.id in seen:
            raise MMConceptsError(f"{questions_json}: questions[{i}]: question_id {q.id} appears twice")
        seen.add(q.id)
        questions.append(q)
    if limit is not None:
        questions = questions[:limit]
    if annotations_json is None:
        return questions

    annotations_json = Path(annotations_json)
    table = {}
    for i, entry in enumerate(_entries(annotations_json, "annotations", "annotations file")):
        where = f"{annotations_json}: annotations[{i}]"
        qid, image_id, fields = _annotation(entry, where)
        if qid in table:
            raise MMConceptsError(f"{where}: question_id {qid} is annotated twice")
        table[qid] = (image_id, fields, where)
    out = []
    for q in questions:
        if q.id not in table:
            raise MMConceptsError(f"{annotations_json}: no annotation for question_id {q.id} of {questions_json}")
        image_id, fields, where = table[q.id]
        if image_id != q.image_id:
            raise MMConceptsError(
                f"{where}: image_id {image_id} of question_id {q.id} disagrees with {questions_json}, "
                f"which says {q.image_id} (annotations of another split?)"
            )
        out.append(Question(id=q.id, image_id=q.image_id, question=q.question, **fields))
    return out


def image_path(image_id, folder, pattern: str) -> Path:
    """``folder / pattern.format(image_id=...)``, e.g. pattern ``"COCO_val2014_{image_id:012d}.jpg"``.

    An all-digit ``image_id`` is passed as an int, so numeric formats like ``{image_id:05d}`` work
    (and ``{image_id}`` drops leading zeros); any other id is passed as the string.
    """
    text = str(image_id)
    value = int(text) if text.isascii() and text.isdigit() else text
    try:
        name = pattern.format(image_id=value)
    except (KeyError, IndexError, ValueError) as e:
        raise MMConceptsError(
            f"image pattern {pattern!r} does not fit image_id {text!r} ({e}); it may use only {{image_id}}"
        ) from None
    return Path(folder) / name
