"""The logit lens and the token spans, on tokenizers of both styles (SentencePiece ▁ and byte-level Ġ)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tiny_lmms import BUILDERS, CORPUS, train_tokenizer

from mmconcepts.captioning import token_spans
from mmconcepts.lens import Lens, caption_vocabulary, export_lens, token_words
from mmconcepts.models.registry import load_adapter
from mmconcepts.selection import select_samples
from mmconcepts.worlds.karpathy import Sample

VOCABULARY = caption_vocabulary(CORPUS[:6])


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    adapter = load_adapter(request.param, str(BUILDERS[request.param](root / "model")), dtype="float32", device="cpu")
    export_lens(adapter, VOCABULARY, root / "lens.npz")
    return adapter, Lens(root / "lens.npz")


def test_lens_logits_are_the_models_own(exported):
    """W_U · norm_final(h) computed from lens.npz equals the model's final norm and head applied to h."""
    adapter, lens = exported
    h = torch.randn(5, adapter.language_model().config.hidden_size, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        theirs = adapter.unembedding()(adapter.final_norm()(h)).numpy()
    np.testing.assert_allclose(lens.logits(h.numpy()), theirs, rtol=1e-4, atol=1e-4)


def test_lens_words_are_whole_caption_words(exported):
    adapter, lens = exported
    words = [w for w in lens.words if w]
    assert words, "no token of the tokenizer counts as a word"
    for w in words:
        assert w.isalpha() and len(w) >= 3 and w not in ENGLISH_STOP_WORDS and w in VOCABULARY
    assert len(set(words)) == len(words)
    # Sub-word pieces (tokens that do not start a word) never count, even when they spell a word.
    pieces = adapter.tokenizer.convert_ids_to_tokens(list(range(len(adapter.tokenizer))))
    for piece, w in zip(pieces, lens.words):
        if w:
            assert piece.startswith(("▁", "Ġ"))


def test_top_words_follow_the_direction(exported):
    """A direction built to point at a word's unembedding row (after the norm) decodes to that word first."""
    adapter, lens = exported
    target = next(i for i, w in enumerate(lens.words) if w)
    weight = lens.p["norm_weight"]
    direction = lens.p["unembedding"][target] / np.where(np.abs(weight) > 1e-6, weight, 1e-6)
    top = lens.top_words(direction * 50, 5)[0]
    assert top[0] == lens.words[target]
    assert len(top) == len(set(top)) == 5 and all(top)


@pytest.mark.parametrize("style, bos", [("metaspace", "<s>"), ("bytelevel", None)])
def test_token_spans_map_words_to_their_tokens(style, bos):
    tokenizer = train_tokenizer(style, ["<unk>", "<s>", "</s>"], bos=bos)
    caption = "A small dog sitting on the grass near a red circle."
    ids = tokenizer.encode(" " + caption, add_special_tokens=False)
    text, spans = token_spans(tokenizer, ids)
    assert text == caption  # the leading space a decoder emits is not part of the caption
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for i, (start, end) in enumerate(spans):
        assert text[start:end].strip() == tokenizer.decode([ids[i]]).strip()
    row = {"id": "1", "image": "1.png", "caption": text, "token_ids": ids, "spans": spans}
    truth = {"1": Sample(id="1", path="1.png", split="train", captions=("a circle",))}
    kept = select_samples([row], truth, "circle", position="token")["samples"][0]
    start, end = spans[kept["token_index"]]
    assert start <= text.index("circle") < end
