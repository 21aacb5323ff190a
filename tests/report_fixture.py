"""Synthetic report inputs in the schema of grounding.json, metrics.json and samples/{split}.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mmconcepts.concepts.dictionary_methods import FACTS, METHODS

COLOURS = {"red": (220, 50, 47), "green": (60, 160, 80), "blue": (40, 90, 200), "yellow": (230, 190, 40)}
SHAPES = ("circle", "square")
WORDS = "red green blue yellow circle square small large left right top bottom bright dark round".split()


def shape_images(folder: Path, n: int, *, noisy: bool = False, seed: int = 0) -> list[str]:
    """n PNGs of a coloured shape; ``noisy`` adds pixel noise, the worst case for thumbnail size."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        colour = list(COLOURS.values())[i % len(COLOURS)]
        im = Image.new("RGB", (224, 224), (235, 235, 225) if i % 3 else (40, 40, 60))
        d = ImageDraw.Draw(im)
        x, y, r = rng.integers(50, 174), rng.integers(50, 174), rng.integers(20, 45)
        (d.ellipse if SHAPES[i % 2] == "circle" else d.rectangle)([x - r, y - r, x + r, y + r], fill=colour)
        if noisy:
            noise = rng.integers(-40, 40, (224, 224, 3))
            im = Image.fromarray(np.clip(np.asarray(im, dtype=int) + noise, 0, 255).astype(np.uint8))
        path = folder / f"{i:05d}.png"
        im.save(path)
        paths.append(str(path))
    return paths


def _ms(rng, mean) -> dict:
    return {"mean": float(mean), "std": float(abs(rng.normal(0.03, 0.01)))}


def grounding(images: list[str], *, model: str, token: str, layer: str, method: str, k: int, rng, odd_word=None) -> dict:
    concepts = []
    for c in range(k):
        words = [WORDS[(c + j * 3) % len(WORDS)] for j in range(int(rng.integers(6, 15)))]
        if odd_word and c == 0:
            words.insert(0, odd_word)
        acts = np.concatenate([np.zeros(900), rng.gamma(2.0, 1.0, 600)])
        counts, edges = np.histogram(acts, bins=20)
        mas = rng.choice(len(images), 5, replace=False)
        concepts.append(
            {
                "index": c,
                "words": list(dict.fromkeys(words)),
                "mas": [
                    {"id": str(i), "image": images[i], "caption": f"a {WORDS[i % 4]} {token}", "activation": float(a)}
                    for i, a in zip(mas, sorted(rng.gamma(3.0, 1.5, 5), reverse=True))
                ],
                "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
                "frequency": float(rng.uniform(0.05, 0.6)),
            }
        )
    test = [
        {
            "id": str(6000 + i),
            "image": images[-1 - i],
            "caption": f"a {WORDS[i % 4]} {token}",
            "top": [{"concept": int(c), "activation": a} for c, a in zip(rng.choice(k, 3, replace=False), (0.9, 0.4, 0.1))],
        }
        for i in range(min(40, len(images)))
    ]
    return {
        "model": model, "token": token, "layer": layer, "method": method, "k": k, "n_train": 1500, "n_test": 250,
        "concepts": concepts, "test": test,
        "random_words": [list(rng.choice(WORDS, len(c["words"]))) for c in concepts],
    }  # fmt: skip


def metrics(*, model: str, token: str, layer: str, method: str, k: int, rng, with_recovery: bool = True, top_r: int = 3) -> dict:
    quality = {"snmf": 0.72, "pca": 0.68, "kmeans": 0.7, "simple": 0.66, "random": 0.6}[method]
    recovery = None
    if with_recovery:
        factors = (("colour", COLOURS), ("shape", SHAPES), ("size", ("small", "large")))
        table = [
            {"factor": f, "value": v, "n_positive": int(rng.integers(10, 60)), "auroc": rng.uniform(0.55, 0.99), "concept": int(rng.integers(k)),
             "probe_auroc": rng.uniform(0.9, 1.0)}
            for f, values in factors
            for v in values
        ]  # fmt: skip
        table[-1]["probe_auroc"] = None  # a value too rare to cross-validate
        probe = [r["probe_auroc"] for r in table if r["probe_auroc"] is not None]
        recovery = {"mean": float(np.mean([r["auroc"] for r in table])), "table": table, "probe_mean": float(np.mean(probe))}
    facts = FACTS[method]
    fidelity = {
        **({"reconstruction": _ms(rng, rng.uniform(0.1, 0.6))} if facts.reconstruction else {}),
        **({"sparsity": _ms(rng, rng.uniform(0.5, 0.95))} if facts.sparsity else {}),
    }
    return {
        "model": model, "token": token, "layer": layer, "method": method, "k": k, "n_test": 250,
        "clipscore": {"top1": _ms(rng, quality + rng.normal(0, 0.01)), "top_r": _ms(rng, quality - 0.02), "r": top_r},
        "bertscore": {"top1": _ms(rng, quality - 0.15), "top_r": _ms(rng, quality - 0.16), "r": top_r},
        "overlap": float(rng.uniform(0.05, 0.3)),
        **fidelity,
        "recovery": recovery,
        "random_words": {
            "clipscore": {"top1": _ms(rng, 0.58), "top_r": _ms(rng, 0.57), "r": top_r},
            "bertscore": {"top1": _ms(rng, 0.45), "top_r": _ms(rng, 0.44), "r": top_r},
            "overlap": 0.3,
        },
        "ground_truth": {"clipscore": _ms(rng, 0.8)},
    }  # fmt: skip


def report_inputs(
    images: list[str],
    *,
    layers=("2", "4", "final"),
    methods=METHODS,
    ks=(10, 20),
    focus_layer: str = "4",
    odd_word: str | None = None,
    with_recovery: bool = True,
    top_r: int = 3,
    seed: int = 0,
) -> dict:
    """Keyword arguments for render_report: header, entries and focus."""
    rng = np.random.default_rng(seed)
    ident = {"model": "shapes-llava", "token": "circle"}
    entries = [
        {
            "layer": layer, "method": method, "k": k,
            "grounding": grounding(images, **ident, layer=layer, method=method, k=k, rng=rng, odd_word=odd_word),
            "metrics": metrics(**ident, layer=layer, method=method, k=k, rng=rng, with_recovery=with_recovery, top_r=top_r),
        }
        for layer in layers for method in methods for k in ks
    ]  # fmt: skip
    train = {"images_seen": 2000, "in_prediction": 1640, "in_ground_truth": 1580, "kept": 1500, "skipped_images": 3}
    test = {"images_seen": 400, "in_prediction": 330, "in_ground_truth": 310, "kept": 250, "skipped_images": 0}
    header = {
        **ident, "dataset": "shapes", "counts": {"train": train, "test": test},
        "layers": list(layers), "methods": list(methods), "ks": list(ks), "version": "0.1.0",
    }  # fmt: skip
    return {"header": header, "entries": entries, "focus": {"layer": focus_layer, "k": ks[0]}}
