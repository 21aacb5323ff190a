"""The tiny CLIP family of mutual knowledge: texts that never name the gap, checkpoints open_clip loads."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.clip import load_clip
from mmconcepts.shapes.classes import BACKGROUND_DESCRIPTORS, COLOUR_DESCRIPTORS, PART_DESCRIPTORS
from mmconcepts.shapes.clip_family import _forms, class_split, draw_text, positives, train_width
from mmconcepts.shapes.clip_family_settings import family_params
from mmconcepts.shapes.world import BACKGROUNDS, COLOURS, generate_world

F = {"shape": "star", "colour": "red", "background": "grass", "size": "large", "position": "left"}


@pytest.mark.parametrize("gap, words", [("background", ["grass", "sky", "stripes", "backdrop"]), ("colour", list(COLOURS))])
def test_training_texts_never_name_the_gap(gap, words):
    rng = np.random.default_rng(0)
    forms = _forms(gap)
    gap_descriptors = BACKGROUND_DESCRIPTORS if gap == "background" else COLOUR_DESCRIPTORS
    seen = set()
    for _ in range(400):
        f = {**F, "colour": COLOURS[rng.integers(6)], "background": BACKGROUNDS[rng.integers(4)]}
        text, named = draw_text(rng, f, forms)
        seen.add(text)
        assert gap not in named
        assert not any(d in text for d in gap_descriptors.values()), text
        assert not any(re.search(rf"\b{w}\b", text) for w in words), text
        # What a text says is the image's: its shape word or one of its parts, its colour.
        if "shape" in named:
            assert f["shape"] in text or any(p in text for p in PART_DESCRIPTORS[f["shape"]])
        if "colour" in named:
            assert f["colour"] in text
    assert len(seen) > 20  # the forms, parts and the other attribute vary


def test_positives_follow_the_named_attributes():
    factors = [F, {**F, "colour": "blue"}, {**F, "shape": "circle"}]
    named = [{"shape": "star"}, {"shape": "star", "colour": "red"}, {"colour": "blue"}]
    expected = [[1, 1, 0], [1, 0, 1], [0, 0, 0]]
    assert positives(factors, named).tolist() == expected


@pytest.mark.parametrize(
    "params, message",
    [
        ({"widths": [48]}, r"widths \[48\] must be multiples of 32"),
        ({"checkpoints": [0, 500]}, r"checkpoints \[500\] must lie in 0…steps \(300\)"),
        ({"gap": "shape"}, r"gap must be one of background, colour"),
        ({"widths": []}, r"widths must be a non-empty list"),
        ({"depth": 3}, r"unknown key\(s\) \['depth'\]"),
    ],
)
def test_family_params_name_the_bad_key(params, message):
    with pytest.raises(MMConceptsError, match=message):
        family_params(**params)


def test_trained_width_saves_each_checkpoint_as_an_open_clip_folder(tmp_path):
    world = tmp_path / "world"
    generate_world(world, n_train=6, n_val=0, n_test=1, image_size=32, classes_per_shape=1, classes_train_per_shape=3)
    out = tmp_path / "w32"
    summary = train_width(world, out, 32, widths=[32], steps=3, checkpoints=[0, 3], batch_size=8, warmup=1, patch_size=8)
    assert sorted(summary["members"]) == ["w32-s0", "w32-s3"]
    assert sorted(p.name for p in out.iterdir()) == ["family.json", "w32-s0", "w32-s3"]
    first, last = (load_clip({"name": m, "path": str(out / m)})[0] for m in ("w32-s0", "w32-s3"))
    assert not torch.equal(first.visual.conv1.weight, last.visual.conv1.weight)  # training moved the weights
    image = torch.zeros(1, 3, 32, 32)
    tokens = last.forward_intermediates(image=image, image_indices=1, image_output_fmt="NLC")
    assert tokens["image_intermediates"][-1].shape == (1, 16, 32)  # a 4 × 4 grid of 8-pixel patches, width 32
    facts = json.loads((out / "w32-s3" / "training.json").read_text())
    assert facts["step"] == 3 and facts["gap"] == "background" and 0 <= facts["zero_shot_top1"] <= 1


def test_class_split_reads_the_train_images_and_names_what_is_missing(tmp_path):
    world = tmp_path / "world"
    generate_world(
        world, n_train=2, n_val=0, n_test=1, image_size=16, shapes=["circle", "star"], classes_per_shape=1, classes_train_per_shape=2
    )
    factors, images = class_split(world, "train")
    assert [f["shape"] for f in factors] == ["circle", "circle", "star", "star"] and all(im.size == (16, 16) for im in images)
    explained, _ = class_split(world, "images")
    assert [f["shape"] for f in explained] == ["circle", "star"]
    next((world / "classes" / "train" / "star").iterdir()).unlink()
    with pytest.raises(MMConceptsError, match=r"classes/train: 1 unreadable image\(s\), e\.g\. star/"):
        class_split(world, "train")
    (world / "classes" / "train_factors.json").unlink()
    with pytest.raises(MMConceptsError, match=r"train_factors\.json: classification factors not found"):
        class_split(world, "train")
