"""Forward hooks on the decoder: read the states at chosen positions of every row, or add a vector.

A hook on block L sees block L's output (before the final norm); a hook on the
final norm sees the ``final`` state. Only the chosen position of each row is
kept, so no full-sequence activations are held. A reading pass stops once the
deepest layer read has run: the later blocks and the LM head would change
nothing read. A steering hook adds α·v to a layer's output, which every later
layer then reads.
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


def layer_depth(layer: str, n_layers: int) -> int:
    """Blocks count from 1; the final norm comes after the last block."""
    return n_layers + 1 if layer == "final" else int(layer)


class _AllRead(Exception):
    """Raised by the deepest reading hook to end the forward pass there."""


@contextlib.contextmanager
def _hooked(adapter: LMMAdapter, layers: list[str], hook_for, stop_early: bool):
    """``hook_for(layer)`` registered on every layer's module for the block's duration.

    With ``stop_early`` the deepest layer's hook ends the forward pass once it has read:
    the ``with`` block's model call returns nothing and the block ends there.
    """
    deepest = max(layers, key=lambda L: layer_depth(L, adapter.n_layers))

    def hook_of(layer):
        hook = hook_for(layer)
        if not stop_early or layer != deepest:
            return hook

        def read_then_stop(module, args, output):
            hook(module, args, output)
            raise _AllRead

        return read_then_stop

    handles = [layer_module(adapter, L).register_forward_hook(hook_of(L)) for L in layers]
    try:
        yield
    except _AllRead:
        pass
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def read_states(adapter: LMMAdapter, layers: list[str], index: torch.Tensor, stop_early: bool = False):
    """Within the block, forward passes fill the yielded dict: layer -> (rows, hidden) states at ``index[row]``.

    ``stop_early``: the pass ends after the deepest layer read (the model call must then be the block's last
    statement, and it returns nothing).
    """
    found: dict[str, torch.Tensor] = {}
    rows = torch.arange(len(index), device=index.device)

    def hook_for(name):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            found[name] = hidden[rows, index].float().cpu()

        return hook

    with _hooked(adapter, layers, hook_for, stop_early):
        yield found


APPLY = ("all", "generated", "last_prompt", "prompt")


@contextlib.contextmanager
def add_vector(adapter: LMMAdapter, layer: str, vector, alpha: float, apply: str = "all"):
    """Within the block, ``alpha · vector`` is added to the output of ``layer`` (a block or ``final``).

    ``apply``: ``all`` positions (prompt, image tokens and generated), ``generated`` steps
    only, the ``last_prompt`` position and the generated steps, or the ``prompt`` only
    (what the model reads is steered, each generated step is not). Generation with a
    KV cache runs the whole prompt in one call and then one new token per call, so a
    call over several positions is a prompt's; prompts are left-padded, so its last
    column is every row's last prompt token.
    """
    if apply not in APPLY:
        raise MMConceptsError(f"apply must be one of {', '.join(APPLY)}, not {apply!r}")
    module = layer_module(adapter, layer)
    added: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        prompt = hidden.shape[1] > 1
        if "v" not in added:
            v = torch.as_tensor(vector, dtype=torch.float32)
            if v.shape != (hidden.shape[-1],):
                raise MMConceptsError(f"a steering vector of shape {tuple(v.shape)} for hidden states of size {hidden.shape[-1]}")
            added["v"] = (alpha * v).to(hidden.device, hidden.dtype)
        if (prompt and apply == "generated") or (not prompt and apply == "prompt"):
            return None
        if prompt and apply == "last_prompt":
            hidden = hidden.clone()
            hidden[:, -1] += added["v"]
        else:
            hidden = hidden + added["v"]
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def read_mean_states(adapter: LMMAdapter, layers: list[str], starts: torch.Tensor, ends: torch.Tensor, stop_early: bool = False):
    """Like ``read_states``, but each row's mean state over positions ``starts[row] <= i < ends[row]``."""
    found: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            at = torch.arange(hidden.shape[1], device=hidden.device)
            mask = ((at >= starts[:, None]) & (at < ends[:, None])).to(hidden.dtype)
            found[name] = ((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).float().cpu()

        return hook

    with _hooked(adapter, layers, hook_for, stop_early):
        yield found
