"""Steering's parts on hand-made inputs and a tiny random LLaVA: sets, vectors, the best-setting rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_lmms import HIDDEN, build_llava

from mmconcepts.concepts.extraction import hidden_states_at
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.generation import greedy_generate
from mmconcepts.models.registry import load_adapter
from mmconcepts.report.steering import best_setting
from mmconcepts.steering.sets import caption_items
from mmconcepts.steering.specs import parse_set
from mmconcepts.steering.vectors import load_vector, mean_state, save_vector

PROMPT = "Provide a one-sentence caption for the provided image."


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava")
    adapter = load_adapter("llava", str(build_llava(root / "model")), dtype="float32", device="cpu")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        paths.append(root / f"im{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    return adapter, paths


@pytest.mark.parametrize(
    "spec, parsed",
    [("before_eos", ("before_eos", None)), ({"answer": "no"}, ("answer", "no")), ({"word": "red"}, ("word", "red")), ({"answer": 2}, ("answer", "2"))],
)
def test_set_specs(spec, parsed):
    assert parse_set(spec, "steering.x.base") == parsed


@pytest.mark.parametrize("spec", [{"answer": True}, {"colour": "red"}, "after_eos", {"word": ""}, {"answer": "yes", "word": "red"}])
def test_a_bad_set_spec_is_named(spec):
    with pytest.raises(MMConceptsError, match=r"steering\.x\.target: .* is not a set"):
        parse_set(spec, "steering.x.target")


def test_word_items_read_the_position_predicting_the_word():
    rows = [
        {"id": "a", "image": "a.png", "caption": "red circle", "token_ids": [7, 8], "spans": [[0, 3], [4, 10]]},
        {"id": "b", "image": "b.png", "caption": "a red star", "token_ids": [5, 7, 9], "spans": [[0, 1], [2, 5], [6, 10]]},
        {"id": "c", "image": "c.png", "caption": "a blue star", "token_ids": [5, 6, 9], "spans": [[0, 1], [2, 6], [7, 11]]},
    ]
    items, counts = caption_items(rows, "P", "word", "red", limit=10)
    assert [(i["id"], i["start"], i["end"], i["token_ids"]) for i in items] == [("a", -1, 0, [7]), ("b", 0, 1, [5])]
    assert [i["text"] for i in items] == ["red circle", "a red star"]
    assert counts == {"captions": 3, "matching": 2}
    everything, _ = caption_items(rows, "P", "before_eos", None, limit=2)
    assert [(i["start"], i["end"], i["token_ids"]) for i in everything] == [(0, 2, [7, 8]), (0, 3, [5, 7, 9])]


def test_a_sets_mean_state_is_the_mean_over_items_of_their_span_means(llava):
    adapter, paths = llava
    images = [Image.open(p).convert("RGB") for p in paths]
    prompt = adapter.caption_prompt(PROMPT)
    generated = [ids or [adapter.tokenizer.eos_token_id] for ids in greedy_generate(adapter, images, prompt, 5)]
    spans = [(-1, 0), (0, len(generated[1])), (0, 1)]
    items = [
        {"id": str(i), "image": str(p), "prompt": prompt, "token_ids": g, "start": s, "end": e}
        for i, (p, g, (s, e)) in enumerate(zip(paths, generated, spans))
    ]
    got = mean_state(adapter, items, "2", batch_size=2)
    # Independently: each position's state read alone, averaged per item, then over items.
    per_item = []
    for image, g, (s, e) in zip(images, generated, spans):
        states = [hidden_states_at(adapter, [image], prompt, [g], [q], ["2"])["2"][0] for q in range(s, e)]
        per_item.append(torch.stack(states).double().mean(0))
    np.testing.assert_allclose(got, torch.stack(per_item).mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_a_vector_of_another_hidden_size_is_named(tmp_path):
    save_vector(tmp_path, np.ones(8), {"base": np.zeros(8), "target": np.ones(8)}, {"model": "tiny", "layer": "2"})
    vector, facts = load_vector(tmp_path / "vector.safetensors", 8)
    assert facts["norm"] == pytest.approx(np.sqrt(8)) and facts["hidden_size"] == 8 and vector.shape == (8,)
    with pytest.raises(MMConceptsError, match=f"a vector of size 8 \\(made on 'tiny'\\) for a model of hidden size {HIDDEN}"):
        load_vector(tmp_path / "vector.safetensors", HIDDEN)


def _vqa_run(alpha, flip, other_change):
    return {"alpha": alpha, "figures": {"flip_rate": flip, "off_target_accuracy_change": {"number": other_change, "other": 0.0}}}


def test_the_best_vqa_setting_is_the_largest_flip_within_the_accuracy_budget():
    layers = [
        {"layer": "2", "runs": [_vqa_run(1, 0.5, -0.01), _vqa_run(2, 0.95, -0.20)]},  # α = 2 breaks the other answers
        {"layer": "3", "runs": [_vqa_run(1, 0.7, -0.04), _vqa_run(2, 0.7, 0.0)]},
    ]
    best = best_setting("vqa", layers)
    assert (best["layer"], best["alpha"], best["value"]) == ("3", 1, 0.7)  # ties go to the smaller α
    assert best_setting("vqa", [{"layer": "2", "runs": [_vqa_run(1, 0.9, -0.5)]}]) is None
