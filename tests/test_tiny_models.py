"""The tiny LLaVA and tiny CLIP: build, train a few steps, reload the way the pipeline loads real models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mmconcepts.errors import MMConceptsError  # noqa: E402
from mmconcepts.shapes.caption_quality import caption_quality, word_accuracy  # noqa: E402
from mmconcepts.models.clip import load_clip  # noqa: E402
from mmconcepts.shapes.clip import CLIP_CHECKPOINT, CLIP_NAME, register_shapes_clip, train_tiny_clip  # noqa: E402
from mmconcepts.shapes.llava import train_tiny_llava
from mmconcepts.shapes.llava_settings import PROMPT  # noqa: E402
from mmconcepts.data.karpathy import load_karpathy  # noqa: E402
from mmconcepts.shapes.world import generate_world  # noqa: E402

QUICK_LMM = {
    "vision_steps": 2,
    "vision_batch_size": 4,
    "steps": 3,
    "batch_size": 4,
    "eval_images": 4,
    "eval_batch_size": 4,
    "max_new_tokens": 6,
    "min_shape_accuracy": 0,
    "min_vqa_accuracy": 0,
    "vqa_steps": 2,
    "vqa_batch_size": 4,
}
QUICK_CLIP = {"steps": 2, "batch_size": 8, "warmup": 1}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "world"
    generate_world(out, n_train=16, n_val=0, n_test=6, image_size=32)
    return out


@pytest.fixture(scope="module")
def lmm_dir(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "lmm"
    summary = train_tiny_llava(world, out, **QUICK_LMM)
    assert summary["quality"]["images"] == 4
    return out


def _captioning_inputs(processor, n: int, world: Path):
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    prompt = processor.apply_chat_template(conv, add_generation_prompt=True)
    processor.tokenizer.padding_side = "left"
    images = [Image.open(s.path).convert("RGB") for s in load_karpathy(world / "captions.json", world)[:n]]
    return prompt, processor(images=images, text=[prompt] * n, return_tensors="pt", padding=True)


def test_lmm_reloads_like_llava_hf(lmm_dir, world):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(lmm_dir)
    model = LlavaForConditionalGeneration.from_pretrained(lmm_dir)
    prompt, inputs = _captioning_inputs(processor, 2, world)
    assert prompt == f"USER: <image>\n{PROMPT} ASSISTANT:"
    # the processor expands <image> to one token per 8 × 8 patch of the 32 × 32 image
    n_image = (inputs["input_ids"] == model.config.image_token_id).sum(1)
    assert n_image.tolist() == [16, 16]
    assert inputs["input_ids"][0, 0] == processor.tokenizer.bos_token_id
    assert len(model.model.language_model.layers) == 4
    training = json.loads((lmm_dir / "training.json").read_text())
    assert 1e6 < training["parameters"] < 5e6


def test_lmm_caption_words_are_single_tokens(lmm_dir, world):
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(lmm_dir).tokenizer
    for caption in load_karpathy(world / "captions.json", world)[0].captions:
        ids = tok(" " + caption, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(caption.replace(".", " .").split())
        assert tok.decode(ids).strip() == caption


def test_generation_stops_at_eos(lmm_dir, world):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(lmm_dir)
    model = LlavaForConditionalGeneration.from_pretrained(lmm_dir).eval()
    eos = processor.tokenizer.eos_token_id
    # An output layer that always prefers </s>: generation must end after one token.
    head = torch.nn.Linear(model.config.text_config.hidden_size, model.config.text_config.vocab_size)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    head.bias.data[eos] = 1.0
    model.lm_head = head
    _, inputs = _captioning_inputs(processor, 3, world)
    out = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 1
    assert (out[:, -1] == eos).all()


def test_lmm_training_is_repeatable(lmm_dir, world, tmp_path):
    from safetensors.torch import load_file

    train_tiny_llava(world, tmp_path / "again", **QUICK_LMM)
    a, b = load_file(lmm_dir / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cached_tower_features_give_the_loss_of_pixels(lmm_dir, world):
    """Training past part 1 feeds the frozen tower's cached features through the projector: same loss as pixels."""
    import numpy as np
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from mmconcepts.models.families import FAMILIES
    from mmconcepts.shapes.llava import CaptionData, frozen_vision_features, vision_tower, with_image_features
    from mmconcepts.shapes.training import world_split

    processor = AutoProcessor.from_pretrained(lmm_dir)
    model = LlavaForConditionalGeneration.from_pretrained(lmm_dir).eval()
    samples, images = world_split(world, "train")
    data = CaptionData(processor, images, samples, FAMILIES["llava"].from_loaded(model, processor).caption_prompt(PROMPT))
    with pytest.raises(MMConceptsError, match="frozen"):
        frozen_vision_features(model, data.pixels)
    vision_tower(model).requires_grad_(False)
    features = frozen_vision_features(model, data.pixels, batch_size=5)  # batches of 5, 5, 5 and 1 images
    assert features.shape == (16, 16, model.config.vision_config.hidden_size)  # 16 images, 16 patches each, CLS dropped
    batch = data.batch([3, 0, 11, 15], np.array([0, 1, 2, 3]))
    with torch.no_grad():
        expected = model(**{k: v for k, v in batch.items() if k != "image_rows"}, pixel_values=data.pixels[[3, 0, 11, 15]]).loss
        cached = model(**with_image_features(model, features, batch)).loss
        other = model(**with_image_features(model, features, {**batch, "image_rows": [0, 3, 11, 15]})).loss
    torch.testing.assert_close(cached, expected, rtol=1e-5, atol=1e-6)
    assert abs(float(other) - float(expected)) > 1e-4  # the rows do pick the images


