"""The official VQAv2 accuracy, and what a steering vector did to a model's answers.

Answers are normalised by the rules of the VQA evaluation script (vqaEval.py of
GT-Vision-Lab/VQA), so that "Two", "2" and "two." count as the same answer. An answer
is scored against the humans' answers leave-one-out: for each answer left out,
min(1, matches among the others / 3), averaged over the answers left out.
"""

from __future__ import annotations

import re

from mmconcepts.data.vqav2 import Question
from mmconcepts.errors import MMConceptsError

# The punctuation vqaEval.py deletes or turns into a space; apostrophes, colons and periods are not in it.
PUNCTUATION = tuple(";/[]\"{}()=+\\_-><@`,?!")
# A comma between digits ("1,000"): if any is present, every punctuation char is deleted, not spaced.
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")
# The script's period pattern. "(?!<=\d)" is a lookahead (not the lookbehind it looks like) that
# always holds before a ".", so in effect: delete each period not followed by a digit ("3.5" stays).
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = frozenset({"a", "an", "the"})
# The commonest entries of the script's contraction table: the word without its apostrophe -> with it.
_CONTRACTED = (
    "ain't", "aren't", "can't", "could've", "couldn't", "didn't", "doesn't", "don't", "hadn't", "hasn't",
    "haven't", "he'd", "he's", "how'd", "how'll", "how's", "isn't", "it'd", "it'll", "ma'am", "mightn't",
    "might've", "mustn't", "must've", "needn't", "o'clock", "shan't", "should've", "shouldn't", "that's",
    "there's", "they'd", "they'll", "they're", "they've", "wasn't", "we've", "weren't", "what's", "where's",
    "who's", "won't", "would've", "wouldn't", "y'all", "you'd", "you'll", "you're", "you've",
)  # fmt: skip
CONTRACTIONS = {w.replace("'", ""): w for w in _CONTRACTED}


def _punctuation(text: str) -> str:
    # The script decides per char on the text as it came in, not as already edited.
    delete_all = _COMMA_IN_NUMBER.search(text) is not None
    out = text
    for p in PUNCTUATION:
        out = out.replace(p, "" if delete_all or f"{p} " in text or f" {p}" in text else " ")
    return _PERIOD.sub("", out)


def _digits_articles(text: str) -> str:
    words = (NUMBER_WORDS.get(w, w) for w in text.lower().split())
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize_answer(text: str) -> str:
    """``text`` as vqaEval.py compares it: lower case, digits for number words, no articles or stray punctuation."""
    if not isinstance(text, str):
        raise MMConceptsError(f"an answer must be a string, not {text!r}")
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _digits_articles(_punctuation(text))


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """The VQA accuracy of ``prediction`` against the humans' ``answers`` (10 in VQAv2), in [0, 1].

    Both sides are normalised. The leave-one-out rule is meant for 10 answers; with a single
    answer it would always give 0, so a single answer is scored by exact match instead.
    """
    if isinstance(answers, str) or not answers:
        raise MMConceptsError(f"no human answers to score {prediction!r} against (got {answers!r})")
    pred = normalize_answer(prediction)
    hits = [normalize_answer(a) == pred for a in answers]
    if len(hits) == 1:
        return float(hits[0])
    matches = sum(hits)
    # Leaving out a matching answer leaves matches - 1, leaving out another one leaves matches.
    total = sum(min(1.0, (matches - hit) / 3) for hit in hits)
    return total / len(hits)


def _scored(q: Question, predictions: dict[str, str], what: str) -> float:
    if q.id not in predictions:
        raise MMConceptsError(f"{what}: no prediction for question_id {q.id}")
    if not q.answers:
        raise MMConceptsError(f"question_id {q.id} has no human answers (questions loaded without annotations?)")
    return vqa_accuracy(predictions[q.id], list(q.answers))


def accuracy_by_type(predictions: dict[str, str], questions: list[Question], *, what: str = "predictions") -> dict:
    """Mean VQA accuracy overall and per answer type: {"overall", "by_type", "n", "n_by_type"}.

    ``predictions`` maps question ids to answers; predictions of other questions are ignored.
    Answer types appear in the order of their first question; a question without one counts
    only overall. ``what`` names ``predictions`` in errors.
    """
    if not questions:
        raise MMConceptsError(f"{what}: no questions to score")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    total = 0.0
    for q in questions:
        acc = _scored(q, predictions, what)
        total += acc
        if q.answer_type is not None:
            sums[q.answer_type] = sums.get(q.answer_type, 0.0) + acc
            counts[q.answer_type] = counts.get(q.answer_type, 0) + 1
    return {
        "overall": total / len(questions),
        "by_type": {t: sums[t] / counts[t] for t in sums},
        "n": len(questions),
        "n_by_type": counts,
    }


def steering_effect(
    base_predictions: dict[str, str],
    steered: dict[str, str],
    questions: list[Question],
    *,
    source: str,
    target: str,
    targeted_type: str = "yes/no",
) -> dict:
    """How steering from answer ``source`` to ``target`` changed the answers to ``questions``.

    "targeted": questions answered ``source`` without steering; "flip_rate": the fraction of
    those answered ``target`` with it (None without targeted questions); "answers_changed":
    questions whose answer changed; "changed_to_target": those of them now answered ``target``;
    "off_target_accuracy_change": steered minus base accuracy per answer type other than
    ``targeted_type`` (the damage done elsewhere); "accuracy_base"/"accuracy_steered":
    accuracy_by_type of each. All answers are compared normalised.
    """
    src, tgt = normalize_answer(source), normalize_answer(target)
    for name, raw, norm in (("source", source, src), ("target", target, tgt)):
        if not norm:
            raise MMConceptsError(f"steering {name} answer {raw!r} is empty once normalised")
    base_acc = accuracy_by_type(base_predictions, questions, what="base predictions")
    steered_acc = accuracy_by_type(steered, questions, what="steered predictions")
    targeted = flipped = changed = changed_to_target = 0
    for q in questions:
        before, after = normalize_answer(base_predictions[q.id]), normalize_answer(steered[q.id])
        if before == src:
            targeted += 1
            flipped += after == tgt
        if before != after:
            changed += 1
            changed_to_target += after == tgt
    off_target = {
        t: steered_acc["by_type"][t] - base_acc["by_type"][t] for t in base_acc["by_type"] if t != targeted_type
    }
    return {
        "source": src,
        "target": tgt,
        "targeted": targeted,
        "flip_rate": flipped / targeted if targeted else None,
        "answers_changed": changed,
        "changed_to_target": changed_to_target,
        "off_target_accuracy_change": off_target,
        "accuracy_base": base_acc,
        "accuracy_steered": steered_acc,
    }
