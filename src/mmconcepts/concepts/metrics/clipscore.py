"""CLIPScore of concept words against images (Hessel et al. 2021; DESIGN.md).

CLIPScore = 2.5 · max(cos(image, text), 0); the text for a concept (and for the
random-words baseline alike) is ``concept_text(words)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from mmconcepts.errors import MMConceptsError

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


def _open_rgb(path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")  # convert() forces the full decode, so truncated files fail here
    except (OSError, ValueError) as e:
        raise MMConceptsError(f"cannot read image {path}: {e}") from e


class ClipScorer:
    """Wraps an already-loaded open_clip (model, preprocess, tokenizer) triple."""

    def __init__(self, model, preprocess, tokenizer, device: str = "cpu", batch_size: int = 64):
        if batch_size < 1:
            raise MMConceptsError(f"ClipScorer: batch_size must be ≥ 1, not {batch_size}")
        self.model = model.to(device).eval()
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.device, self.batch_size = device, batch_size
        # Inputs follow the weights' dtype, so a half-precision model on GPU works too.
        self.dtype = next(model.parameters()).dtype

    def _batches(self, items: list, desc: str):
        if not items:
            raise MMConceptsError(f"ClipScorer: no {desc} to encode")
        starts = range(0, len(items), self.batch_size)
        for s in tqdm(starts, desc=f"CLIP {desc}", unit="batch"):
            yield items[s : s + self.batch_size]

    @torch.no_grad()
    def encode_images(self, paths: list[str | Path]) -> np.ndarray:
        """N × D float32, L2-normalised."""
        out = []
        for batch in self._batches(list(paths), "images"):
            pixels = torch.stack([self.preprocess(_open_rgb(p)) for p in batch])
            emb = self.model.encode_image(pixels.to(self.device, self.dtype))
            out.append(F.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """T × D float32, L2-normalised."""
        out = []
        for batch in self._batches(list(texts), "texts"):
            emb = self.model.encode_text(self.tokenizer(batch).to(self.device))
            out.append(F.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(out).numpy()
