"""Shards: a split's rows cut into jobs of whole batches, and the gather of their captions.

Shard ``i-of-n`` (counted from 1) takes a balanced run of whole batches, so every
batch a model sees is the one it sees unsharded: results do not depend on the shard
count. Captioning shards the split's images; extraction shards the word's kept
samples into as many shards as the split's captions have. The feature stores'
gather is ``feature_store.gather_features``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from mmconcepts.atomic import atomic_path
from mmconcepts.errors import MMConceptsError

SHARD_PATTERN = r"[1-9]\d*-of-[1-9]\d*"


def shard_count(n_rows: int, shard_size: int) -> int:
    """Shards of about ``shard_size`` rows each (at least one)."""
    return max(1, math.ceil(n_rows / shard_size))


def shard_name(index: int, count: int) -> str:
    return f"{index + 1}-of-{count}"


def parse_shard(name: str) -> tuple[int, int]:
    """``"2-of-3"`` -> (1, 3): the 0-based index and the count."""
    if not re.fullmatch(SHARD_PATTERN, name):
        raise MMConceptsError(f"shard {name!r} is not of the form i-of-n")
    i, n = (int(x) for x in name.split("-of-"))
    if i > n:
        raise MMConceptsError(f"shard {name!r}: {i} is past the {n} shards")
    return i - 1, n


def shard_rows(n_rows: int, shard: str, batch_size: int) -> range:
    """The rows of one shard: batches [b0, b1) of the split's ceil(n_rows / batch_size) batches.

    Empty only when there are fewer batches than shards.
    """
    index, count = parse_shard(shard)
    batches = math.ceil(n_rows / batch_size)
    b0, b1 = index * batches // count, (index + 1) * batches // count
    return range(b0 * batch_size, min(b1 * batch_size, n_rows))


def check_complete(names: list[str]) -> None:
    """The shard names are 1-of-n .. n-of-n, in order."""
    count = len(names)
    expected = [shard_name(i, count) for i in range(count)]
    if names != expected:
        raise MMConceptsError(f"shards {', '.join(names)} are not {', '.join(expected)}")


def gather_captions(shards: list[Path], out: Path) -> int:
    """Concatenate the captions of shards 1-of-n .. n-of-n (named ``<shard>.jsonl``) into ``out``; its rows."""
    check_complete([Path(p).name.removesuffix(".jsonl") for p in shards])
    rows = 0
    with atomic_path(out) as tmp, open(tmp, "w") as f:
        for path in shards:
            text = Path(path).read_text()
            if text and not text.endswith("\n"):
                raise MMConceptsError(f"{path}: the last line is incomplete")
            f.write(text)
            rows += text.count("\n")
    return rows
