"""LLaVA-1.5 (``llava-hf/llava-1.5-*-hf``) and the shapes-world tiny LLaVA."""

from mmconcepts.models.base import LMMAdapter


class LlavaAdapter(LMMAdapter):
    family = "llava"
    image_first = True

    def model_class(self):
        from transformers import LlavaForConditionalGeneration

        return LlavaForConditionalGeneration
