"""Qwen2-VL and Qwen2.5-VL (``Qwen/Qwen2-VL-7B-Instruct``, ``Qwen/Qwen2.5-VL-7B-Instruct``).

Images keep their native resolution, so each image has its own number of
image tokens and rows of a batch have prompts of different lengths; the
attention mask, and the processor's ``mm_token_type_ids`` from which the model
derives its 3-D (M-RoPE) positions, carry that through padding.
"""

from mmconcepts.models.base import LMMAdapter


class Qwen2VLAdapter(LMMAdapter):
    family = "qwen2_vl"
    image_first = True
    end_of_turn = ("<|im_end|>",)
    image_markup = ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")

    def model_class(self):
        from transformers import Qwen2VLForConditionalGeneration

        return Qwen2VLForConditionalGeneration


class Qwen25VLAdapter(Qwen2VLAdapter):
    family = "qwen2_5_vl"

    def model_class(self):
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration
