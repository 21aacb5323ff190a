"""Forward hooks on the decoder: read the states at chosen positions of every row.

A hook on block L sees block L's output (before the final norm); a hook on the
final norm sees the ``final`` state. Only the chosen position of each row is
kept, so no full-sequence activations are held.
"""

from __future__ import annotations

import contextlib

import torch

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.base import LMMAdapter


def parse_layer(layer: str | int, n_layers: int) -> str:
    """Validate a layer name: 1..n_layers (output of that decoder block) or ``final``."""
    name = str(layer)
    if name == "final":
        return name
    if not name.isdigit() or not 1 <= int(name) <= n_layers:
        raise MMConceptsError(f"layer {name!r} is not 'final' or a block number in 1..{n_layers}")
    return name


def layer_module(adapter: LMMAdapter, layer: str) -> torch.nn.Module:
    return adapter.final_norm() if layer == "final" else adapter.decoder_layers()[int(layer) - 1]


@contextlib.contextmanager
def read_states(adapter: LMMAdapter, layers: list[str], index: torch.Tensor):
    """Within the block, forward passes fill the yielded dict: layer -> (rows, hidden) states at ``index[row]``."""
    found: dict[str, torch.Tensor] = {}
    rows = torch.arange(len(index), device=index.device)

    def hook_for(name):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            found[name] = hidden[rows, index].float().cpu()

        return hook

    handles = [layer_module(adapter, L).register_forward_hook(hook_for(L)) for L in layers]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()
