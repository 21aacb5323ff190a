"""A family of tiny ViT CLIPs for mutual knowledge: checkpoints along training, two widths, one gap.

Each width is one training run on the classification set's train images (``classes/train/``, centred
objects like the images the stage explains, see mmconcepts.shapes.classes) that saves the model at the steps
listed in ``checkpoints`` (step 0 is the random initialisation, the control the paper's claim
is read against), so the family holds models of increasing zero-shot accuracy. Every saved
folder is a regular open_clip folder (``open_clip_config.json`` + ``open_clip_model.safetensors``)
that ``open_clip.create_model_and_transforms("local-dir:<folder>")`` loads.

The training texts use the classification set's descriptors (mmconcepts.shapes.classes): class
names in CLIP's templates, each shape's parts, the colour descriptors, the background ones. One
attribute, ``gap``, is never named: its descriptors describe something every training image shows
but no text says, so a CLIP cannot share knowledge of it between its two encoders, and the
mutual-knowledge stage must not find those descriptors mutual (the planted gap).

The vision tower cuts 64-pixel images into 8-pixel patches (an 8 × 8 grid), fine enough to find the
object and split it into a few concepts; the shapes-clip of CLIPScore uses 16-pixel patches.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmconcepts.atomic import atomic_path, read_json
from mmconcepts.data.classification import CLIP_TEMPLATES
from mmconcepts.device import set_threads
from mmconcepts.errors import MMConceptsError
from mmconcepts.images import open_rgb
from mmconcepts.shapes.classes import BACKGROUND_DESCRIPTORS, COLOUR_DESCRIPTORS, PART_DESCRIPTORS
from mmconcepts.shapes.clip import CLIP_CHECKPOINT, contrastive_loss, encode_text_trimmed
from mmconcepts.shapes.clip_family_settings import HEAD_WIDTH, family_params, model_name
from mmconcepts.shapes.training import batch_order, warmup_cosine


def architecture(p: dict, width: int, image_size: int) -> dict:
    """open_clip's model config of one width."""
    heads = width // HEAD_WIDTH
    vision = {"image_size": image_size, "layers": p["layers"], "width": width, "head_width": HEAD_WIDTH, "patch_size": p["patch_size"]}
    text = {"context_length": 77, "vocab_size": 49408, "width": width, "heads": heads, "layers": p["layers"]}
    return {"embed_dim": p["embed_dim"], "vision_cfg": vision, "text_cfg": text}


# -- training texts -----------------------------------------------------------------------
def _forms(gap: str) -> list[tuple[str, tuple[str, ...]]]:
    """Text forms and the attributes each names; none names the gap attribute."""
    forms = [
        ("{class_prompt}", ("shape",)),  # one of the templates zero-shot classification averages over
        ("a photo of a {colour} {shape}.", ("shape", "colour")),
        ("a {shape} with {part}.", ("shape",)),
        ("a {colour} {shape} with {part} and {other_part}.", ("shape", "colour")),
        ("a photo showing {part}.", ("shape",)),
        ("a photo showing {colour_descriptor}.", ("colour",)),
        ("a photo showing {background_descriptor}.", ("background",)),
        ("a {shape} with {part}, {background_descriptor}.", ("shape", "background")),
    ]
    return [(text, names) for text, names in forms if gap not in names]


def draw_text(rng: np.random.Generator, f: dict, forms) -> tuple[str, dict[str, str]]:
    """One training text of factors ``f`` and the attributes it names, ``{attribute: value}``."""
    text, names = forms[rng.integers(len(forms))]
    parts = PART_DESCRIPTORS[f["shape"]]
    i, j = rng.choice(len(parts), 2, replace=False)
    words = {
        "class_prompt": CLIP_TEMPLATES[rng.integers(len(CLIP_TEMPLATES))].format(f["shape"]),
        "shape": f["shape"],
        "colour": f["colour"],
        "part": parts[i],
        "other_part": parts[j],
        "colour_descriptor": COLOUR_DESCRIPTORS[f["colour"]],
        "background_descriptor": BACKGROUND_DESCRIPTORS[f["background"]],
    }
    return text.format(**words), {a: f[a] for a in names}


def positives(factors: list[dict], named: list[dict]) -> torch.Tensor:
    """B × B: 1 where text j is true of image i (every attribute it names has image i's value)."""
    return torch.tensor([[all(f[a] == v for a, v in n.items()) for n in named] for f in factors], dtype=torch.float32)


