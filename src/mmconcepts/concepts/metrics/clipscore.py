"""CLIPScore of concept words against images (Hessel et al. 2021; DESIGN.md).

CLIPScore = 2.5 · max(cos(image, text), 0); the text for a concept (and for the
random-words baseline alike) is ``concept_text(words)``. The whole text must fit
the CLIP's context: open_clip's tokenizers cut longer texts silently, so
``ClipScorer.encode_texts`` measures every text first and refuses one that would be cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb

CLIPSCORE_WEIGHT = 2.5


def concept_text(words: list[str]) -> str:
    if not words:
        raise MMConceptsError("concept_text: a concept with no words has no text to score")
    return "a photo described by the words: " + ", ".join(words)


def clip_score(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """N × T matrix of 2.5 · max(cos, 0); rows are re-normalised, so any embeddings will do."""
    img, txt = (np.atleast_2d(np.asarray(e, dtype=np.float64)) for e in (image_emb, text_emb))
    if img.shape[1] != txt.shape[1]:
        raise MMConceptsError(f"clip_score: image dim {img.shape[1]} != text dim {txt.shape[1]}")
    norms = [np.linalg.norm(e, axis=1, keepdims=True) for e in (img, txt)]
    if any((n == 0).any() for n in norms):
        raise MMConceptsError("clip_score: a zero embedding has no cosine")
    cos = (img / norms[0]) @ (txt / norms[1]).T
    return CLIPSCORE_WEIGHT * np.clip(cos, 0.0, None)


def context_length(tokenizer, model=None) -> int:
    """The most tokens (special tokens included) a text may take: the tokenizer's context, or the model's if shorter."""
    lengths = [getattr(tokenizer, "context_length", None), getattr(model, "context_length", None)]
    lengths = [n for n in lengths if isinstance(n, int) and not isinstance(n, bool) and n > 0]
    if not lengths:
        raise MMConceptsError(f"CLIP tokenizer {type(tokenizer).__name__} states no context length")
    return min(lengths)


def token_length(tokenizer, text: str) -> int:
    """How many tokens ``text`` takes in the context before any cut, special tokens included.

    Follows each of open_clip's tokenizer classes (open_clip/tokenizer.py): the same text
    cleaning, the same special tokens; only the truncation is left out.
    """
    from open_clip.tokenizer import HFTokenizer, SigLipTokenizer, SimpleTokenizer, basic_clean, canonicalize_text

    if isinstance(tokenizer, SimpleTokenizer):  # CLIP's BPE: <start_of_text> … <end_of_text>
        return len(tokenizer.encode(text)) + 2
    if isinstance(tokenizer, HFTokenizer):
        text = getattr(tokenizer, "clean_fn", str)(text)
        if getattr(tokenizer, "tokenizer_mode", "") == "clips":  # bos … eos, then a class token in the last slot
            return len(tokenizer.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) + 3
        return len(tokenizer.tokenizer(text, truncation=False, verbose=False)["input_ids"])
    if isinstance(tokenizer, SigLipTokenizer):
        text = canonicalize_text(basic_clean(text))
        return len(tokenizer.tokenizer(text, truncation=False, verbose=False)["input_ids"])
    raise MMConceptsError(
        f"CLIP tokenizer {type(tokenizer).__name__} is none of open_clip's tokenizers; "
        "cannot tell whether a text fits its context"
    )


def check_fits(texts: list[str], tokenizer, model=None, name: str = "CLIP") -> None:
    """Raise, naming the model, the token length and the context, when a text would be cut."""
    limit = context_length(tokenizer, model)
    lengths = {t: token_length(tokenizer, t) for t in set(texts)}
    too_long = [i for i, t in enumerate(texts) if lengths[t] > limit]
    if too_long:
        i = max(too_long, key=lambda i: lengths[texts[i]])
        raise MMConceptsError(
            f"clip {name}: {len(too_long)} of {len(texts)} text(s) longer than its context of {limit} tokens, "
            f"e.g. text {i} of {lengths[texts[i]]} tokens: {texts[i]!r}; it would be cut "
            "(use fewer words or a CLIP with a longer context)"
        )


class ClipScorer:
    """Wraps an already-loaded open_clip (model, preprocess, tokenizer) triple.

    ``name`` labels the model in errors (the workflow passes its config name).
    """

    def __init__(self, model, preprocess, tokenizer, name: str | None = None, device: str = "cpu", batch_size: int = 64):
        if batch_size < 1:
            raise MMConceptsError(f"ClipScorer: batch_size must be ≥ 1, not {batch_size}")
        self.name = name or type(model).__name__
        self.model = model.to(device).eval()
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.device, self.batch_size = device, batch_size
        self.context_length = context_length(tokenizer, model)  # a tokenizer stating none is refused here
        # Inputs follow the weights' dtype, so a half-precision model on GPU works too.
        self.dtype = next(model.parameters()).dtype

    def _batches(self, items: list, desc: str):
        if not items:
            raise MMConceptsError(f"ClipScorer: no {desc} to encode")
        starts = range(0, len(items), self.batch_size)
        for s in tqdm(starts, desc=f"CLIP {desc}", unit="batch"):
            yield items[s : s + self.batch_size]

    def _open(self, path) -> torch.Tensor:
        image = open_rgb(path)
        if image is None:
            raise MMConceptsError(f"clip {self.name}: cannot read image {path}")
        return self.preprocess(image)

    def check_texts(self, texts: list[str]) -> None:
        """Raise when a text would not fit this model's context whole."""
        check_fits(texts, self.tokenizer, self.model, self.name)

    @torch.no_grad()
    def encode_images(self, paths: list[str | Path]) -> np.ndarray:
        """N × D float32, L2-normalised."""
        out = []
        for batch in self._batches(list(paths), "images"):
            pixels = torch.stack([self._open(p) for p in batch])
            emb = self.model.encode_image(pixels.to(self.device, self.dtype))
            out.append(F.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """T × D float32, L2-normalised; every text must fit the context whole."""
        texts = list(texts)
        self.check_texts(texts)
        out = []
        for batch in self._batches(texts, "texts"):
            emb = self.model.encode_text(self.tokenizer(batch).to(self.device))
            out.append(F.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(out).numpy()
