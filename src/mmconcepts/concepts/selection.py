"""Which images to keep for a word, and where in the generated caption to read the model.

Definitions (DESIGN.md): keep an image when the word occurs as a whole word
(case-insensitive, punctuation ignored, optional aliases) in the generated
caption and in the ground-truth captions (``any`` of them, or the ``first``).
The position is the first occurrence of the word in the generated caption,
mapped to its first sub-token q; ``predicting`` reads q - 1 (the position whose
output predicts the word, -1 meaning the last prompt token), ``token`` reads q.
Only generated tokens are searched, never the prompt.
"""

from __future__ import annotations

import re

from mmconcepts.data.karpathy import Sample
from mmconcepts.errors import MMConceptsError

GT_MATCH = ("any", "first")
POSITIONS = ("predicting", "token")


def word_pattern(word: str, aliases: list[str] = ()) -> re.Pattern:
    forms = sorted({w.lower() for w in [word, *aliases]}, key=len, reverse=True)
    # Letters and digits delimit words; everything else (spaces, punctuation) is a boundary.
    return re.compile(r"(?<![^\W_])(?:" + "|".join(map(re.escape, forms)) + r")(?![^\W_])", re.IGNORECASE)


def first_token_at(spans: list[list[int]], char: int) -> int:
    """Index of the token whose span covers character ``char``."""
    for i, (start, end) in enumerate(spans):
        if start <= char < end:
            return i
    raise MMConceptsError(f"character {char} is not covered by any token span")


def select_samples(
    captions: list[dict],
    ground_truth: dict[str, Sample],
    word: str,
    *,
    aliases: list[str] = (),
    gt_match: str = "any",
    position: str = "predicting",
) -> dict:
    if gt_match not in GT_MATCH:
        raise MMConceptsError(f"selection.gt_match must be one of {GT_MATCH}, not {gt_match!r}")
    if position not in POSITIONS:
        raise MMConceptsError(f"selection.position must be one of {POSITIONS}, not {position!r}")
    pattern = word_pattern(word, aliases)
    counts = {"images_seen": 0, "in_prediction": 0, "in_ground_truth": 0, "kept": 0, "skipped_images": 0}
    kept = []
    for row in captions:
        if "caption" not in row:
            counts["skipped_images"] += 1
            continue
        counts["images_seen"] += 1
        sample = ground_truth.get(row["id"])
        if sample is None:
            raise MMConceptsError(f"image id {row['id']!r} of the captions is not in the ground-truth captions")
        refs = sample.captions[:1] if gt_match == "first" else sample.captions
        in_gt = any(pattern.search(c) for c in refs)
        match = pattern.search(row["caption"])
        counts["in_ground_truth"] += in_gt
        counts["in_prediction"] += match is not None
        if not (match and in_gt):
            continue
        try:
            q = first_token_at(row.get("spans", []), match.start())
        except MMConceptsError as e:
            raise MMConceptsError(
                f"image {row['id']!r}: caption {row['caption']!r}: {e}; its token spans do not match the caption "
                "(a captions file from another tokenizer or version? delete it to caption again)"
            ) from None
        kept.append(
            {
                "id": row["id"],
                "image": row["image"],
                "caption": row["caption"],
                "token_index": q,
                "position": q - 1 if position == "predicting" else q,
                # Teacher forcing only needs the generated tokens up to the read position.
                "token_ids": row["token_ids"][: q + 1],
            }
        )
    counts["kept"] = len(kept)
    return {"word": word, "aliases": list(aliases), "gt_match": gt_match, "position": position, "counts": counts, "samples": kept}


def require_enough(selection: dict, k: int, split: str) -> None:
    """Fail with the numbers a user needs when no samples, or fewer than K, were kept."""
    c = selection["counts"]
    if c["kept"] >= max(k, 1):
        return
    seen = (
        f"images seen {c['images_seen']}, word in prediction {c['in_prediction']}, "
        f"in ground truth {c['in_ground_truth']}, unreadable images {c['skipped_images']}"
    )
    if c["kept"] == 0:
        raise MMConceptsError(f"word {selection['word']!r}: no {split} samples kept ({seen}); check the word and its aliases")
    raise MMConceptsError(f"word {selection['word']!r}: only {c['kept']} {split} samples kept ({seen}), fewer than K = {k}")
