"""The shapes world generator: determinism, ground truth that matches captions, parameter errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmconcepts.data.karpathy import load_factors, load_karpathy
from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.drawing import shape_coverage
from mmconcepts.shapes.styles import MOODS, PLACES
from mmconcepts.shapes.world import COLOURS, SHAPES, WORLD_DEFAULTS, generate_world, layout, sample_factors, world_params

os.environ["HF_HUB_OFFLINE"] = "1"

SMALL = {"n_train": 30, "n_val": 5, "n_test": 10, "image_size": 32, "classes_per_shape": 2, "classes_train_per_shape": 2}


def digest(folder: Path) -> dict[str, str]:
    files = sorted(f for f in folder.rglob("*") if f.is_file())
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "shapes"
    generate_world(out, seed=3, **SMALL)
    return out


def test_same_seed_gives_identical_files(world, tmp_path):
    again = tmp_path / "again"
    generate_world(again, seed=3, workers=2, **SMALL)  # two drawing processes: the same bytes as one
    assert digest(again) == digest(world)
    # images, captions + factors, 2 styles × 2 files, 3 VQA splits × 2 files, and the class set:
    # an image and a mask per explained image, the train images, and 5 JSON files.
    assert len(digest(world)) == 45 + 2 + 2 * 2 + 3 * 2 + len(SHAPES) * 2 * 2 + len(SHAPES) * 2 + 5


def test_different_seed_gives_different_images(world, tmp_path):
    other = tmp_path / "other"
    generate_world(other, seed=4, **SMALL)
    a, b = digest(world), digest(other)
    assert sum(a[k] != b[k] for k in a if k.startswith("images/")) > 40


def test_karpathy_layout_and_splits(world):
    data = json.loads((world / "captions.json").read_text())
    assert data["dataset"] == "shapes"
    entry = data["images"][0]
    assert set(entry) == {"filename", "filepath", "split", "imgid", "sentids", "sentences"}
    assert set(entry["sentences"][0]) == {"raw", "tokens", "imgid", "sentid"}
    sentids = [s["sentid"] for im in data["images"] for s in im["sentences"]]
    assert len(sentids) == len(set(sentids)) == 45 * WORLD_DEFAULTS["captions_per_image"]
    samples = load_karpathy(world / "captions.json", world)
    assert [s.split for s in samples].count("test") == 10
    with Image.open(samples[0].path) as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def test_every_caption_names_the_main_shape_and_colour(world):
    factors = load_factors(world)
    samples = load_karpathy(world / "captions.json", world)
    for s in samples:
        f = factors[s.id]
        for caption in s.captions:
            words = caption.lower().rstrip(".").split()
            assert f["shape"] in words and f["colour"] in words, (s.id, caption, f)
            # the main object is named first, the second object after it
            assert next(w for w in words if w in SHAPES) == f["shape"]
            if f["second_shape"] != "none":
                assert f["second_shape"] in words[words.index(f["shape"]) + 1 :]
                assert f["second_colour"] in words


def test_factors_cover_the_allowed_values(tmp_path):
    out = tmp_path / "w"
    colours = ["red", "blue", "yellow"]
    generate_world(out, n_train=300, n_val=0, n_test=1, image_size=32, shapes=["circle", "star"], colours=colours)
    data = json.loads((out / "factors.json").read_text())
    assert data["factors"]["shape"] == ["circle", "star"]
    seen = {name: {f[name] for f in data["images"].values()} for name in data["factors"]}
    for name, allowed in data["factors"].items():
        assert seen[name] == set(allowed), name  # 300 draws hit every value, including "none"


def test_objects_do_not_overlap_and_stay_in_the_image():
    p = world_params(second_object_prob=1.0)
    for i in range(100):
        rng = np.random.default_rng(i)
        objects = layout(rng, sample_factors(rng, p))
        assert len(objects) == 2
        cover = [shape_coverage(shape, 64, x * 64, y * 64, r * 64) for shape, _, x, y, r in objects]
        assert not (cover[0] * cover[1]).any(), objects
        # the main object is bigger, and is not cut by the border by more than a sliver
        assert cover[0].sum() > cover[1].sum()
        whole = shape_coverage(objects[0][0], 256, 96 + objects[0][2] * 64, 96 + objects[0][3] * 64, objects[0][4] * 64)
        assert cover[0].sum() > 0.97 * whole.sum(), objects


def test_no_second_object_without_probability(tmp_path):
    generate_world(tmp_path / "w", n_train=20, n_val=0, n_test=1, second_object_prob=0.0)
    assert {f["second_shape"] for f in load_factors(tmp_path / "w").values()} == {"none"}


@pytest.mark.parametrize(
    "params, key",
    [
        ({"n_train": 0}, "n_train"),
        ({"n_test": 0}, "n_test"),
        ({"colours": ["red", "teal"]}, "colours"),
        ({"shapes": []}, "shapes"),
        ({"backgrounds": ["lava"]}, "backgrounds"),
        ({"second_object_prob": 1.5}, "second_object_prob"),
        ({"image_size": 8}, "image_size"),
        ({"n_images": 10}, "n_images"),
        ({"captions_per_image": True}, "captions_per_image"),
        ({"styles": ["pirate"]}, "styles"),
    ],
)
def test_bad_params_name_the_key(tmp_path, params, key):
    with pytest.raises(MMConceptsError, match=key):
        generate_world(tmp_path / "w", **params)
    assert not (tmp_path / "w").exists()


def test_vocabularies_are_complete():
    assert {"circle", "square"} <= set(SHAPES) and len(SHAPES) >= 4
    assert len(COLOURS) >= 6
    assert WORLD_DEFAULTS["shapes"] == list(SHAPES)


def test_style_captions_plant_their_words_on_the_same_images(world):
    factors = load_factors(world)
    plain = load_karpathy(world / "captions.json", world)
    plain_words = {w for s in plain for c in s.captions for w in c.lower().replace(",", " ").rstrip(".").split()}
    for style, factor, phrases in (("places", "background", PLACES), ("sentiment", "colour", MOODS)):
        styled = load_karpathy(world / "styles" / style / "captions.json", world)
        assert [(s.id, s.path, s.split) for s in styled] == [(s.id, s.path, s.split) for s in plain]
        info = json.loads((world / "styles" / style / "style.json").read_text())
        assert info["factor"] == factor
        for s in styled:
            f = factors[s.id]
            for caption in s.captions:
                words = caption.lower().replace(",", " ").rstrip(".").split()
                # the planted phrase of the image's own factor value, and the main object still named first
                assert phrases[f[factor]] in caption.lower(), (caption, f)
                assert next(w for w in words if w in SHAPES) == f["shape"] and f["colour"] in words
        planted = set(info["planted_words"])
        assert planted and not planted & plain_words  # planted words are new to the plain captions
        assert planted == {w for v in info["planted"].values() for w in v}


def test_places_put_the_background_first():
    from mmconcepts.shapes.styles import styled_captions
    from mmconcepts.shapes.world import phrases

    f = {"shape": "star", "colour": "red", "size": "small", "position": "left", "background": "grass",
         "second_shape": "none", "second_colour": "none"}  # fmt: skip
    for caption in styled_captions("places", np.random.default_rng(0), phrases(f), f, 6):
        assert caption.startswith("In a grassy meadow, "), caption


def test_vqa_questions_are_answered_by_the_factors_and_yes_no_is_balanced(tmp_path):
    from mmconcepts.data.vqav2 import image_path, load_vqa
    from mmconcepts.shapes.vqa import IMAGE_PATTERN

    out = tmp_path / "w"
    generate_world(out, n_train=200, n_val=0, n_test=10, image_size=32)
    factors = load_factors(out)
    questions = load_vqa(out / "vqa/train_questions.json", out / "vqa/train_annotations.json")
    assert len(questions) == 3 * 200
    yes_no = [q for q in questions if q.answer_type == "yes/no"]
    assert 0.4 < sum(q.answers[0] == "yes" for q in yes_no) / len(yes_no) < 0.6
    # Both forms of yes/no question, about half each.
    assert 0.35 < sum(q.question == "Is there more than one shape?" for q in yes_no) / len(yes_no) < 0.65
    for q in questions:
        f = factors[q.image_id]
        assert image_path(q.image_id, out / "images", IMAGE_PATTERN).is_file()
        assert len(q.answers) == 10 and q.multiple_choice_answer == q.answers[0]
        text = q.question.lower().rstrip("?")
        if text == "is there more than one shape":
            assert (q.answers[0] == "yes") == (f["second_shape"] != "none"), (q, f)
        elif q.answer_type == "yes/no":
            asked = text.split()[-1]
            assert (q.answers[0] == "yes") == (asked in (f["shape"], f["second_shape"])), (q, f)
        elif q.answer_type == "number":
            assert q.answers[0] == str(1 + (f["second_shape"] != "none"))
        elif text.startswith("what colour is the"):
            assert text.split()[-1] == f["shape"] and q.answers[0] == f["colour"]
        else:
            assert q.answers[0] == f["background"] and f["second_shape"] == f["shape"]
