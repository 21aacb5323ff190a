"""The classification set: the shapes world's class split and the loader of ImageNet-style folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from mmconcepts.data.classification import load_classification
from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.world import _RGB, BACKGROUNDS, COLOURS, SHAPES, generate_world

PER_CLASS = 3


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "shapes"
    generate_world(out, n_train=4, n_val=0, n_test=1, image_size=64, classes_per_shape=PER_CLASS, classes_train_per_shape=2)
    return out / "classes"


def _load(root: Path, **kw):
    return load_classification(root / "images", root / "descriptors.json", root / "templates.json", root / "classes.json", **kw)


def test_world_writes_one_folder_per_shape_with_masks_of_the_object(classes):
    truth = json.loads((classes / "truth.json").read_text())
    assert sorted(p.name for p in (classes / "images").iterdir()) == sorted(SHAPES)
    assert len(truth["images"]) == len(SHAPES) * PER_CLASS
    for key, f in truth["images"].items():
        shape = key.split("/")[0]
        assert f["shape"] == shape and f["second_shape"] == "none"
        image = np.asarray(Image.open(classes / "images" / key), dtype=float)
        mask = np.asarray(Image.open(classes / "masks" / key))
        assert set(np.unique(mask)) <= {0, 255}
        inside = mask == 255
        assert inside.sum() > 0.15 * inside.size  # object-centric: the object fills a good part of the image
        assert np.allclose(np.argwhere(inside).mean(0), 31.5, atol=3)  # centred
        # The mask's interior is the object's colour (jitter ±12; its antialiased rim is left out),
        # and no pixel outside the mask is.
        distance = np.abs(image - np.array(_RGB[f["colour"]])).max(2)
        assert (distance[binary_erosion(inside, np.ones((3, 3)))] <= 12).all(), key
        assert not (distance[~inside] <= 12).any(), key


def test_train_images_are_drawn_like_the_explained_ones_with_other_ids(classes):
    train = json.loads((classes / "train_factors.json").read_text())
    explained = json.loads((classes / "truth.json").read_text())["images"]
    assert len(train) == 2 * len(SHAPES) and not set(train) & set(explained)
    for key, f in train.items():
        assert f["shape"] == key.split("/")[0] and f["position"] == "centre" and f["second_shape"] == "none"
        assert (classes / "train" / key).is_file()
    assert {f["size"] for f in train.values()} == {f["size"] for f in explained.values()} == {"xlarge"}


def test_descriptor_bank_has_each_shapes_own_parts_and_the_shared_attributes(classes):
    bank = json.loads((classes / "descriptors.json").read_text())
    truth = json.loads((classes / "truth.json").read_text())["descriptors"]
    assert sorted(bank) == sorted(SHAPES)
    for shape, descriptors in bank.items():
        own = [d for d in descriptors if truth[d]["attribute"] == "shape"]
        assert len(own) == 3 and all(truth[d]["value"] == shape for d in own)
    parts = [d for ds in bank.values() for d in ds if truth[d]["attribute"] == "shape"]
    assert len(parts) == len(set(parts))  # no part describes two shapes
    assert {truth[d]["value"] for d in truth if truth[d]["attribute"] == "colour"} == set(COLOURS)
    assert {truth[d]["value"] for d in truth if truth[d]["attribute"] == "background"} == set(BACKGROUNDS)


def test_loader_reads_the_world_set(classes):
    data = _load(classes)
    assert data.classes == tuple(SHAPES)
    assert len(data.descriptors) == 3 * len(SHAPES) + len(COLOURS) + len(BACKGROUNDS)  # pooled, deduplicated
    assert len(data.images) == len(SHAPES) * PER_CLASS
    assert all(path.parent.name == data.classes[label] for path, label in data.images)
    assert data.class_prompts(0)[0] == "a photo of a circle."
    assert len(_load(classes, per_class=1).images) == len(SHAPES)


def _imagenet_like(root: Path) -> Path:
    for wnid in ("n01440764", "n01443537"):
        (root / "val" / wnid).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / "val" / wnid / "a.JPEG")
    (root / "names.json").write_text(json.dumps({"n01440764": "tench", "n01443537": "goldfish"}))
    (root / "bank.json").write_text(json.dumps({"tench": ["fins", " scales "], "goldfish": ["fins", "orange colour"]}))
    (root / "templates.json").write_text(json.dumps(["a photo of a {}."]))
    return root


def test_loader_reads_an_imagenet_style_folder(tmp_path):
    root = _imagenet_like(tmp_path)
    data = load_classification(root / "val", root / "bank.json", root / "templates.json", root / "names.json")
    assert data.classes == ("tench", "goldfish")
    assert data.descriptors == ("fins", "scales", "orange colour")  # pooled in order, deduplicated, trimmed
    assert [(p.parent.name, label) for p, label in data.images] == [("n01440764", 0), ("n01443537", 1)]
    (root / "list.json").write_text(json.dumps(["tench", "goldfish"]))  # names in sorted folder order
    assert load_classification(root / "val", root / "bank.json", root / "templates.json", root / "list.json").classes == data.classes


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda r: (r / "val/n01443537/a.JPEG").unlink(), r"n01443537: class 'goldfish' has no images"),
        (lambda r: (r / "bank.json").write_text(json.dumps({"shark": ["teeth"]})), r"bank\.json: descriptor bank names class\(es\) \['shark'\]"),
        (lambda r: (r / "bank.json").write_text(json.dumps({"tench": []})), r"bank\.json: the descriptor bank is empty"),
        (lambda r: (r / "templates.json").write_text(json.dumps(["a photo"])), r"templates\.json: template\(s\) \['a photo'\] must hold"),
        (lambda r: (r / "names.json").write_text(json.dumps({"n0000": "cat"})), r"names\.json: no folder .* for class\(es\) \['n0000'\]"),
        (lambda r: (r / "bank.json").unlink(), r"bank\.json: descriptor bank not found"),
    ],
)
def test_loader_names_what_is_wrong(tmp_path, break_it, message):
    root = _imagenet_like(tmp_path)
    break_it(root)
    with pytest.raises(MMConceptsError, match=message):
        load_classification(root / "val", root / "bank.json", root / "templates.json", root / "names.json")
