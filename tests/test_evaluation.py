"""evaluate on hand-computable cases: score aggregation, the BERTScore pair matrix, fidelity per method, recovery."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mmconcepts.concepts import decomposition, dictionary_methods
from mmconcepts.concepts.decomposition import store
from mmconcepts.concepts.evaluation import bertscore_matrix, evaluate
from mmconcepts.concepts.metrics import probe_auroc
from mmconcepts.errors import MMConceptsError

EMBEDDING = {"red": [1.0, 0, 0], "circle": [0, 1.0, 0], "blue": [0, 0, 1.0]}
CONCEPT_WORDS = [["red", "circle"], ["circle"], ["blue"]]
RANDOM_WORDS = [["blue", "sky"], ["red"], ["circle"]]


def encode_texts(texts: list[str]) -> np.ndarray:
    """A text's embedding is its first concept word's one-hot vector."""
    return np.array([EMBEDDING[t.split(": ")[1].split(", ")[0]] for t in texts])


class FakeBert:
    """F1 = number of characters of the candidate + 100 × the image's index (read from its reference)."""

    def __init__(self):
        self.calls = []

    def score(self, candidates, references):
        self.calls.append((list(candidates), [list(r) for r in references]))
        return np.array([len(c) + 100 * int(r[0].split()[1]) for c, r in zip(candidates, references)], dtype=float)


class Dictionary:
    """What evaluate may read; transform is what it must never call (ground coded the test images)."""

    def __init__(self, method, components, mean=None):
        self.method, self.components_, self.mean_ = method, np.asarray(components, float), mean

    def transform(self, Z):
        raise AssertionError("evaluate solved the test codes again")


U = [[1.0, 0], [0, 1], [1, 1]]
Z = np.array([[2.0, 1], [3, 0]])
CODES = np.array([[2.0, 1, 0], [0, 1, 3]])  # tops (r = 2): image 0 → [0, 1], image 1 → [2, 1]
IMAGES = np.array([[0.6, 0.8, 0], [0, 0.6, -0.8]])  # unit vectors: CLIPScore[i, k] = 2.5 · max(IMAGES[i, k], 0)


def run(
    dictionary, *, codes=CODES, Z_test=Z, factors=None, top_r=2, bert=None, image_emb=IMAGES, words=CONCEPT_WORDS, rnd=RANDOM_WORDS
):
    n = len(Z_test)
    return evaluate(
        dictionary,
        {"concepts": [{"words": w} for w in words], "random_words": rnd},
        Z_test,
        codes,
        image_emb=image_emb,
        gt_clipscore=np.arange(n, dtype=float),
        encode_texts=encode_texts,
        bert=bert or FakeBert(),
        references=[[f"caption {i}"] for i in range(n)],
        factors=factors,
        top_r=top_r,
        header={"method": dictionary.method},
        probe=probe_auroc(Z_test, factors) if factors else None,
    )


def test_scores_are_top1_and_top_r_means_over_images():
    bert = FakeBert()
    m = run(Dictionary("snmf", U), bert=bert)
    # CLIPScore: image 0 scores [1.5, 2.0, 0] and image 1 [0, 1.5, 0] (−0.8 clipped).
    # top-1: 1.5 and 0; top-2: (1.5 + 2.0) / 2 and (0 + 1.5) / 2.
    assert m["clipscore"] == {"top1": {"mean": 0.75, "std": 0.75}, "top_r": {"mean": 1.25, "std": 0.5}, "r": 2}
    # Random words: concept 0 reads "blue", 1 "red", 2 "circle": image 0 [0, 1.5, 2.0], image 1 [0, 0, 1.5].
    assert m["random_words"]["clipscore"] == {"top1": {"mean": 0.75, "std": 0.75}, "top_r": {"mean": 0.75, "std": 0.0}, "r": 2}
    # BERTScore: "red circle" 10, "circle" 6, "blue" 4 characters; image 1 adds 100.
    # top-1: 10 and 104; top-2: (10 + 6) / 2 and (104 + 106) / 2.
    assert m["bertscore"] == {"top1": {"mean": 57.0, "std": 47.0}, "top_r": {"mean": 56.5, "std": 48.5}, "r": 2}
    # Random words: "blue sky" 8, "red" 3, "circle" 6.
    assert m["random_words"]["bertscore"] == {"top1": {"mean": 57.0, "std": 49.0}, "top_r": {"mean": 55.0, "std": 49.5}, "r": 2}
    # Overlap: concept 0 shares "circle" with concept 1: (1/2 + 1) / (3 · 2).
    assert m["overlap"] == pytest.approx(0.25) and m["random_words"]["overlap"] == 0.0
    assert m["ground_truth"]["clipscore"] == {"mean": 0.5, "std": 0.5}
    assert m["method"] == "snmf" and m["n_test"] == 2 and m["recovery"] is None
    # Each (image, concept) pair of the tops is scored once, in order, against that image's captions.
    candidates, references = bert.calls[0]
    assert candidates == ["red circle", "circle", "circle", "blue"]
    assert references == [["caption 0"], ["caption 0"], ["caption 1"], ["caption 1"]]


