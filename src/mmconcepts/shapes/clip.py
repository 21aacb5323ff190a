"""A tiny open_clip model trained contrastively on the shapes world.

The architecture is ``shapes-clip.json`` next to this file, registered with open_clip
under the name ``shapes-clip``; the tokenizer is open_clip's own. The output folder
holds ``open_clip_model.safetensors`` and ``open_clip_config.json``, so both
``create_model_and_transforms("shapes-clip", pretrained=<dir>/open_clip_model.safetensors)``
(after ``register_shapes_clip()``) and ``create_model_and_transforms("local-dir:<dir>")`` load it;
``mmconcepts.models.clip.load_clip`` uses the latter, like for any user's folder.

The text context is 77 tokens, like real CLIP's, so a CLIPScore text of 15 concept words
(``concept_text``; 38 tokens with the world's longest words) fits whole. The CLIP is trained
on such word lists too, not only on captions (``WORD_LIST_FRACTION``), so that it judges
CLIPScore's texts fairly.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tqdm import tqdm

from mmconcepts.atomic import atomic_path
from mmconcepts.concepts.metrics.clipscore import check_fits, clip_score, concept_text, token_length
from mmconcepts.device import set_threads
from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.params import merge_params
from mmconcepts.shapes.training import batch_order, warmup_cosine, world_split
from mmconcepts.shapes.world import caption_tokens

CLIP_NAME = "shapes-clip"
CLIP_CONFIG = Path(__file__).with_name(f"{CLIP_NAME}.json")
CLIP_CHECKPOINT = "open_clip_model.safetensors"

CLIP_DEFAULTS = {
    "seed": 0,
    "steps": 600,
    "batch_size": 128,
    "lr": 1e-3,
    "warmup": 50,
    "weight_decay": 0.05,
    "eval_batch_size": 250,
    "threads": None,
}

# Share of training texts that are word lists, ``concept_text(words)`` of the image's own caption
# words, instead of one of its captions: CLIPScore scores word lists, which no caption looks like.
# Measured on the default world (600 steps): an image's own words beat another image's for 89 %
# of test images when trained on captions alone, for 99.7 % at 0.3 (100 % at 0.2, 99.8 % at 0.4);
# caption text→image R@5 falls from 0.83 to 0.74 at 0.2, 0.69 at 0.3 and 0.58 at 0.4, since a bag
# of words cannot say which object is red. Hence 0.2: word lists are judged as well as at 0.4,
# and captions keep most of their recall.
WORD_LIST_FRACTION = 0.2
# The most words of a training word list: the workflow's concepts have 15 (``ground --n-words``).
MAX_WORDS = 15
# A word a concept can have (the lens's rule, mmconcepts.concepts.lens): 3+ letters, not a stopword.
CONTENT_WORD = re.compile(r"[a-z]{3,}")


def register_shapes_clip() -> None:
    """Make ``shapes-clip`` one of open_clip's model names (idempotent)."""
    import open_clip

    if CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(CLIP_CONFIG)


# -- training texts -----------------------------------------------------------------------
def content_words(captions) -> tuple[str, ...]:
    """The words of an image's captions that a concept can have (``CONTENT_WORD``, not an English
    stopword), deduplicated, in order of appearance."""
    words = (w for c in captions for w in caption_tokens(c))
    return tuple(dict.fromkeys(w for w in words if CONTENT_WORD.fullmatch(w) and w not in ENGLISH_STOP_WORDS))


@dataclass(frozen=True)
class ImageTexts:
    """What can be said of one image: its captions and its content words."""

    captions: tuple[str, ...]
    words: tuple[str, ...]
    word_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "word_set", frozenset(self.words))

    @classmethod
    def of(cls, captions) -> ImageTexts:
        return cls(tuple(captions), content_words(captions))

    def describes(self, text: TrainingText) -> bool:
        """Whether ``text`` is true of this image: one of its captions, or a list of its words."""
        if text.words is None:
            return text.text in self.captions
        return text.words <= self.word_set


@dataclass(frozen=True)
class TrainingText:
    """One training text: a caption, or a word list (``concept_text``) with its words."""

    text: str
    words: frozenset[str] | None = None  # a word list's words; None for a caption


def draw_text(rng: np.random.Generator, image: ImageTexts, fraction: float = WORD_LIST_FRACTION) -> TrainingText:
    """With probability ``fraction``, ``concept_text`` of the image's content words: shuffled, a count
    drawn uniformly from 1 to ``MAX_WORDS`` (all of them when it has fewer); else one of its captions."""
    if rng.random() < fraction and image.words:
        count = int(rng.integers(1, MAX_WORDS + 1))
        words = [image.words[i] for i in rng.permutation(len(image.words))[:count]]
        return TrainingText(concept_text(words), frozenset(words))
    return TrainingText(image.captions[rng.integers(len(image.captions))])


