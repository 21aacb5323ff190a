"""The logit lens, exported once per model so grounding never loads the LMM.

``lens.npz`` holds the model's final norm (kind, weight, bias, eps), its
unembedding matrix and, for every token id, the whole word it stands for or
"" when it is not one. A concept's words are its logits filtered through that
table, on the CPU: ``W_U · norm_final(u)`` at a decoder block's output, and
``W_U · u`` at layer ``final``, whose states are already past the final norm.

A token counts as a whole word when it starts a word (SentencePiece ``▁`` or
byte-level ``Ġ`` marker) and decodes to a word of the lexicon: the
``lexicon_size`` most frequent English words of ``wordfreq`` that are 3+
letters and not stopwords (scikit-learn's list). The lexicon never depends on
the data set (test captions must not choose the words scored against them);
wordfreq is frequency-ranked, maintained and offline, and a frequency cut-off
rules out word-start sub-word pieces (``▁eleph``) as well as the obscure
entries of a full dictionary that a random direction would otherwise surface.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
import wordfreq
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from mmconcepts.atomic import write_npz
from mmconcepts.errors import MMConceptsError

WORD_START = ("▁", "Ġ", " ")
ALPHA = re.compile(r"[a-z]{3,}")
CHUNK_ROWS = 8192  # unembedding rows turned into float64 at a time


def lexicon(size: int) -> set[str]:
    """The words a concept word may be: frequent English, 3+ letters, no stopwords."""
    return {w for w in wordfreq.top_n_list("en", size) if ALPHA.fullmatch(w) and w not in ENGLISH_STOP_WORDS}


def token_words(tokenizer, words: set[str]) -> list[str]:
    """Per token id: the word of ``words`` it decodes to (lower-cased) when it starts a word, else ""."""
    raw = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    out = []
    for i, piece in enumerate(raw):
        word = tokenizer.decode([i]).strip().lower()
        out.append(word if (piece or "").startswith(WORD_START) and word in words else "")
    return out


def _norm_params(norm: torch.nn.Module) -> dict:
    weight = norm.weight.detach().float().cpu().numpy()
    bias = getattr(norm, "bias", None)
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", None)
    eps = float(eps if eps is not None else 1e-6)
    kind = "layer" if isinstance(norm, torch.nn.LayerNorm) else "rms"
    if kind == "rms":
        # The gain the norm applies, read from its output on ones (rms 1): Gemma's scale by 1 + weight.
        with torch.no_grad():
            ones = torch.ones(1, weight.shape[0], device=norm.weight.device)
            weight = (norm(ones).float()[0] * math.sqrt(1 + eps)).cpu().numpy()
    return {
        "norm_kind": np.array(kind),
        "norm_weight": weight,
        "norm_bias": np.zeros_like(weight) if bias is None else bias.detach().float().cpu().numpy(),
        "norm_eps": np.array(eps),
    }


def apply_norm(x: np.ndarray, p: dict) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if str(p["norm_kind"]) == "layer":
        x = x - x.mean(-1, keepdims=True)
        scale = 1.0 / np.sqrt(x.var(-1, keepdims=True) + float(p["norm_eps"]))
    else:
        scale = 1.0 / np.sqrt((x**2).mean(-1, keepdims=True) + float(p["norm_eps"]))
    return x * scale * p["norm_weight"] + p["norm_bias"]


def write_lens(out_path, unembedding: np.ndarray, bias: np.ndarray, words: list[str], norm: dict) -> None:
    """Write ``lens.npz`` atomically; ``norm`` holds the norm_* arrays ``apply_norm`` reads."""
    write_npz(out_path, unembedding=np.asarray(unembedding, np.float32), unembedding_bias=bias, words=np.array(words), **norm)


def export_lens(adapter, out_path: str | Path, *, lexicon_size: int = 50000) -> dict:
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
    words = token_words(adapter.tokenizer, lexicon(lexicon_size))
    if not any(words):
        # Concepts could not be named, and CLIPScore/BERTScore would have no text to score.
        raise MMConceptsError(
            f"no token of the model's vocabulary starts a word of the lexicon (the {lexicon_size} most frequent "
            "English words, 3+ letters, no stopwords): raise lexicon_size or check the tokenizer"
        )
    words = (words + [""] * W.shape[0])[: W.shape[0]]  # embedding rows padded beyond the tokenizer
    write_lens(out_path, W, b, words, params)
    return {"vocab": W.shape[0], "words": sum(bool(w) for w in words), "lexicon_size": lexicon_size}


class Lens:
    def __init__(self, path: str | Path):
        try:
            with np.load(path, allow_pickle=False) as f:
                self.p = {k: f[k] for k in f.files}
        except (FileNotFoundError, ValueError, OSError) as e:
            raise MMConceptsError(f"{path}: cannot read the lens ({e})") from None
        self.words = [str(w) for w in self.p["words"]]

    def logits(self, vectors: np.ndarray, layer: str, *, chunk: int = CHUNK_ROWS) -> np.ndarray:
        """Float64 logits of each vector read at ``layer`` (a block number or "final").

        The float32 unembedding is widened a chunk of rows at a time: a whole float64
        copy would be 4.4 GB for Qwen2-VL's 152k × 3584.
        """
        h = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if str(layer) != "final":
            h = apply_norm(h, self.p)
        W, b = self.p["unembedding"], self.p["unembedding_bias"]
        out = np.empty((h.shape[0], W.shape[0]))
        for s in range(0, W.shape[0], chunk):
            out[:, s : s + chunk] = h @ W[s : s + chunk].astype(np.float64).T + b[s : s + chunk]
        return out

    def top_words(self, vectors: np.ndarray, n: int, layer: str) -> list[list[str]]:
        """For each vector read at ``layer``, its n highest-scoring distinct whole words."""
        result = []
        for row in self.logits(vectors, layer):
            picked: list[str] = []
            for i in np.argsort(-row, kind="stable"):
                if len(picked) >= n:
                    break
                w = self.words[i]
                if w and w not in picked:
                    picked.append(w)
            result.append(picked)
        return result
