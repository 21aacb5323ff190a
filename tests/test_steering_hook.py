"""The steering hook on tiny random checkpoints of every family: it adds exactly α·v where it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_lmms import BUILDERS, HIDDEN, checkpoint

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.generation import greedy_generate
from mmconcepts.models.hooks import add_vector
from mmconcepts.models.registry import load_adapter

PROMPT = "Provide a one-sentence caption for the provided image."


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def tiny(request, tmp_path_factory):
    adapter = load_adapter(request.param, str(checkpoint(request.param, tmp_path_factory)), dtype="float32", device="cpu")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)) for _ in range(2)]
    return adapter, images, adapter.caption_prompt(PROMPT)


def hidden_states(adapter, images, prompt) -> list[torch.Tensor]:
    """What each block reads, and what the final norm reads: index L is block L's output as the model uses it.

    Read with pre-hooks on the next module, not with output_hidden_states: transformers
    records those with hooks of its own that may run before the steering hook.
    """
    readers = [*adapter.decoder_layers(), adapter.final_norm()]
    seen: list[torch.Tensor] = []

    def grab(module, args, kwargs):
        seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone())

    handles = [m.register_forward_pre_hook(grab, with_kwargs=True) for m in readers]
    try:
        with torch.no_grad():
            adapter.model(**adapter.encode(images, prompt, padding_side="left"))
    finally:
        for h in handles:
            h.remove()
    return seen  # [embeddings, block 1, block 2, ...]


def test_all_adds_alpha_v_to_every_position_of_the_layer_and_nothing_before(tiny):
    adapter, images, prompt = tiny
    v = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(1))
    plain = hidden_states(adapter, images, prompt)
    with add_vector(adapter, "2", v, 1.5, "all"):
        steered = hidden_states(adapter, images, prompt)
    torch.testing.assert_close(steered[1], plain[1])  # block 1, before the hook
    torch.testing.assert_close(steered[2] - plain[2], (1.5 * v).expand_as(plain[2]), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(steered[3], plain[3])  # later blocks read the steered state


def test_last_prompt_adds_only_at_the_last_prompt_position(tiny):
    adapter, images, prompt = tiny
    v = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(2))
    plain = hidden_states(adapter, images, prompt)
    with add_vector(adapter, "2", v, -2.0, "last_prompt"):
        steered = hidden_states(adapter, images, prompt)
    diff = steered[2] - plain[2]
    torch.testing.assert_close(diff[:, -1], (-2.0 * v).expand_as(diff[:, -1]), atol=1e-5, rtol=1e-4)
    assert diff[:, :-1].abs().max() == 0


def test_generated_leaves_the_prompt_pass_alone(tiny):
    adapter, images, prompt = tiny
    plain = hidden_states(adapter, images, prompt)
    with add_vector(adapter, "2", torch.ones(HIDDEN), 3.0, "generated"):
        steered = hidden_states(adapter, images, prompt)
    assert all(torch.equal(a, b) for a, b in zip(plain, steered))


# Generation under the hook is the same code for every family: checked on one of each prompt layout.
@pytest.mark.parametrize("tiny", ["llava", "qwen2_vl"], indirect=True)
def test_alpha_zero_generates_exactly_the_unsteered_captions(tiny):
    adapter, images, prompt = tiny
    plain = greedy_generate(adapter, images, prompt, 8)
    with add_vector(adapter, "2", torch.randn(HIDDEN), 0.0, "all"):
        assert greedy_generate(adapter, images, prompt, 8) == plain
    with add_vector(adapter, "2", 50 * torch.randn(HIDDEN, generator=torch.Generator().manual_seed(3)), 1.0, "all"):
        assert greedy_generate(adapter, images, prompt, 8) != plain  # a large vector does change them


def test_a_vector_of_another_size_is_named(tiny):
    adapter, images, prompt = tiny
    with pytest.raises(MMConceptsError, match=rf"shape \(7,\) for hidden states of size {HIDDEN}"), add_vector(adapter, "1", torch.ones(7), 1.0):
        hidden_states(adapter, images, prompt)
    with pytest.raises(MMConceptsError, match="apply must be one of"), add_vector(adapter, "1", torch.ones(HIDDEN), 1.0, "everywhere"):
        pass


@pytest.mark.parametrize("tiny", ["llava"], indirect=True)
@pytest.mark.parametrize("apply", ["prompt", "generated", "last_prompt"])
def test_during_generation_the_vector_goes_where_apply_says(tiny, apply):
    """Every call of the block while generating: what it returned before and after the steering hook."""
    adapter, images, prompt = tiny
    block = adapter.decoder_layers()[1]  # block 2
    calls: list[list[torch.Tensor]] = []

    def output_of(out):
        return (out[0] if isinstance(out, tuple) else out).detach().clone()

    before = block.register_forward_hook(lambda m, a, out: calls.append([output_of(out)]))
    v = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(4))
    try:
        with add_vector(adapter, "2", v, 2.0, apply):
            after = block.register_forward_hook(lambda m, a, out: calls[-1].append(output_of(out)))
            greedy_generate(adapter, images, prompt, 4)
            after.remove()
    finally:
        before.remove()
    assert calls[0][0].shape[1] > 1 and len(calls) > 1 and all(c[0].shape[1] == 1 for c in calls[1:])  # prompt, then steps
    added = [c[1] - c[0] for c in calls]
    prompt_rows = {"prompt": slice(None), "generated": slice(0, 0), "last_prompt": slice(-1, None)}[apply]
    expected = torch.zeros_like(added[0])
    expected[:, prompt_rows] = 2.0 * v
    torch.testing.assert_close(added[0], expected, atol=1e-5, rtol=1e-4)
    for step in added[1:]:
        torch.testing.assert_close(step, (0.0 if apply == "prompt" else 2.0) * v.expand_as(step), atol=1e-5, rtol=1e-4)
