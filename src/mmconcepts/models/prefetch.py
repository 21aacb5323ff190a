"""Batches made ahead of the model: image decoding and preprocessing in DataLoader workers.

Each item is one whole batch, made by ``make(i)`` (a picklable callable that opens
the batch's images and runs the processor, on the CPU). While the model runs
batch i, the workers make the next ones. On a GPU their tensors come in pinned
memory, so ``LMMAdapter.to_device`` copies each batch without blocking. With
no workers, batches are made in this process, one at a time: the same batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import torch


class _Batches(torch.utils.data.Dataset):
    def __init__(self, make: Callable[[int], dict], n: int):
        self.make, self.n = make, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.make(i)


def prefetched(make: Callable[[int], dict], n_batches: int, *, workers: int, pin: bool) -> Iterator[dict]:
    """``make(0), make(1), ...`` in order, made by ``workers`` processes ahead of their use."""
    if workers == 0:
        yield from (make(i) for i in range(n_batches))
        return
    # The fast tokenizer's own threads do not survive a fork; the workers need none.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # batch_size=None: each item already is a batch, passed through as made.
    loader = torch.utils.data.DataLoader(
        _Batches(make, n_batches), batch_size=None, shuffle=False, num_workers=min(workers, n_batches) or 1,
        pin_memory=pin, prefetch_factor=2,
    )  # fmt: skip
    yield from loader
