"""VQAv2-format questions about the shapes world, with answers known from each image's factors.

Per image, one question of each kind, VQAv2's three answer types: yes/no, ``how many
shapes are there?`` (number), and ``what colour is the <shape>?`` about the main object, or
``what is the background?`` when the second object has the main one's shape (other). Every
question has the ten human answers VQAv2 files carry, here all the same: the world's
answers are not ambiguous.

The yes/no question is ``is there a <shape>?`` (the shape asked about present with
probability one half) for half of the images, ``is there more than one shape?`` for the
other half. The first needs the model to match a word of the question with the image: the
tiny LLaVA (4 blocks, trained for minutes on the CPU) does not learn that (measured: yes/no
at 46 to 51 % after 300 to 700 question steps, while it counts and names colours at 99 %).
The second it answers from the image alone, so the model has yes and no answers of its own
to steer between.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmconcepts.shapes.world import NONE

IMAGE_PATTERN = "{image_id:05d}.png"  # an image id's file under the world's images/ folder
N_ANSWERS = 10


def questions_of(rng: np.random.Generator, f: dict, shapes: list[str]) -> list[dict]:
    """The image's questions as (question, question_type, answer_type, answer) dicts."""
    present = {f["shape"], f["second_shape"]} - {NONE}
    absent = [s for s in shapes if s not in present]
    if rng.random() < 0.5:
        two = f["second_shape"] != NONE
        yes_no = {"question": "Is there more than one shape?", "question_type": "is there", "answer": "yes" if two else "no"}
    elif absent and rng.random() < 0.5:
        yes_no = {"question": f"Is there a {absent[rng.integers(len(absent))]}?", "question_type": "is there a", "answer": "no"}
    else:
        options = sorted(present)
        yes_no = {"question": f"Is there a {options[rng.integers(len(options))]}?", "question_type": "is there a", "answer": "yes"}
    out = [
        {**yes_no, "answer_type": "yes/no"},
        {
            "question": "How many shapes are there?",
            "question_type": "how many",
            "answer_type": "number",
            "answer": str(1 + (f["second_shape"] != NONE)),
        },
    ]
    if f["second_shape"] == f["shape"]:
        out.append({"question": "What is the background?", "question_type": "what is the", "answer_type": "other", "answer": f["background"]})
    else:
        out.append(
            {"question": f"What colour is the {f['shape']}?", "question_type": "what colour is the", "answer_type": "other", "answer": f["colour"]}
        )
    return out


def vqa_files(entries: list[tuple[int, str, list[dict]]]) -> dict[str, dict[str, dict]]:
    """Per split, the VQAv2 questions and annotations documents of (image id, split, questions) entries."""
    files: dict[str, dict[str, dict]] = {}
    for image_id, split, questions in entries:
        doc = files.setdefault(split, {"questions": {"questions": []}, "annotations": {"annotations": []}})
        for j, q in enumerate(questions):
            qid = image_id * 10 + j
            doc["questions"]["questions"].append({"image_id": image_id, "question": q["question"], "question_id": qid})
            doc["annotations"]["annotations"].append(
                {
                    "question_id": qid,
                    "image_id": image_id,
                    "question_type": q["question_type"],
                    "answer_type": q["answer_type"],
                    "multiple_choice_answer": q["answer"],
                    "answers": [{"answer": q["answer"], "answer_confidence": "yes", "answer_id": i + 1} for i in range(N_ANSWERS)],
                }
            )
    return files


def world_questions(world_dir, split: str):
    """The questions of one split of a generated world, with their answers."""
    from mmconcepts.data.vqav2 import load_vqa

    folder = Path(world_dir) / "vqa"
    return load_vqa(folder / f"{split}_questions.json", folder / f"{split}_annotations.json")
