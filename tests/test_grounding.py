"""Grounding on hand-computable cases: most activating samples, top concepts, lens words, random words."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mmconcepts.concepts.grounding import ground, load_codes, most_activating, random_words, save_codes, top_concepts
from mmconcepts.concepts.lens import Lens, write_lens
from mmconcepts.errors import MMConceptsError

WORDS = ["red", "circle", "", "blue"]  # token 2 is not a word


@pytest.fixture
def lens(tmp_path):
    """Identity unembedding: a vector's logits at ``final`` are the vector itself.

    The norm's gain of 10 on the last dimension lets a block layer rank differently.
    """
    norm = {"norm_kind": np.array("rms"), "norm_weight": np.array([1.0, 1, 1, 10]), "norm_bias": np.zeros(4)}
    norm["norm_eps"] = np.array(1e-6)
    write_lens(tmp_path / "lens.npz", np.eye(4), np.zeros(4), WORDS, norm)
    return Lens(tmp_path / "lens.npz")


def test_most_activating_largest_first_ties_to_the_earlier_sample():
    V = np.array([[1.0, 0], [3, 0], [3, 5], [2, 5]])
    assert most_activating(V, 3) == [[1, 2, 3], [2, 3, 0]]
    assert most_activating(V, 9) == [[1, 2, 3, 0], [2, 3, 0, 1]]  # n beyond the samples: all of them


def test_top_concepts_largest_first_ties_to_the_lower_index():
    A = np.array([[1.0, 3, 3], [0, -1, 2]])
    assert top_concepts(A, 2).tolist() == [[1, 2], [2, 0]]
    assert top_concepts(A, 1).tolist() == [[1], [2]]


def test_lens_words_depend_on_the_layer(lens):
    u = np.array([0.1, 0.9, 0.5, 0.3])
    assert lens.top_words(u, 2, "final") == [["circle", "blue"]]  # 0.9, (0.5: no word), 0.3
    assert lens.top_words(u, 2, "4") == [["blue", "circle"]]  # the gain makes the last dimension 3.0 / rms
    assert lens.top_words(u, 9, "final") == [["circle", "blue", "red"]]  # only three words exist
    assert lens.top_words(u, 0, "final") == [[]]


def _by_hand(direction: np.ndarray, n: int) -> list[str]:
    """The first n words of the identity lens at ``final``: the direction's own order."""
    return [w for w in (WORDS[i] for i in np.argsort(-direction)) if w][:n]


def test_random_words_seeded_with_the_concepts_counts(lens):
    counts = [2, 0, 3, 1]
    got = random_words(lens, counts, 4, "final", seed=7)
    directions = np.random.default_rng(7).standard_normal((4, 4))
    assert got == [_by_hand(d, n) for d, n in zip(directions, counts)]
    assert [len(w) for w in got] == counts
    assert random_words(lens, counts, 4, "final", seed=7) == got
    assert random_words(lens, [], 4, "final", seed=7) == []


def _samples(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}{i}", "image": f"{prefix}{i}.png", "caption": f"caption {prefix}{i}"} for i in range(n)]


def _dictionary(layer: str):
    return SimpleNamespace(
        train_activations=np.array([[1.0, 0], [3, 0], [3, 5], [2, 5]]),
        components_=np.array([[0.1, 0.9, 0.5, 0.3], [1.0, 0, 0, 2]]),
        params={"layer": layer},
    )


def test_ground_reads_words_at_the_dictionarys_layer_and_ranks_samples(lens):
    codes = np.array([[0.0, 2], [4, 1], [0, 0]])
    out = ground(
        _dictionary("final"), lens, _samples("tr", 4), _samples("te", 3), codes,
        n_mas=2, n_words=2, top_r=5, seed=3, header={"method": "snmf"},
    )  # fmt: skip
    assert out["method"] == "snmf" and out["n_train"] == 4 and out["n_test"] == 3
    first, second = out["concepts"]
    assert first["words"] == ["circle", "blue"] and second["words"] == ["blue", "red"]
    assert [m["id"] for m in first["mas"]] == ["tr1", "tr2"] and [m["activation"] for m in first["mas"]] == [3.0, 3.0]
    assert [m["id"] for m in second["mas"]] == ["tr2", "tr3"]
    assert first["mas"][0] == {"id": "tr1", "image": "tr1.png", "caption": "caption tr1", "activation": 3.0}
    assert first["frequency"] == 1.0 and second["frequency"] == 0.5
    assert sum(first["histogram"]["counts"]) == 4 and len(first["histogram"]["edges"]) == 21
    # top_r beyond K reads all K; the zero row keeps index order.
    assert [[c["concept"] for c in t["top"]] for t in out["test"]] == [[1, 0], [0, 1], [0, 1]]
    assert out["test"][1]["top"] == [{"concept": 0, "activation": 4.0}, {"concept": 1, "activation": 1.0}]
    assert out["test"][0]["id"] == "te0"
    directions = np.random.default_rng(3).standard_normal((2, 4))
    assert out["random_words"] == [_by_hand(d, 2) for d in directions]

    block = ground(
        _dictionary("4"), lens, _samples("tr", 4), _samples("te", 3), codes, n_mas=2, n_words=2, top_r=1, seed=3, header={}
    )
    assert block["concepts"][0]["words"] == ["blue", "circle"]
    assert [len(t["top"]) for t in block["test"]] == [1, 1, 1]


def test_ground_rejects_codes_of_other_samples(lens):
    with pytest.raises(MMConceptsError, match=r"test codes of shape \(2, 2\) for 3 test samples"):
        ground(_dictionary("final"), lens, _samples("tr", 4), _samples("te", 3), np.zeros((2, 2)),
               n_mas=1, n_words=1, top_r=1, seed=0, header={})  # fmt: skip


def test_codes_round_trip_and_belong_to_their_samples(tmp_path):
    codes = np.array([[1.0, 0], [0.5, 2]])
    save_codes(tmp_path / "codes.npz", codes, ["a", "b"])
    np.testing.assert_array_equal(load_codes(tmp_path / "codes.npz", ["a", "b"]), codes)
    with pytest.raises(MMConceptsError, match="codes of other test samples"):
        load_codes(tmp_path / "codes.npz", ["b", "a"])
