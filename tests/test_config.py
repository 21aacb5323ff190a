"""Config checks that need no Snakemake run: the schema against the code's defaults, model depths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mmconcepts.config_checks import model_depth
from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.clip import CLIP_DEFAULTS
from mmconcepts.shapes.llava_settings import FINETUNE_DEFAULTS, LMM_DEFAULTS
from mmconcepts.shapes.world import WORLD_DEFAULTS

SCHEMA = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())


def test_schema_lists_exactly_the_training_keys_the_trainers_know():
    props = SCHEMA["properties"]
    assert set(props["train_lmm"]["properties"]) == set(LMM_DEFAULTS)
    assert set(props["train_clip"]["properties"]) == set(CLIP_DEFAULTS)
    assert set(props["finetune_lmm"]["properties"]) == set(FINETUNE_DEFAULTS)
    assert props["finetune_lmm"]["additionalProperties"] is False
    assert props["train_lmm"]["additionalProperties"] is props["train_clip"]["additionalProperties"] is False


def test_schema_lists_exactly_the_mutual_settings_and_family_keys():
    from mmconcepts.mutual.settings import MUTUAL_DEFAULTS
    from mmconcepts.shapes.clip_family_settings import FAMILY_DEFAULTS

    props = SCHEMA["properties"]
    assert set(props["clip_family"]["properties"]) == set(FAMILY_DEFAULTS)
    assert set(props["mutual"]["additionalProperties"]["properties"]["settings"]["properties"]) == set(MUTUAL_DEFAULTS)


def test_mutual_foreground_is_class_image_or_truth():
    from mmconcepts.mutual.settings import mutual_settings

    assert mutual_settings()["foreground"] == "class"  # the authors' code
    assert mutual_settings(foreground="image")["foreground"] == "image"
    with pytest.raises(MMConceptsError, match="mutual: foreground must be one of class, image, truth, not 'synset'"):
        mutual_settings(foreground="synset")
    assert mutual_settings()["affinity"] == "gram"  # the paper's f fᵀ
    with pytest.raises(MMConceptsError, match="mutual: affinity must be one of gram, centred, not 'laplacian'"):
        mutual_settings(affinity="laplacian")


def test_schema_lists_exactly_the_world_keys_with_the_generators_defaults():
    world = SCHEMA["properties"]["world"]["properties"]
    assert set(world) == set(WORLD_DEFAULTS)
    assert all(WORLD_DEFAULTS[key] == spec["default"] for key, spec in world.items() if "default" in spec)


def test_model_depth_reads_a_local_checkpoints_config(tmp_path):
    nested, flat, other = tmp_path / "nested", tmp_path / "flat", tmp_path / "other"
    for folder, cfg in ((nested, {"text_config": {"num_hidden_layers": 32}}), (flat, {"num_hidden_layers": 28}), (other, {})):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(cfg))
    config = {"train_lmm": {}}
    assert model_depth(str(nested), config) == 32  # LLaVA, Idefics2: the text model's depth
    assert model_depth(str(flat), config) == 28  # Qwen2-VL's older layout
    assert model_depth(str(other), config) is None  # unknown until loaded: extract checks it then


def test_the_tiny_llavas_depth_comes_from_its_training_settings():
    assert model_depth("resources/models/shapes-llava", {"train_lmm": {"text_layers": 6}}) == 6
    assert model_depth("resources/models/shapes-llava", {"train_lmm": {}}) == LMM_DEFAULTS["text_layers"]


def test_a_fine_tune_not_built_yet_is_as_deep_as_its_base():
    config = {
        "train_lmm": {"text_layers": 6},
        "models": {
            "shapes-llava": {"path": "resources/models/shapes-llava"},
            "tuned": {"path": "resources/models/tuned", "finetune": {"from": "shapes-llava", "style": "places"}},
        },
    }
    assert model_depth("resources/models/tuned", config) == 6
