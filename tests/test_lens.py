"""The logit lens of every family's tiny checkpoint, and the token spans, on tokenizers of both styles (▁ and Ġ)."""

from __future__ import annotations

import tracemalloc
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tiny_lmms import BUILDERS, LAYERS, checkpoint, train_tokenizer

from mmconcepts.concepts.captioning import token_spans
from mmconcepts.concepts.lens import Lens, apply_norm, export_lens, lexicon, token_words, write_lens
from mmconcepts.concepts.selection import select_samples
from mmconcepts.data.karpathy import Sample
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.hooks import read_states
from mmconcepts.models.registry import load_adapter

LEXICON = lexicon(50000)


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    adapter = load_adapter(request.param, str(checkpoint(request.param, tmp_path_factory)), dtype="float32", device="cpu")
    norm = adapter.final_norm()
    with torch.no_grad():  # uneven gains, so that norming (or not) changes which words come first
        norm.weight.copy_(torch.rand(norm.weight.shape, generator=torch.Generator().manual_seed(3)) * 3 + 0.1)
    export_lens(adapter, root / "lens.npz")
    return adapter, Lens(root / "lens.npz")


def _hidden(adapter, seed=1):
    return torch.randn(5, adapter.language_model().config.hidden_size, generator=torch.Generator().manual_seed(seed)) * 3


def _first_words(lens, logits, n):
    """The n first distinct non-empty lens words of each row in descending logit order."""
    out = []
    for row in logits:
        words = [lens.words[i] for i in np.argsort(-row, kind="stable") if lens.words[i]]
        out.append(list(dict.fromkeys(words))[:n])
    return out


def test_lens_logits_are_the_models_own(exported):
    """A block's output goes through the final norm, then the head; ``final`` states are already normed."""
    adapter, lens = exported
    h = _hidden(adapter)
    with torch.no_grad():
        block = adapter.unembedding()(adapter.final_norm()(h)).numpy()
        final = adapter.unembedding()(h).numpy()
    np.testing.assert_allclose(lens.logits(h.numpy(), "2"), block, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lens.logits(h.numpy(), "final"), final, rtol=1e-4, atol=1e-4)


