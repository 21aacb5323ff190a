"""Every adapter, offline, on a tiny random checkpoint of its family's real classes (conftest sets HF_HUB_OFFLINE).

Captions -> selection -> extraction run as in the workflow on images of
different sizes (so Qwen's prompts differ in length inside a batch). Random
models babble, so each image's word is one its own caption contains.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_lmms import BUILDERS, LAYERS, checkpoint, idefics2_image_tokens, llava_image_tokens, qwen_image_tokens

from mmconcepts.concepts.captioning import caption_split, read_captions
from mmconcepts.concepts.extraction import build_batch, extract_features, hidden_states_at
from mmconcepts.concepts.feature_store import read_features
from mmconcepts.concepts.selection import select_samples
from mmconcepts.data.karpathy import Sample
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.families import FAMILIES
from mmconcepts.models.generation import greedy_generate
from mmconcepts.models.registry import load_adapter

INSTRUCTION = "Provide a one-sentence caption for the provided image."
SIZES = [(56, 56), (112, 84), (84, 56), (56, 112)]  # (width, height); multiples of Qwen's 28-pixel merged patch
MAX_NEW = 12
# The first adapters' families: checks of family-independent code (generation settings, feature storage, image
# token counts) stay on them; the checks of what a family declares run on all.
FIRST = ["idefics2", "llava", "qwen2_5_vl", "qwen2_vl"]
ALL_LAYERS = [*map(str, range(1, LAYERS + 1)), "final"]


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def run(request, tmp_path_factory):
    """One family: its checkpoint loaded by path, four images on disk and their captions."""
    family = request.param
    root = tmp_path_factory.mktemp(family)
    adapter = load_adapter(family, str(checkpoint(family, tmp_path_factory)), dtype="float32", device="cpu")
    rng = np.random.default_rng(0)
    samples = []
    for i, (w, h) in enumerate(SIZES):
        path = root / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        samples.append(Sample(id=str(i), path=path, split="train", captions=()))
    out = root / "captions.jsonl"
    caption_split(adapter, samples, out, instruction=INSTRUCTION, batch_size=4, max_new_tokens=MAX_NEW)
    captions = read_captions(out)
    return {
        "family": family, "adapter": adapter, "captions": captions, "root": root,
        "images": [Image.open(s.path).convert("RGB") for s in samples], "prompt": adapter.caption_prompt(INSTRUCTION),
    }  # fmt: skip


def whole_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[^\W_]+", text) if w.isascii() and w.isalpha()]


def select_generated_words(run, position: str) -> dict:
    """Per image, a word its caption contains (a different word index per image), selected as the workflow does."""
    kept = []
    for i, row in enumerate(run["captions"]):
        words = whole_words(row["caption"])
        assert words, f"{run['family']}: caption {row['caption']!r} has no word to select"
        word = words[i % len(words)]
        truth = {row["id"]: Sample(id=row["id"], path=row["image"], split="train", captions=(f"it is {word} here",))}
        selection = select_samples([row], truth, word, position=position)
        assert selection["counts"]["kept"] == 1
        kept.append({**selection["samples"][0], "word": word})
    return {"word": "various", "position": position, "samples": kept}


def test_every_family_has_a_tiny_checkpoint():
    assert sorted(FAMILIES) == sorted(BUILDERS)


def test_missing_local_path_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(MMConceptsError, match=re.escape(str(missing))):
        load_adapter("llava", str(missing))


def test_unknown_adapter_lists_the_supported_ones():
    supported = ", ".join(sorted(FAMILIES))
    with pytest.raises(MMConceptsError, match=re.escape(f"unknown adapter 'molmo'; supported: {supported}")):
        load_adapter("molmo", "resources/models/whatever")
    assert "gemma3, idefics2, idefics3, internvl, llava" in supported


def test_a_checkpoint_of_another_family_is_named(tmp_path_factory):
    path = checkpoint("llava", tmp_path_factory)
    with pytest.raises(MMConceptsError, match="is a 'llava' checkpoint, not one of adapter 'qwen2_vl'"):
        load_adapter("qwen2_vl", str(path), dtype="float32", device="cpu")


@pytest.mark.parametrize("run", ["llava"], indirect=True)
def test_a_structure_without_blocks_or_norm_names_the_missing_part(run):
    """A decoder whose blocks are not a ModuleList of num_hidden_layers, or which has no norm, is refused by name."""
    adapter = run["adapter"]
    decoder, family = adapter.language_model(), adapter.family
    blocks, norm = decoder.layers, decoder.norm
    try:
        decoder.layers = torch.nn.Sequential(*blocks)
        with pytest.raises(MMConceptsError, match=r"no decoder blocks found \(no ModuleList of 3 blocks in LlamaModel\)"):
            family.from_loaded(adapter.model, adapter.processor)
        decoder.layers = blocks
        del decoder.norm
        with pytest.raises(MMConceptsError, match="no final norm found"):
            family.from_loaded(adapter.model, adapter.processor)
    finally:
        decoder.layers, decoder.norm = blocks, norm
    assert family.from_loaded(adapter.model, adapter.processor).final_norm() is norm


def test_every_special_token_of_the_image_is_never_generated(run):
    """The markup the processor writes around and inside an image (beyond the prompt's own tokens) is banned."""
    adapter = run["adapter"]
    tok = adapter.tokenizer
    specials = set(tok.added_tokens_decoder)
    written = set(adapter.encode(run["images"], run["prompt"], padding_side="left")["input_ids"].flatten().tolist())
    in_prompt = set(tok(run["prompt"])["input_ids"]) - {adapter.image_token_id()}  # BOS included
    markup = (written - in_prompt - {tok.pad_token_id}) & specials
    assert adapter.image_token_id() in markup
    assert markup <= adapter.never_generated_ids()
    assert not adapter.never_generated_ids() & adapter.stop_token_ids()


def test_modules_are_the_text_model(run):
    adapter = run["adapter"]
    text = adapter.model.config.get_text_config()
    assert adapter.n_layers == text.num_hidden_layers == LAYERS
    assert adapter.unembedding().weight.shape == (text.vocab_size, text.hidden_size)
    assert adapter.final_norm() is adapter.language_model().norm
    assert adapter.model.generation_config.eos_token_id is not None
    assert set(np.atleast_1d(adapter.model.generation_config.eos_token_id)) <= adapter.stop_token_ids()


@pytest.mark.parametrize("run", FIRST, indirect=True)
def test_image_tokens_expanded_as_the_processor_does(run):
    adapter, family = run["adapter"], run["family"]
    inputs = adapter.encode(run["images"], run["prompt"], padding_side="left")
    counts = (inputs["input_ids"] == adapter.image_token_id()).sum(1).tolist()
    config = adapter.model.config
    if family == "llava":
        expected = [llava_image_tokens(config)] * len(SIZES)
    elif family == "idefics2":
        expected = [idefics2_image_tokens(config, adapter.processor)] * len(SIZES)
    else:
        # Native resolution: one token per 28x28 pixels (14-pixel patches merged 2x2), different per image.
        expected = [(w // 28) * (h // 28) for w, h in SIZES]
        assert qwen_image_tokens(config, inputs["image_grid_thw"]) == expected
        assert len(set(expected)) > 1
    assert counts == expected


@pytest.mark.parametrize("run", ["idefics2"], indirect=True)
def test_idefics2_image_splitting_gives_five_images(run):
    adapter, images = run["adapter"], run["images"][:2]
    processor = adapter.processor.image_processor
    processor.do_image_splitting = True  # 4 crops and the whole image, as idefics2-8b can be configured
    try:
        inputs = adapter.encode(images, run["prompt"], padding_side="left")
        counts = (inputs["input_ids"] == adapter.image_token_id()).sum(1).tolist()
        assert counts == [idefics2_image_tokens(adapter.model.config, adapter.processor)] * 2 == [20, 20]
        assert hidden_states_at(adapter, images, run["prompt"], [[], []], [-1, -1], ["1"])["1"].shape == (2, 32)
    finally:
        processor.do_image_splitting = False


def test_batched_captions_equal_one_by_one(run):
    adapter = run["adapter"]
    batched = [row["token_ids"] for row in run["captions"]]
    assert batched == [greedy_generate(adapter, [im], run["prompt"], MAX_NEW)[0] for im in run["images"]]


@pytest.mark.parametrize("position", ["predicting", "token"])
def test_position_points_at_the_word(run, position):
    adapter = run["adapter"]
    tok = adapter.tokenizer
    selection = select_generated_words(run, position)
    samples = selection["samples"]
    gen = [s["token_ids"] for s in samples]
    positions = [s["position"] for s in samples]
    for s, row in zip(samples, run["captions"]):
        q, ids = s["token_index"], row["token_ids"]
        pattern = re.compile(rf"(?<![^\W_]){re.escape(s['word'])}(?![^\W_])", re.IGNORECASE)
        # The word starts inside token q: not before it, and within its text.
        assert pattern.search(tok.decode(ids[:q], skip_special_tokens=True)) is None
        found = pattern.search(tok.decode(ids[q:], skip_special_tokens=True))
        assert found and found.start() < len(tok.decode(ids[q : q + 1], skip_special_tokens=True))
        assert s["position"] == (q - 1 if position == "predicting" else q)
    inputs, prompt_lens = build_batch(adapter.encoder(), run["images"], run["prompt"], gen)
    for b, (s, p) in enumerate(zip(samples, prompt_lens)):
        q = s["token_index"]
        read = inputs["input_ids"][b, p + s["position"]].item()
        if position == "token":
            assert read == s["token_ids"][q]
        else:
            assert read == (s["token_ids"][q - 1] if q > 0 else inputs["input_ids"][b, p - 1].item())
    if position == "predicting":
        # Greedy decoding chose the word's first token from the state at the predicting position.
        final = hidden_states_at(adapter, run["images"], run["prompt"], gen, positions, ["final"])["final"]
        with torch.inference_mode():
            logits = adapter.unembedding()(final)
            logits[:, sorted(adapter.never_generated_ids())] = -float("inf")  # as greedy decoding bans them
        assert logits.argmax(-1).tolist() == [s["token_ids"][s["token_index"]] for s in samples]


def test_hooks_match_output_hidden_states(run):
    adapter = run["adapter"]
    gen = [row["token_ids"] for row in run["captions"]]
    positions = [max(len(g) - 1 - i, -1) for i, g in enumerate(gen)]
    hooked = hidden_states_at(adapter, run["images"], run["prompt"], gen, positions, ALL_LAYERS)
    inputs, prompt_lens = build_batch(adapter.encoder(), run["images"], run["prompt"], gen)
    with torch.inference_mode():
        states = adapter.model(**inputs, use_cache=False, output_hidden_states=True).hidden_states
    assert len(states) == LAYERS + 1
    rows, index = torch.arange(len(gen)), torch.tensor([p + q for p, q in zip(prompt_lens, positions)])
    for L in range(1, LAYERS):
        torch.testing.assert_close(hooked[str(L)], states[L][rows, index], rtol=0, atol=0)
    # HF's last entry is already normed: it is our "final", and the norm of our last block's output.
    torch.testing.assert_close(hooked["final"], states[-1][rows, index], rtol=0, atol=0)
    with torch.inference_mode():
        normed = adapter.final_norm()(hooked[str(LAYERS)])
    torch.testing.assert_close(normed, hooked["final"], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(hooked[str(LAYERS)], hooked["final"], atol=1e-3)


def test_a_pass_that_stops_at_the_deepest_layer_read_reads_the_same_states(run):
    """Early stop: block 2 read from a pass that ends there equals block 2 of the whole pass, and
    no later block nor the LM head ran."""
    adapter = run["adapter"]
    gen = [row["token_ids"] for row in run["captions"]]
    positions = [len(g) - 1 for g in gen]
    ran = []
    later = [adapter.decoder_layers()[-1], adapter.final_norm(), adapter.unembedding()]
    handles = [m.register_forward_hook(lambda m, args, out: ran.append(m)) for m in later]
    try:
        stopped = hidden_states_at(adapter, run["images"], run["prompt"], gen, positions, ["2"])
        assert ran == []
        whole = hidden_states_at(adapter, run["images"], run["prompt"], gen, positions, ["2"], stop_early=False)
        assert len(ran) == 3  # without the stop, the last block, the final norm and the head (on one position) run
    finally:
        for h in handles:
            h.remove()
    torch.testing.assert_close(stopped["2"], whole["2"], rtol=0, atol=0)


def test_extraction_is_batch_invariant(run):
    """Very different caption lengths (and, for Qwen, prompt lengths) in one batch change nothing."""
    adapter, images, prompt = run["adapter"], run["images"], run["prompt"]
    full = [row["token_ids"] for row in run["captions"]]
    gen = [full[0][:1], full[1], full[2][:0], full[3][:6]]
    positions = [0, len(full[1]) - 1, -1, 3]
    batched = hidden_states_at(adapter, images, prompt, gen, positions, ALL_LAYERS)
    for b in range(len(images)):
        alone = hidden_states_at(adapter, images[b : b + 1], prompt, gen[b : b + 1], positions[b : b + 1], ALL_LAYERS)
        for L in ALL_LAYERS:
            torch.testing.assert_close(batched[L][b : b + 1], alone[L], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("run", FIRST, indirect=True)
def test_extract_features_stores_the_states_of_batch_size_one(run):
    adapter = run["adapter"]
    selection = select_generated_words(run, "predicting")
    out = {L: run["root"] / f"layer{L}.zarr" for L in ("2", "final")}
    extract_features(adapter, selection, out, instruction=INSTRUCTION, batch_size=4)
    for L, path in out.items():
        z, attrs = read_features(path)
        assert attrs["sample_ids"] == [s["id"] for s in selection["samples"]] and attrs["layer"] == L
        for b, s in enumerate(selection["samples"]):
            image = run["images"][b : b + 1]
            alone = hidden_states_at(adapter, image, run["prompt"], [s["token_ids"]], [s["position"]], [L])
            np.testing.assert_allclose(z[b], alone[L][0].numpy(), rtol=1e-5, atol=1e-5)


def _reference_greedy(adapter, image, prompt: str, max_new: int) -> list[int]:
    """Argmax decoding one token at a time with plain forward passes: what greedy captioning must equal."""
    stop, banned = adapter.stop_token_ids(), sorted(adapter.never_generated_ids())
    ids: list[int] = []
    for _ in range(max_new):
        inputs, _ = build_batch(adapter.encoder(), [image], prompt, [ids])
        with torch.inference_mode():
            logits = adapter.model(**inputs, use_cache=False).logits[0, -1]
            logits[banned] = -float("inf")
        nxt = int(logits.argmax())
        if nxt in stop:
            break
        ids.append(nxt)
    return ids


@pytest.mark.parametrize("run", FIRST, indirect=True)
def test_captioning_ignores_the_checkpoints_generation_settings(run):
    """A checkpoint asking for penalties or sampling must not change plain greedy captions."""
    adapter = run["adapter"]
    gen = adapter.model.generation_config
    saved = (gen.repetition_penalty, gen.no_repeat_ngram_size, gen.do_sample)
    gen.repetition_penalty, gen.no_repeat_ngram_size, gen.do_sample = 50.0, 1, True
    try:
        got = greedy_generate(adapter, run["images"][:2], run["prompt"], MAX_NEW)
    finally:
        gen.repetition_penalty, gen.no_repeat_ngram_size, gen.do_sample = saved
    assert got == [_reference_greedy(adapter, im, run["prompt"], MAX_NEW) for im in run["images"][:2]]


def _favour(adapter, token_id: int):
    """Make ``token_id`` the argmax at every position (a hook on the LM head); returns the undo."""

    def boost(module, args, logits):
        logits = logits.clone()
        logits[..., token_id] += 1e4
        return logits

    return adapter.unembedding().register_forward_hook(boost).remove


def test_an_image_token_is_never_generated(run):
    adapter = run["adapter"]
    image_id = adapter.image_token_id()
    undo = _favour(adapter, image_id)
    try:
        got = greedy_generate(adapter, run["images"][:2], run["prompt"], MAX_NEW)
    finally:
        undo()
    assert all(image_id not in row for row in got)
    assert all(len(row) > 0 for row in got)


def test_captions_stop_at_the_familys_end_of_turn(run):
    adapter = run["adapter"]
    turn_ends = adapter.token_ids(adapter.family.end_of_turn) or {adapter.tokenizer.eos_token_id}
    end = min(turn_ends)
    assert end in adapter.stop_token_ids()
    undo = _favour(adapter, end)
    try:
        got = greedy_generate(adapter, run["images"][:2], run["prompt"], MAX_NEW)
    finally:
        undo()
    assert got == [[], []]
