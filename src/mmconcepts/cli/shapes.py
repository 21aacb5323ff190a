"""Commands of the embedded shapes world: generate it, train its tiny models."""

from __future__ import annotations

import json

from mmconcepts.cli.registry import OUT, PARAMS, THREADS, arg, command
from mmconcepts.device import set_threads

WORLD = arg("--world", required=True, help="folder of a generated world")


@command("world", "generate the shapes world", OUT, PARAMS)
def world(a):
    from mmconcepts.shapes.world import generate_world

    print(json.dumps(generate_world(a.out, **a.params)))


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
