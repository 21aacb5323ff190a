"""A tiny open_clip model trained contrastively on a generated world, and loading any CLIP.

The architecture is ``shapes-clip.json`` next to this file, registered with open_clip
under the name ``shapes-clip``; the tokenizer is open_clip's own. The output folder
holds ``open_clip_model.safetensors`` and ``open_clip_config.json``, so both
``create_model_and_transforms("shapes-clip", pretrained=<dir>/open_clip_model.safetensors)``
(after ``register_shapes_clip()``) and ``create_model_and_transforms("local-dir:<dir>")`` load it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmconcepts.atomic import atomic_path
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.tiny_common import batch_order, merge_params, set_threads, warmup_cosine, world_split

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


def register_shapes_clip() -> None:
    """Make ``shapes-clip`` one of open_clip's model names (idempotent)."""
    import open_clip

    if CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(CLIP_CONFIG)


def load_clip(spec: dict, device: str = "cpu"):
    """(model, preprocess, tokenizer) for ``{"name", "path"}`` (ours) or ``{"name", "pretrained"}`` (open_clip's)."""
    import open_clip

    if not isinstance(spec, dict) or "name" not in spec or ("path" in spec) == ("pretrained" in spec):
        raise MMConceptsError(f"clip: {spec!r} needs a name and either a path (a trained tiny CLIP) or a pretrained tag")
    name = spec["name"]
    if "path" in spec:
        checkpoint = Path(spec["path"]) / CLIP_CHECKPOINT
        if not checkpoint.is_file():
            raise MMConceptsError(f"clip: {checkpoint} not found (train the tiny CLIP first)")
        register_shapes_clip()
        if name not in open_clip.list_models():
            raise MMConceptsError(f"clip: no open_clip model config named {name!r}")
        pretrained = str(checkpoint)
    else:
        pretrained = spec["pretrained"]
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


# -- training -----------------------------------------------------------------------------
def contrastive_loss(image_emb, text_emb, logit_scale, same_text: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every pair with identical caption text counts as a positive.

    Many images of the world share a caption ("A red circle on the left."); treating
    those as negatives would push apart embeddings that should agree.
    """
    logits = logit_scale * image_emb @ text_emb.T
    targets = same_text / same_text.sum(1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


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


def train_tiny_clip(world_dir, out_dir, **params) -> dict:
    """Train on the world's train split, measure text→image recall on its test split, save the folder."""
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
    captions = [s.captions for s in samples]
    rng = np.random.default_rng(p["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    schedule = warmup_cosine(optimizer, p["warmup"], p["steps"])
    model.train()
    losses = []
    bar = tqdm(batch_order(rng, len(samples), p["batch_size"], p["steps"]), total=p["steps"], desc="train CLIP", mininterval=5)
    for indices in bar:
        texts = [captions[i][rng.integers(len(captions[i]))] for i in indices]
        same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.float32)
        image_emb = F.normalize(model.encode_image(pixels[indices]), dim=-1)
        text_emb = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        loss = contrastive_loss(image_emb, text_emb, model.logit_scale.exp(), same)
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
    test_texts = [c for s in test_samples for c in s.captions]
    owner = np.repeat(np.arange(len(test_samples)), [len(s.captions) for s in test_samples])
    recall = text_to_image_recall(
        model, torch.stack([preprocess(im) for im in test_images]), tokenizer(test_texts), owner, p["eval_batch_size"]
    )
    print(f"train_clip: text→image recall on {recall['images']} test images: "
          f"R@1 {recall['r@1']:.3f}, R@5 {recall['r@5']:.3f}, R@10 {recall['r@10']:.3f}")
    summary = {
        "params": p,
        "model": CLIP_NAME,
        "checkpoint": CLIP_CHECKPOINT,
        "parameters": sum(t.numel() for t in model.parameters()),
        "torch_threads": torch.get_num_threads(),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "recall": recall,
    }
    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        save_file(model.state_dict(), tmp / CLIP_CHECKPOINT)
        config = {"model_cfg": json.loads(CLIP_CONFIG.read_text()), "preprocess_cfg": model.visual.preprocess_cfg}
        (tmp / "open_clip_config.json").write_text(json.dumps(config, indent=1) + "\n")
        (tmp / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
    return {k: summary[k] for k in ("parameters", "train_seconds", "total_seconds", "final_loss", "recall")}
