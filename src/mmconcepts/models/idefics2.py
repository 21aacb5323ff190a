"""Idefics2 (``HuggingFaceM4/idefics2-8b``): Mistral text model behind a perceiver resampler."""

from mmconcepts.models.base import LMMAdapter


class Idefics2Adapter(LMMAdapter):
    family = "idefics2"
    image_first = True
    end_of_turn = ("<end_of_utterance>",)
    image_markup = ("<fake_token_around_image>",)

    def model_class(self):
        from transformers import Idefics2ForConditionalGeneration

        return Idefics2ForConditionalGeneration

    def prepare_images(self, images):
        # The processor pairs images with prompts through one list of images per prompt.
        return [[im] for im in images]
