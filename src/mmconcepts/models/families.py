"""The supported families, as facts: adding one is an entry here and a tiny checkpoint in the tests.

Tokens are the real checkpoints' (a token a checkpoint lacks is skipped). The
image goes first in every family's model cards except Mistral 3's, whose
examples ask before they show.
"""

from __future__ import annotations

from mmconcepts.models.base import Family

QWEN_END = ("<|im_end|>",)
QWEN_MARKUP = ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")
IDEFICS_MARKUP = ("<fake_token_around_image>", "<global-img>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)))

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("llava", ("llava",)),
        # LLaVA-NeXT checkpoints are Vicuna, Mistral or Llama 3 chats: all end at their EOS.
        Family("llava_next", ("llava_next",)),
        Family("llava_onevision", ("llava_onevision",), end_of_turn=QWEN_END, image_markup=("<video>",)),
        Family(
            "idefics2", ("idefics2",), end_of_turn=("<end_of_utterance>",), image_markup=("<fake_token_around_image>",),
            image_lists=True,
        ),
        # SmolVLM checkpoints are Idefics3 (model type idefics3) or its SmolVLM2 copy (smolvlm).
        Family("idefics3", ("idefics3", "smolvlm"), end_of_turn=("<end_of_utterance>",), image_markup=IDEFICS_MARKUP, image_lists=True),
        Family("qwen2_vl", ("qwen2_vl",), end_of_turn=QWEN_END, image_markup=QWEN_MARKUP),
        Family("qwen2_5_vl", ("qwen2_5_vl",), end_of_turn=QWEN_END, image_markup=QWEN_MARKUP),
        Family("qwen3_vl", ("qwen3_vl",), end_of_turn=QWEN_END, image_markup=QWEN_MARKUP),
        Family(
            "gemma3", ("gemma3",), end_of_turn=("<end_of_turn>",), image_markup=("<start_of_image>", "<end_of_image>"),
            image_lists=True,
        ),
        Family("internvl", ("internvl",), end_of_turn=QWEN_END, image_markup=("<img>", "</img>", "<video>")),
        Family("mistral3", ("mistral3",), image_first=False, image_markup=("[IMG_BREAK]", "[IMG_END]")),
        Family(
            "molmo2", ("molmo2",), end_of_turn=QWEN_END,
            image_markup=("<|image|>", "<|video|>", "<im_start>", "<low_res_im_start>", "<im_end>", "<im_col>", "<im_low>",
                          "<frame_start>", "<frame_end>"),
        ),
    )
}  # fmt: skip
