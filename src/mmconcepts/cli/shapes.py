"""Commands of the embedded shapes world: generate it, train its tiny models, fine-tune them."""

from __future__ import annotations

import json

from mmconcepts.cli.registry import OUT, PARAMS, THREADS, arg, command
from mmconcepts.device import set_threads

WORLD = arg("--world", required=True, help="folder of a generated world")


@command("world", "generate the shapes world", OUT, PARAMS, arg("--workers", type=int, default=1, help="processes drawing the images"))
def world(a):
    from mmconcepts.shapes.world import generate_world

    print(json.dumps(generate_world(a.out, workers=a.workers, **a.params)))


@command("train-lmm", "train the tiny LLaVA on a world", OUT, PARAMS, THREADS, WORLD)
def train_lmm(a):
    from mmconcepts.shapes.llava import train_tiny_llava

    set_threads(a.threads)
    print(json.dumps(train_tiny_llava(a.world, a.out, **a.params)))


@command("train-clip", "train the tiny CLIP on a world", OUT, PARAMS, THREADS, WORLD)
def train_clip(a):
    from mmconcepts.shapes.clip import train_tiny_clip

    set_threads(a.threads)
    print(json.dumps(train_tiny_clip(a.world, a.out, **a.params)))


@command(
    "finetune-lmm",
    "fine-tune a tiny LLaVA on one of the world's caption styles",
    OUT, PARAMS, THREADS, WORLD,
    arg("--base", required=True, help="folder of the model to fine-tune"),
    arg("--style", required=True, help="a style the world wrote (styles/<style>/)"),
)  # fmt: skip
def finetune_lmm(a):
    from mmconcepts.shapes.finetune import finetune_tiny_llava

    set_threads(a.threads)
    print(json.dumps(finetune_tiny_llava(a.base, a.world, a.style, a.out, **a.params)))