def positives(images: list[ImageTexts], texts: list[TrainingText]) -> torch.Tensor:
    """B × B: 1 where text j is true of image i (``ImageTexts.describes``), so identical texts are
    positives, and so are a word list and every image holding its words, whatever their order."""
    return torch.tensor([[im.describes(t) for t in texts] for im in images], dtype=torch.float32)


def longest_texts(images: list[ImageTexts], tokenizer) -> list[str]:
    """Every text ``draw_text`` can give, or one at least as long (in tokens): all captions, and per
    image the word list of its ``MAX_WORDS`` longest words. Checked against the context before training."""
    cost = {}
    out = []
    for im in images:
        for w in im.words:
            if w not in cost:
                cost[w] = token_length(tokenizer, w)
        longest = sorted(im.words, key=lambda w: -cost[w])[:MAX_WORDS]
        out.extend([*im.captions, concept_text(longest)] if longest else im.captions)
    return out


# -- training -----------------------------------------------------------------------------
def contrastive_loss(image_emb, text_emb, logit_scale, positive: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives: ``positive[i, j]`` = 1 when text j is true of image i.

    Many images of the world share a caption ("A red circle on the left."), and a word list is
    true of every image with those words; treating those as negatives would push apart
    embeddings that should agree. Each direction spreads its target over its positives.
    """
    logits = logit_scale * image_emb @ text_emb.T
    image_to_text = positive / positive.sum(1, keepdim=True)
    text_to_image = positive.T / positive.T.sum(1, keepdim=True)
    return (F.cross_entropy(logits, image_to_text) + F.cross_entropy(logits.T, text_to_image)) / 2


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)`` run only up to the batch's last end-of-text token.

    open_clip's CLIP always runs the whole 77-token context; the positions after a text's
    end-of-text token change nothing (the attention is causal, the text is read at that token),
    so cutting the batch's common padding gives the same embeddings at a fraction of the cost.
    """
    if getattr(model, "text_pool_type", None) != "argmax" or getattr(model, "attn_mask", None) is None:
        return model.encode_text(tokens)
    n = int(tokens.argmax(dim=-1).max()) + 1  # argmax: end-of-text is the largest id, as in open_clip's pooling
    tokens = tokens[:, :n]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:n].to(cast_dtype)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    return model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection


def _encode(model, pixels, tokens, batch_size: int):
    img, txt = [], []
    for s in range(0, len(pixels), batch_size):
        img.append(F.normalize(model.encode_image(pixels[s : s + batch_size]), dim=-1))
    for s in range(0, len(tokens), batch_size):
        txt.append(F.normalize(model.encode_text(tokens[s : s + batch_size]), dim=-1))
    return torch.cat(img), torch.cat(txt)


@torch.no_grad()
def text_to_image_recall(model, pixels, tokens, owner: np.ndarray, batch_size: int, ks=(1, 5, 10)) -> dict:
    """Recall@k of retrieving each caption's own image among all images (``owner[j]``: image of caption j)."""
    model.eval()
    img, txt = _encode(model, pixels, tokens, batch_size)
    rank_of_owner = ((txt @ img.T) > (txt * img[owner]).sum(1, keepdim=True)).sum(1).numpy()
    return {f"r@{k}": float((rank_of_owner < k).mean()) for k in ks} | {"queries": len(owner), "images": len(pixels)}


def word_list_pairs(images: list[ImageTexts], seed: int) -> tuple[list[str], np.ndarray]:
    """Per image, ``concept_text`` of its content words (shuffled, at most ``MAX_WORDS``), and for
    each image another one whose words differ (seeded)."""
    rng = np.random.default_rng(seed)
    texts = [concept_text([im.words[i] for i in rng.permutation(len(im.words))[:MAX_WORDS]]) for im in images]
    sets = [im.word_set for im in images]
    if len(set(sets)) < 2:
        raise MMConceptsError("train_clip: the word-list check needs test images with different words")
    other = np.empty(len(images), dtype=int)
    for i in range(len(images)):
        j = i
        while sets[j] == sets[i]:
            j = int(rng.integers(len(images)))
        other[i] = j
    return texts, other