def test_lens_reproduces_the_models_logits_on_an_image_prompt(exported):
    """On a real forward pass, the lens of the last block's output and of ``final`` give the model's next-token logits."""
    adapter, lens = exported
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8))]
    prompt = adapter.caption_prompt("Provide a one-sentence caption for the provided image.")
    last = str(LAYERS)
    inputs = adapter.encode(images, prompt, padding_side="left")
    with read_states(adapter, [last, "final"], torch.tensor([-1])) as states, torch.no_grad():
        logits = adapter.model(**inputs).logits[:, -1].numpy()
    np.testing.assert_allclose(lens.logits(states[last].numpy(), last), logits, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(lens.logits(states["final"].numpy(), "final"), logits, rtol=1e-3, atol=1e-3)


def test_final_words_follow_the_head_alone(exported):
    adapter, lens = exported
    h = _hidden(adapter, seed=2)
    with torch.no_grad():
        head = adapter.unembedding()(h).numpy()
        normed = adapter.unembedding()(adapter.final_norm()(h)).numpy()
    assert lens.top_words(h.numpy(), 4, "final") == _first_words(lens, head, 4)
    assert lens.top_words(h.numpy(), 4, "1") == _first_words(lens, normed, 4)
    assert _first_words(lens, head, 4) != _first_words(lens, normed, 4)  # norming twice would show


def test_lens_words_are_lexicon_words(exported):
    adapter, lens = exported
    words = [w for w in lens.words if w]
    assert words, "no token of the tokenizer counts as a word"
    for w in words:
        assert w.isalpha() and len(w) >= 3 and w not in ENGLISH_STOP_WORDS and w in LEXICON
    # Sub-word pieces (tokens that do not start a word) never count, even when they spell a word.
    pieces = adapter.tokenizer.convert_ids_to_tokens(list(range(len(adapter.tokenizer))))
    for piece, w in zip(pieces, lens.words):
        if w:
            assert piece.startswith(("▁", "Ġ"))


def test_no_lexicon_word_is_an_error(exported, tmp_path):
    adapter, _ = exported
    # The single most frequent English word is "the", a stopword: an empty lexicon.
    with pytest.raises(MMConceptsError, match="no token of the model's vocabulary starts a word of the lexicon"):
        export_lens(adapter, tmp_path / "lens.npz", lexicon_size=1)
    assert not (tmp_path / "lens.npz").exists()


def test_lexicon_is_frequent_whole_english_words():
    assert {"elephant", "circle", "giraffe", "pizza"} <= LEXICON
    assert not {"eleph", "the", "and", "it's", "dog's", "u.s", "ab"} & LEXICON
    assert all(w.isascii() and w.isalpha() and w.islower() and len(w) >= 3 for w in LEXICON)
    assert lexicon(1000) < LEXICON


class _Tokenizer:
    """Just what token_words reads: pieces, their decoded text and the vocabulary size."""

    PIECES: ClassVar[list[str]] = ["▁Elephant", "▁eleph", "ant", "Ġdog", "▁the", "▁go", "▁cat", "<s>", "Ġcat"]

    def __len__(self):
        return len(self.PIECES)

    def convert_ids_to_tokens(self, ids):
        return [self.PIECES[i] for i in ids]

    def decode(self, ids):
        return "".join(self.PIECES[i] for i in ids).replace("▁", " ").replace("Ġ", " ")


def test_token_words_keep_word_starts_of_the_lexicon():
    words = token_words(_Tokenizer(), {"elephant", "dog", "cat", "ant"})
    assert words == ["elephant", "", "", "dog", "", "", "cat", "", "cat"]


def _random_lens(path, vocab, dim, seed=0):
    rng = np.random.default_rng(seed)
    norm = {
        "norm_kind": np.array("rms"),
        "norm_weight": rng.uniform(0.1, 3, dim),
        "norm_bias": np.zeros(dim),
        "norm_eps": np.array(1e-6),
    }
    W = rng.standard_normal((vocab, dim)).astype(np.float32)
    write_lens(path, W, rng.standard_normal(vocab), [f"w{i}" for i in range(vocab)], norm)
    return Lens(path), W


def test_logits_by_chunks_equal_the_whole_product(tmp_path):
    lens, W = _random_lens(tmp_path / "lens.npz", vocab=10, dim=4)
    h = np.random.default_rng(1).standard_normal((3, 4))
    b = lens.p["unembedding_bias"]
    np.testing.assert_allclose(lens.logits(h, "final", chunk=3), h @ W.astype(np.float64).T + b, rtol=1e-12, atol=0)
    normed = apply_norm(h, lens.p)
    np.testing.assert_allclose(lens.logits(h, "2", chunk=3), normed @ W.astype(np.float64).T + b, rtol=1e-12, atol=0)


def test_logits_never_copy_the_whole_unembedding(tmp_path):
    lens, W = _random_lens(tmp_path / "lens.npz", vocab=20000, dim=64)
    h = np.random.default_rng(1).standard_normal((2, 64))
    tracemalloc.start()
    lens.logits(h, "final", chunk=1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < W.nbytes / 2  # a float64 copy of W is 2 × W.nbytes


def test_top_words_follow_the_direction(exported):
    """A direction built to point at a word's unembedding row decodes to that word first, at either kind of layer."""
    _adapter, lens = exported
    target = next(i for i, w in enumerate(lens.words) if w)
    row = lens.p["unembedding"][target]
    weight = lens.p["norm_weight"]
    for layer, direction in (("2", row / weight), ("final", row)):
        top = lens.top_words(direction * 50, 5, layer)[0]
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
