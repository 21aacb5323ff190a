"""The interface every LMM family implements, and the parts most families share.

An adapter hides what differs between families: the model class, how the
captioning prompt is built, and where the decoder blocks, the final norm and
the unembedding live. Modules are found through the class structure
(``get_decoder()``, ``get_output_embeddings()``), never through dotted names,
which change between ``transformers`` releases.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image

from mmconcepts.device import resolve_device
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.paths import looks_local

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        # Half precision only pays off (and is only well supported) on GPUs.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise MMConceptsError(f"dtype {dtype!r} is not one of {sorted(DTYPES)} or 'auto'")
    return DTYPES[dtype]


class LMMAdapter:
    """Load a captioning LMM and expose the few parts the pipeline needs."""

    family: ClassVar[str]
    # Where the image placeholder goes relative to the instruction in the user turn.
    image_first: ClassVar[bool] = True
    # Tokens that end the assistant's turn besides the tokenizer's EOS (e.g. Idefics2's <end_of_utterance>).
    end_of_turn: ClassVar[tuple[str, ...]] = ()
    # Tokens of the image markup, besides the config's image token, that a caption must never contain.
    image_markup: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str, *, dtype: str = "auto", device: str = "auto"):
        if looks_local(path) and not Path(path).expanduser().exists():
            raise MMConceptsError(f"model path {path!r} does not exist")
        self.path = path
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.processor = self.load_processor(path)
        self.model = self.load_model(path).eval()

    @classmethod
    def from_loaded(cls, model, processor) -> "LMMAdapter":
        """An adapter around a model already in memory (the tiny LLaVA's quality gate, during training)."""
        self = cls.__new__(cls)
        self.path = None
        self.processor, self.model = processor, model
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        return self

    # -- loading ---------------------------------------------------------------------
    def load_processor(self, path: str):
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(path)

    def load_model(self, path: str):
        kwargs = {"dtype": self.dtype}
        if self.device.type == "cuda":
            # accelerate places the weights straight on the GPU, without a full CPU copy
            # (transformers 5 always loads on the meta device; low_cpu_mem_usage is gone).
            kwargs.update(device_map={"": self.device.index or 0})
        model = self.model_class().from_pretrained(path, **kwargs)
        return model if self.device.type == "cuda" else model.to(self.device)

    def model_class(self):
        raise NotImplementedError

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    # -- prompts and inputs ----------------------------------------------------------
    def caption_prompt(self, instruction: str) -> str:
        """The chat-templated prompt that asks for a caption, ending where the answer starts."""
        text = {"type": "text", "text": instruction}
        image = {"type": "image"}
        content = [image, text] if self.image_first else [text, image]
        conversation = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True)

    def encode(self, images: list[Image.Image], prompt: str, *, padding_side: str):
        """Processor inputs for a batch of images sharing one prompt, on the model's device."""
        self.tokenizer.padding_side = padding_side
        inputs = self.processor(
            images=self.prepare_images(images), text=[prompt] * len(images), return_tensors="pt", padding=True
        )
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}

    def prepare_images(self, images: list[Image.Image]):
        return images

    # -- the modules the pipeline reads ------------------------------------------
    def language_model(self) -> torch.nn.Module:
        return self.model.get_decoder()

    def decoder_layers(self) -> torch.nn.ModuleList:
        return self.language_model().layers

    def final_norm(self) -> torch.nn.Module:
        return self.language_model().norm

    def unembedding(self) -> torch.nn.Module:
        return self.model.get_output_embeddings()

    @property
    def n_layers(self) -> int:
        return len(self.decoder_layers())

    def image_token_id(self) -> int | None:
        return getattr(self.model.config, "image_token_id", None) or getattr(self.model.config, "image_token_index", None)

    def _token_ids(self, tokens: tuple[str, ...]) -> set[int]:
        unk = self.tokenizer.unk_token_id
        ids = {self.tokenizer.convert_tokens_to_ids(t) for t in tokens}
        return {i for i in ids if i is not None and i != unk}

    def stop_token_ids(self) -> set[int]:
        """Tokens that end a caption: EOS, the family's end of turn, and the checkpoint's declared EOS ids."""
        ids = {self.tokenizer.eos_token_id, *self._token_ids(self.end_of_turn)}
        eos = self.model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
        return {i for i in ids if i is not None}

    def never_generated_ids(self) -> set[int]:
        """Image placeholder and markup tokens: a caption made of them would be read as an image."""
        ids = {self.image_token_id(), *self._token_ids(self.image_markup)}
        return {i for i in ids if i is not None}