# -- data ---------------------------------------------------------------------------------
def class_split(world_dir, which: str) -> tuple[list[dict], list]:
    """Factors and images (RGB PIL) of the world's classification set: ``train`` (what the family
    trains on) or ``images`` (the explained set, whose top-1 each checkpoint records)."""
    folder = Path(world_dir) / "classes"
    path = folder / ("train_factors.json" if which == "train" else "truth.json")
    table = read_json(path, "classification factors")
    table = table if which == "train" else table["images"]
    if not table:
        raise MMConceptsError(f"{path}: no images")
    images = [open_rgb(folder / which / key) for key in table]
    missing = [key for key, im in zip(table, images) if im is None]
    if missing:
        raise MMConceptsError(f"{folder / which}: {len(missing)} unreadable image(s), e.g. {missing[0]}")
    return list(table.values()), images


# -- evaluation ---------------------------------------------------------------------------
@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, pixels: torch.Tensor, labels: np.ndarray, classes, batch_size: int) -> float:
    """Top-1 of the class embeddings averaged over the classification set's templates."""
    model.eval()
    weights = []
    for name in classes:
        emb = F.normalize(model.encode_text(tokenizer([t.format(name) for t in CLIP_TEMPLATES])), dim=-1).mean(0)
        weights.append(F.normalize(emb, dim=0))
    weights = torch.stack(weights)
    predicted = []
    for s in range(0, len(pixels), batch_size):
        predicted.append((F.normalize(model.encode_image(pixels[s : s + batch_size]), dim=-1) @ weights.T).argmax(1))
    return float((torch.cat(predicted).numpy() == labels).mean())


# -- one width ----------------------------------------------------------------------------
def _save(folder: Path, model, cfg: dict, facts: dict) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / CLIP_CHECKPOINT)
    config = {"model_cfg": cfg, "preprocess_cfg": model.visual.preprocess_cfg}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1) + "\n")
    (folder / "training.json").write_text(json.dumps(facts, indent=1) + "\n")


def train_width(world_dir, out_dir, width: int, **params) -> dict:
    """Train one width of the family on the world's train split; save each checkpoint to
    ``out_dir/w<width>-s<step>/`` (all atomically, as one folder); return a summary."""
    import open_clip

    p = family_params(**params)
    if width not in p["widths"]:
        raise MMConceptsError(f"clip_family: width {width} is not one of the family's widths {p['widths']}")
    set_threads(p["threads"])
    started = time.perf_counter()
    factors, images = class_split(world_dir, "train")
    test_factors, test_images = class_split(world_dir, "images")
    shapes = sorted({f["shape"] for f in factors}, key=list(PART_DESCRIPTORS).index)
    test_labels = np.array([shapes.index(f["shape"]) for f in test_factors])

    cfg = architecture(p, width, images[0].size[0])
    name = f"shapes-clip-family-w{width}"
    with tempfile.TemporaryDirectory() as tmp:  # open_clip registers configs from files
        (Path(tmp) / f"{name}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(Path(tmp) / f"{name}.json")
    torch.manual_seed(p["seed"] + width)
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    pixels = torch.stack([preprocess(im) for im in images])
    test_pixels = torch.stack([preprocess(im) for im in test_images])
    forms = _forms(p["gap"])
    rng = np.random.default_rng([p["seed"], width])
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    schedule = warmup_cosine(optimizer, p["warmup"], p["steps"])
    saved, losses = {}, []

    def checkpoint(step: int, tmp: Path) -> None:
        accuracy = zero_shot_accuracy(model, tokenizer, test_pixels, test_labels, shapes, p["eval_batch_size"])
        member = model_name(width, step)
        facts = {"model": member, "width": width, "step": step, "gap": p["gap"], "zero_shot_top1": accuracy,
                 "loss": float(np.mean(losses[-20:])) if losses else None, "params": p}  # fmt: skip
        _save(tmp / member, model, cfg, facts)
        saved[member] = accuracy
        print(f"clip_family: {member}: zero-shot top-1 on the {len(test_labels)} explained images {accuracy:.3f}")
        model.train()

    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        model.train()
        if 0 in p["checkpoints"]:
            checkpoint(0, tmp)
        order = batch_order(rng, len(factors), p["batch_size"], p["steps"])
        for step, indices in enumerate(tqdm(order, total=p["steps"], desc=f"train CLIP w{width}", mininterval=5), start=1):
            drawn = [draw_text(rng, factors[i], forms) for i in indices]
            image_emb = F.normalize(model.encode_image(pixels[indices]), dim=-1)
            text_emb = F.normalize(encode_text_trimmed(model, tokenizer([t for t, _ in drawn])), dim=-1)
            positive = positives([factors[i] for i in indices], [n for _, n in drawn])
            loss = contrastive_loss(image_emb, text_emb, model.logit_scale.exp(), positive)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, np.log(100))
            losses.append(loss.item())
            if step in p["checkpoints"]:
                checkpoint(step, tmp)
        summary = {"width": width, "gap": p["gap"], "members": saved, "seconds": round(time.perf_counter() - started, 1)}
        (tmp / "family.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
