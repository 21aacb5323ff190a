"""The sets of hidden states a steering vector is the difference of, chosen by what the model said.

A set spec is one of (DESIGN.md, "Steering vectors"):
- ``{answer: X}``: VQA train questions the model answered X; the position predicting the
  answer's first token (the last prompt token);
- ``{word: W}``: train captions whose generated text contains W; the position predicting its
  first token;
- ``before_eos``: train captions; the mean over the positions of the generated tokens (every
  one before the end token).

An item is one row of a teacher-forced pass: an image, a prompt, the generated ids appended
to it, and the span ``[start, end)`` of positions (relative to the prompt's end) whose mean
state is the item's state. Sets are chosen once per steering entry; their states are read per
layer by ``steering.vectors``.
"""

from __future__ import annotations

from mmconcepts.concepts.selection import first_token_at, word_pattern
from mmconcepts.images import require_rgb
from mmconcepts.models.generation import ANSWER_TOKENS, greedy_texts, vqa_instruction
from mmconcepts.steering.vqa_metrics import normalize_answer


def answer_items(adapter, questions, image_path, answer: str, *, batch_size: int, limit: int) -> tuple[list[dict], dict]:
    """Questions the model answers ``answer`` (normalised as VQAv2 does), at most ``limit``."""
    wanted = normalize_answer(answer)
    images = [require_rgb(image_path(q.image_id)) for q in questions]
    prompts = [adapter.caption_prompt(vqa_instruction(q.question)) for q in questions]
    said = greedy_texts(adapter, images, prompts, batch_size, ANSWER_TOKENS)
    items = [
        {"id": q.id, "image": str(image_path(q.image_id)), "prompt": prompt, "token_ids": [], "start": -1, "end": 0, "text": text}
        for q, prompt, text in zip(questions, prompts, said)
        if normalize_answer(text) == wanted
    ]
    counts = {"questions": len(questions), "answered": len(items)}
    return items[:limit], counts


def caption_items(rows: list[dict], prompt: str, kind: str, word: str | None, *, limit: int) -> tuple[list[dict], dict]:
    """Train captions (rows of a captions file) as items of a ``word`` or ``before_eos`` set."""
    pattern = word_pattern(word) if kind == "word" else None
    items = []
    for row in rows:
        if "caption" not in row or not row["token_ids"]:
            continue
        if pattern is None:
            span = (0, len(row["token_ids"]))
        else:
            match = pattern.search(row["caption"])
            if match is None:
                continue
            q = first_token_at(row["spans"], match.start())
            span = (q - 1, q)
        ids = row["token_ids"][: max(span[1], 1)]
        items.append(
            {"id": row["id"], "image": row["image"], "prompt": prompt, "token_ids": ids, "start": span[0], "end": span[1], "text": row["caption"]}
        )
    counts = {"captions": len(rows), "matching": len(items)}
    return items[:limit], counts