@torch.no_grad()
def word_list_check(model, pixels, tokens, other: np.ndarray, batch_size: int) -> dict:
    """How often an image's own word list (``tokens[i]``) has a higher CLIPScore than another
    image's (``tokens[other[i]]``): CLIPScore's question, asked where the answer is known."""
    model.eval()
    img, txt = (e.numpy() for e in _encode(model, pixels, tokens, batch_size))
    scores = clip_score(img, txt)
    rows = np.arange(len(img))
    own, theirs = scores[rows, rows], scores[rows, other]
    return {
        "own_words_win": float((own > theirs).mean()),
        "ties": float((own == theirs).mean()),
        "clipscore_own": float(own.mean()),
        "clipscore_other": float(theirs.mean()),
        "images": len(own),
    }


def train_tiny_clip(world_dir, out_dir, **params) -> dict:
    """Train on the world's train split; on its test split measure text→image recall and the
    word-list check (``word_list_check``); save the folder."""
    import open_clip
    from safetensors.torch import save_file

    p = merge_params(CLIP_DEFAULTS, params, "train_clip", positive=("steps", "batch_size", "eval_batch_size"))
    set_threads(p["threads"])
    started = time.perf_counter()
    register_shapes_clip()
    torch.manual_seed(p["seed"])
    model, _, preprocess = open_clip.create_model_and_transforms(CLIP_NAME)
    tokenizer = open_clip.get_tokenizer(CLIP_NAME)

    samples, images = world_split(world_dir, "train")
    pixels = torch.stack([preprocess(im) for im in images])
    texts_of = [ImageTexts.of(s.captions) for s in samples]
    check_fits(longest_texts(texts_of, tokenizer), tokenizer, model, CLIP_NAME)  # no text may be cut
    rng = np.random.default_rng(p["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    schedule = warmup_cosine(optimizer, p["warmup"], p["steps"])
    model.train()
    losses, word_lists = [], 0
    bar = tqdm(batch_order(rng, len(samples), p["batch_size"], p["steps"]), total=p["steps"], desc="train CLIP", mininterval=5)
    for indices in bar:
        batch = [texts_of[i] for i in indices]
        texts = [draw_text(rng, im) for im in batch]
        word_lists += sum(t.words is not None for t in texts)
        image_emb = F.normalize(model.encode_image(pixels[indices]), dim=-1)
        text_emb = F.normalize(encode_text_trimmed(model, tokenizer([t.text for t in texts])), dim=-1)
        loss = contrastive_loss(image_emb, text_emb, model.logit_scale.exp(), positives(batch, texts))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():  # CLIP's clamp: a temperature above 100 destabilises training
            model.logit_scale.clamp_(0, np.log(100))
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
    train_seconds = time.perf_counter() - started

    test_samples, test_images = world_split(world_dir, "test")
    test_pixels = torch.stack([preprocess(im) for im in test_images])
    test_texts = [c for s in test_samples for c in s.captions]
    owner = np.repeat(np.arange(len(test_samples)), [len(s.captions) for s in test_samples])
    recall = text_to_image_recall(model, test_pixels, tokenizer(test_texts), owner, p["eval_batch_size"])
    word_texts, other = word_list_pairs([ImageTexts.of(s.captions) for s in test_samples], p["seed"])
    check_fits(word_texts, tokenizer, model, CLIP_NAME)
    words = word_list_check(model, test_pixels, tokenizer(word_texts), other, p["eval_batch_size"])
    print(f"train_clip: text→image recall on {recall['images']} test images: "
          f"R@1 {recall['r@1']:.3f}, R@5 {recall['r@5']:.3f}, R@10 {recall['r@10']:.3f}; "
          f"own words beat another image's in {words['own_words_win']:.1%}")
    summary = {
        "params": p,
        "model": CLIP_NAME,
        "checkpoint": CLIP_CHECKPOINT,
        "parameters": sum(t.numel() for t in model.parameters()),
        "torch_threads": torch.get_num_threads(),
        "context_length": model.context_length,
        "word_list_fraction": WORD_LIST_FRACTION,
        "word_list_share": word_lists / (p["steps"] * p["batch_size"]),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "recall": recall,
        "word_list_check": words,
    }
    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        save_file(model.state_dict(), tmp / CLIP_CHECKPOINT)
        config = {"model_cfg": json.loads(CLIP_CONFIG.read_text()), "preprocess_cfg": model.visual.preprocess_cfg}
        (tmp / "open_clip_config.json").write_text(json.dumps(config, indent=1) + "\n")
        (tmp / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
    keys = ("parameters", "train_seconds", "total_seconds", "final_loss", "recall", "word_list_check")
    return {k: summary[k] for k in keys}
