"""The command registry and the argument groups several commands share."""

from __future__ import annotations

import argparse
import json

COMMANDS: dict[str, tuple] = {}


def arg(*flags, **kwargs) -> tuple:
    """One ``add_argument`` call, written where the command is declared."""
    return flags, kwargs


def command(name: str, help: str, *arguments):
    """Register the handler under ``name``; ``arguments`` are ``arg(...)`` tuples or lists of them."""
    flat = []
    for a in arguments:
        flat.extend(a if isinstance(a, list) else [a])

    def register(fn):
        COMMANDS[name] = (fn, help, flat)
        return fn

    return register


def json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None


OUT = arg("--out", required=True)
THREADS = arg("--threads", type=int, default=None, help="torch CPU threads")
PARAMS = arg("--params", type=json_arg, default={}, help="JSON object of settings")
HEADER = arg("--header", type=json_arg, default={}, help="fields copied into the output")
MODEL = [
    arg("--adapter", required=True),
    arg("--model", required=True, help="local folder or hub id"),
    arg("--dtype", default="auto"),
    arg("--device", default="auto"),
    arg("--trust-remote-code", action="store_true", help="run the checkpoint's own code (models.<name>.trust_remote_code)"),
]
DATA = [
    arg("--gt", required=True, help="Karpathy-format captions JSON"),
    arg("--images", required=True, help="root folder the captions' filepath/filename are under"),
    arg("--restval", default="skip", choices=["skip", "train"], help="Karpathy's restval images: skipped or train"),
]
CLIP = arg("--clip", type=json_arg, required=True, help='e.g. {"name": "ViT-B-32", "pretrained": "openai"}')


def dataset(a, split=None, limit=None):
    """The samples of the data set named by ``DATA`` arguments."""
    from mmconcepts.data.karpathy import load_karpathy

    return load_karpathy(a.gt, a.images, split=split, limit=limit, restval=a.restval)