def test_bertscore_matrix_holds_the_top_pairs_only():
    tops = np.array([[0, 1], [2, 1]])
    matrix = bertscore_matrix(FakeBert(), CONCEPT_WORDS, [["caption 0"], ["caption 1"]], tops)
    np.testing.assert_array_equal(matrix, [[10, 6, 0], [0, 106, 104]])


def test_top_r_beyond_k_reads_every_concept():
    m = run(Dictionary("snmf", U), top_r=5)
    assert m["clipscore"]["r"] == 3
    assert m["clipscore"]["top_r"]["mean"] == pytest.approx(((1.5 + 2.0) / 3 + 1.5 / 3) / 2)


def test_fidelity_only_where_it_means_something():
    snmf = run(Dictionary("snmf", U))
    # Image 0 is rebuilt exactly; image 1: 1·(0, 1) + 3·(1, 1) = (3, 4) against (3, 0), error 4 / 3.
    assert snmf["reconstruction"] == {"mean": pytest.approx(2 / 3), "std": pytest.approx(2 / 3)}
    assert snmf["sparsity"] == {"mean": pytest.approx(1 / 3), "std": 0.0}  # one zero of three per image
    pca = run(Dictionary("pca", U, mean=np.array([1.0, 1])))
    # The mean is added back: residuals (−1, −1) of ‖(2, 1)‖ = √5 and (−1, −5) of 3.
    expected = [np.sqrt(2 / 5), np.sqrt(26) / 3]
    assert pca["reconstruction"] == {"mean": pytest.approx(np.mean(expected)), "std": pytest.approx(np.std(expected))}
    assert "sparsity" not in pca  # dense codes
    for method in ("kmeans", "simple"):
        m = run(Dictionary(method, U))
        assert "reconstruction" not in m and "sparsity" not in m  # 1 / (1 + distance) rebuilds nothing
    assert {"reconstruction", "sparsity"} <= set(run(Dictionary("random", U)))


def test_recovery_is_sign_free_for_pca_only_and_carries_the_probe():
    """Eight images, circles then squares; concept 0 is negative on circles, concept 1 silent."""
    n = 8
    circle = np.arange(n) < 4
    codes = np.column_stack([np.where(circle, -1.0, 1.0), np.zeros(n)])
    Z_test = np.column_stack([circle.astype(float), np.zeros(n)])
    factors = [{"shape": "circle" if c else "square"} for c in circle]
    kwargs = {"codes": codes, "Z_test": Z_test, "factors": factors, "image_emb": np.ones((n, 3))}
    kwargs |= {"words": [["red"], ["blue"]], "rnd": [["blue"], ["red"]]}

    def rows(method):
        recovery = run(Dictionary(method, [[1.0, 0], [0, 1]], mean=np.zeros(2)), **kwargs)["recovery"]
        return recovery, {r["value"]: r for r in recovery["table"]}

    signed, by_value = rows("snmf")
    assert by_value["circle"]["auroc"] == 0.5 and by_value["circle"]["concept"] == 1  # −1 on circles detects nothing
    assert by_value["square"]["auroc"] == 1.0 and by_value["square"]["concept"] == 0
    free, by_value = rows("pca")
    assert by_value["circle"]["auroc"] == 1.0 and by_value["circle"]["concept"] == 0
    # Z's first feature is the circle indicator: the probe separates both values perfectly (4 folds).
    assert [r["probe_auroc"] for r in free["table"]] == [1.0, 1.0] and free["probe_mean"] == 1.0


def test_evaluate_checks_the_codes_shape():
    with pytest.raises(MMConceptsError, match=r"test codes of shape \(2, 2\) for 2 test samples and 3 concepts"):
        run(Dictionary("snmf", U), codes=np.zeros((2, 2)))


def test_method_facts_are_the_one_light_list():
    assert dictionary_methods.METHODS == ("snmf", "pca", "kmeans", "simple", "random")
    assert decomposition.METHODS is dictionary_methods.METHODS
    assert store.LASSO_CODED == ("snmf", "random")
    assert [m for m, f in dictionary_methods.FACTS.items() if f.sign_free] == ["pca"]
    # The Snakefile imports it at start: no torch, no scikit-learn, no numpy.
    code = "import sys, mmconcepts.concepts.dictionary_methods; print(sorted({'torch', 'sklearn', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