def test_lmm_rejects_unknown_setting(world, tmp_path):
    with pytest.raises(MMConceptsError, match="stepz"):
        train_tiny_llava(world, tmp_path / "x", stepz=3)
    with pytest.raises(MMConceptsError, match="batch_size must be at least 1"):
        train_tiny_llava(world, tmp_path / "x", batch_size=0)
    with pytest.raises(MMConceptsError, match="lr must be a non-negative number"):
        train_tiny_llava(world, tmp_path / "x", lr="fast")
    with pytest.raises(MMConceptsError, match="patch_size"):
        train_tiny_llava(world, tmp_path / "x", patch_size=5)
    assert not (tmp_path / "x").exists()


def test_quality_gate_fails_a_bad_model(world, tmp_path):
    with pytest.raises(MMConceptsError, match="min_shape_accuracy"):
        train_tiny_llava(world, tmp_path / "x", **{**QUICK_LMM, "steps": 1, "min_shape_accuracy": 1.0})
    assert not (tmp_path / "x").exists()


def test_vqa_gate_fails_a_model_that_cannot_answer(world, tmp_path):
    with pytest.raises(MMConceptsError, match="min_vqa_accuracy"):
        train_tiny_llava(world, tmp_path / "x", **{**QUICK_LMM, "steps": 1, "min_vqa_accuracy": 1.0})
    assert not (tmp_path / "x").exists()


def test_lmm_reports_vqa_accuracy_per_answer_type(lmm_dir):
    quality = json.loads((lmm_dir / "training.json").read_text())["quality"]["vqa"]
    assert set(quality["by_type"]) == {"yes/no", "number", "other"}
    assert quality["n"] == 3 * 4  # three questions per test image, four test images checked
    assert 0 <= quality["overall"] <= 1


def test_caption_quality():
    refs = [["A small red circle on grass.", "A red circle on the left."]]
    assert word_accuracy("A red circle on the left.", refs[0]) == 1.0
    assert word_accuracy("A red square on the left.", refs[0]) == pytest.approx(5 / 6)
    q = caption_quality(["A red square next to a blue circle."], refs, [{"shape": "circle", "colour": "red"}])
    assert q["shape_accuracy"] == 0.0 and q["colour_accuracy"] == 1.0 and q["exact_match"] == 0.0


def test_clip_trains_and_reloads(world, tmp_path):
    import open_clip

    out = tmp_path / "clip"
    summary = train_tiny_clip(world, out, **QUICK_CLIP)
    assert 0 <= summary["recall"]["r@5"] <= 1 and summary["recall"]["queries"] == 6 * 5
    check = summary["word_list_check"]
    assert 0 <= check["own_words_win"] <= 1 and check["images"] == 6
    training = json.loads((out / "training.json").read_text())
    assert training["word_list_check"] == check and training["context_length"] == 77
    assert 0 < training["word_list_share"] < 1
    model, preprocess, tokenizer = load_clip({"name": CLIP_NAME, "path": str(out)})
    assert model.context_length == tokenizer.context_length == 77  # a 15-word CLIPScore text fits whole
    register_shapes_clip()
    same, _, _ = open_clip.create_model_and_transforms(CLIP_NAME, pretrained=str(out / CLIP_CHECKPOINT))
    local, _, _ = open_clip.create_model_and_transforms(f"local-dir:{out}")
    for other in (same, local):
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    image = preprocess(Image.open(next((world / "images").iterdir())).convert("RGB"))[None]
    with torch.no_grad():
        img, txt = model.encode_image(image), model.encode_text(tokenizer(["A red circle on the left."]))
    assert img.shape == txt.shape == (1, model.text_projection.shape[1])


def test_clip_training_is_repeatable(world, tmp_path):
    from safetensors.torch import load_file

    for name in ("a", "b"):
        train_tiny_clip(world, tmp_path / name, **QUICK_CLIP)
    a, b = (load_file(tmp_path / name / CLIP_CHECKPOINT) for name in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    summaries = [json.loads((tmp_path / name / "training.json").read_text()) for name in ("a", "b")]
    assert summaries[0]["word_list_check"] == summaries[1]["word_list_check"]


def test_load_clip_errors_name_the_problem(tmp_path):
    with pytest.raises(MMConceptsError, match="open_clip_config.json"):
        load_clip({"name": CLIP_NAME, "path": str(tmp_path)})
    with pytest.raises(MMConceptsError, match="either a path"):
        load_clip({"name": "ViT-B-32"})
