"""The logit lens, exported once per model so grounding never loads the LMM.

``lens.npz`` holds the model's final norm (kind, weight, bias, eps), its
unembedding matrix and, for every token id, the whole word it stands for or
"" when it is not one. Concept words are then ``W_U · norm_final(u)`` filtered
through that table, on the CPU, in milliseconds.

A token counts as a whole word when it starts a word (SentencePiece ``▁`` or
byte-level ``Ġ`` marker), its text is alphabetic, 3+ letters, not an English
stopword, and the word occurs in the data set's ground-truth captions: the last
test is what rules out word-start sub-word pieces such as ``▁eleph``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from mmconcepts.atomic import atomic_path
from mmconcepts.errors import MMConceptsError

WORD_START = ("▁", "Ġ", " ")
ALPHA = re.compile(r"[a-z]{3,}")


def caption_vocabulary(captions: list[str]) -> set[str]:
    return {w for c in captions for w in re.findall(r"[a-z]+", c.lower())}


def token_words(tokenizer, vocabulary: set[str]) -> list[str]:
    """Per token id: the lower-cased whole word it decodes to, or ""."""
    raw = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    words = []
    for i, piece in enumerate(raw):
        piece = piece or ""
        word = tokenizer.decode([i]).strip().lower()
        ok = (
            piece.startswith(WORD_START)
            and ALPHA.fullmatch(word) is not None
            and word not in ENGLISH_STOP_WORDS
            and word in vocabulary
        )
        words.append(word if ok else "")
    return words


def _norm_params(norm: torch.nn.Module) -> dict:
    weight = norm.weight.detach().float().cpu().numpy()
    bias = getattr(norm, "bias", None)
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", None)
    kind = "layer" if isinstance(norm, torch.nn.LayerNorm) else "rms"
    return {
        "norm_kind": np.array(kind),
        "norm_weight": weight,
        "norm_bias": np.zeros_like(weight) if bias is None else bias.detach().float().cpu().numpy(),
        "norm_eps": np.array(float(eps if eps is not None else 1e-6)),
    }


def apply_norm(x: np.ndarray, p: dict) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if str(p["norm_kind"]) == "layer":
        x = x - x.mean(-1, keepdims=True)
        scale = 1.0 / np.sqrt(x.var(-1, keepdims=True) + float(p["norm_eps"]))
    else:
        scale = 1.0 / np.sqrt((x**2).mean(-1, keepdims=True) + float(p["norm_eps"]))
    return x * scale * p["norm_weight"] + p["norm_bias"]


def export_lens(adapter, vocabulary: set[str], out_path: str | Path) -> dict:
    """Write lens.npz after checking that our norm reproduces the model's own."""
    norm = adapter.final_norm()
    params = _norm_params(norm)
    probe = torch.randn(4, params["norm_weight"].shape[0], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = norm(probe.to(adapter.device, adapter.dtype)).float().cpu().numpy()
    ours = apply_norm(probe.numpy(), params)
    if not np.allclose(ours, theirs, rtol=2e-2, atol=2e-2):
        raise MMConceptsError(f"final norm {type(norm).__name__} is not a plain RMSNorm/LayerNorm; the lens cannot copy it")
    unembed = adapter.unembedding()
    W = unembed.weight.detach().float().cpu().numpy()
    b = unembed.bias.detach().float().cpu().numpy() if getattr(unembed, "bias", None) is not None else np.zeros(W.shape[0])
    words = token_words(adapter.tokenizer, vocabulary)
    if not any(words):
        # Concepts could not be named, and CLIPScore/BERTScore would have no text to score.
        raise MMConceptsError("no token of the model's vocabulary is a whole word of the data set's captions")
    words += [""] * (W.shape[0] - len(words))  # embedding rows padded beyond the tokenizer
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, unembedding=W, unembedding_bias=b, words=np.array(words[: W.shape[0]]), **params)
    return {"vocab": W.shape[0], "words": sum(bool(w) for w in words)}


class Lens:
    def __init__(self, path: str | Path):
        try:
            with np.load(path, allow_pickle=False) as f:
                self.p = {k: f[k] for k in f.files}
        except (FileNotFoundError, ValueError, OSError) as e:
            raise MMConceptsError(f"{path}: cannot read the lens ({e})") from None
        self.words = [str(w) for w in self.p["words"]]

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        h = apply_norm(np.atleast_2d(vectors), self.p)
        return h @ self.p["unembedding"].T.astype(np.float64) + self.p["unembedding_bias"]

    def top_words(self, vectors: np.ndarray, n: int) -> list[list[str]]:
        """For each vector, its n highest-scoring distinct whole words."""
        result = []
        for row in self.logits(vectors):
            picked: list[str] = []
            for i in np.argsort(-row, kind="stable"):
                w = self.words[i]
                if w and w not in picked:
                    picked.append(w)
                    if len(picked) == n:
                        break
            result.append(picked)
        return result
