"""Reading Karpathy-format caption files laid out like COCO's dataset_coco.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmconcepts.errors import MMConceptsError
from mmconcepts.data.karpathy import Sample, factors_of, load_factors, load_karpathy

os.environ["HF_HUB_OFFLINE"] = "1"


def _image(filepath, filename, split, imgid, captions, cocoid):
    return {
        "filepath": filepath,
        "sentids": [10 * imgid + i for i in range(len(captions))],
        "filename": filename,
        "imgid": imgid,
        "split": split,
        "sentences": [
            {"tokens": c.lower().strip(" .").split(), "raw": c, "imgid": imgid, "sentid": 10 * imgid + i}
            for i, c in enumerate(captions)
        ],
        "cocoid": cocoid,
    }


@pytest.fixture
def coco(tmp_path) -> Path:
    """A four-image dataset_coco.json in COCO's own layout (train2014/, val2014/)."""
    images = [
        _image("val2014", "COCO_val2014_000000391895.jpg", "test", 0, ["A man with a red helmet on a moped. ", "A dog."], 391895),
        _image("train2014", "COCO_train2014_000000057870.jpg", "train", 1, ["A restaurant with chairs."], 57870),
        _image("val2014", "COCO_val2014_000000522418.jpg", "restval", 2, ["A woman cutting a cake."], 522418),
        _image("val2014", "COCO_val2014_000000184613.jpg", "test", 3, ["A child holding an umbrella."], 184613),
        _image("val2014", "COCO_val2014_000000318219.jpg", "val", 4, ["A computer on a desk."], 318219),
    ]
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path


def test_reads_coco_layout(coco, tmp_path):
    root = tmp_path / "coco"
    samples = load_karpathy(coco, root, restval="train")
    assert [s.id for s in samples] == ["0", "1", "2", "3", "4"]
    first = samples[0]
    assert first == Sample(
        id="0",
        path=root / "val2014" / "COCO_val2014_000000391895.jpg",
        split="test",
        captions=("A man with a red helmet on a moped.", "A dog."),
    )


def test_restval_is_skipped_unless_asked_and_limit_keeps_file_order(coco, tmp_path):
    # The paper's train split is Karpathy's train only (82,783 COCO images), not train + restval.
    assert [s.id for s in load_karpathy(coco, tmp_path, split="train")] == ["1"]
    assert "2" not in [s.id for s in load_karpathy(coco, tmp_path)]
    assert [s.id for s in load_karpathy(coco, tmp_path, split="train", restval="train")] == ["1", "2"]
    with pytest.raises(MMConceptsError, match="restval"):
        load_karpathy(coco, tmp_path, restval="val")
    assert [s.id for s in load_karpathy(coco, tmp_path, split="test", limit=1)] == ["0"]
    assert [s.id for s in load_karpathy(coco, tmp_path, split="test", limit=5)] == ["0", "3"]
    assert load_karpathy(coco, tmp_path, split="val")[0].split == "val"


def test_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(MMConceptsError, match="nope.json"):
        load_karpathy(missing, tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(MMConceptsError, match="broken.json.*not valid JSON"):
        load_karpathy(broken, tmp_path)
    no_images = tmp_path / "other.json"
    no_images.write_text('{"annotations": []}')
    with pytest.raises(MMConceptsError, match="other.json.*'images'"):
        load_karpathy(no_images, tmp_path)


def test_missing_entry_key_is_named(coco, tmp_path):
    data = json.loads(coco.read_text())
    del data["images"][3]["filename"]
    coco.write_text(json.dumps(data))
    with pytest.raises(MMConceptsError, match=r"images\[3\].*'filename'"):
        load_karpathy(coco, tmp_path)


def test_unknown_split_is_an_error(coco, tmp_path):
    with pytest.raises(MMConceptsError, match="unknown split 'testing'"):
        load_karpathy(coco, tmp_path, split="testing")


def test_load_factors_from_folder_or_file(tmp_path):
    (tmp_path / "factors.json").write_text(json.dumps({"factors": {"shape": ["circle"]}, "images": {"0": {"shape": "circle"}}}))
    assert load_factors(tmp_path) == {"0": {"shape": "circle"}}
    assert load_factors(tmp_path / "factors.json")["0"]["shape"] == "circle"
    with pytest.raises(MMConceptsError, match="elsewhere.*not found"):
        load_factors(tmp_path / "elsewhere")


def test_factors_of_names_an_id_the_factors_file_lacks(tmp_path):
    (tmp_path / "factors.json").write_text('{"images": {"0": {"shape": "circle"}}}')
    assert factors_of(tmp_path, ["0"]) == [{"shape": "circle"}]
    with pytest.raises(MMConceptsError, match="no factors for 1 of 2 image id\\(s\\), e.g. '7'"):
        factors_of(tmp_path, ["0", "7"])
