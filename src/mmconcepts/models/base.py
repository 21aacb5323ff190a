"""The one adapter every LMM family goes through, and the facts by which families differ.

A family is data (``Family``): which checkpoints it covers, where the image goes
in the user turn, the tokens that end a turn or mark up an image. The code that
loads, prompts and encodes is the same for all: ``AutoProcessor`` and the
checkpoint's chat template, the model class its config names. The parts the
pipeline reads are found through the model's structure, never through dotted
names (they change between ``transformers`` releases): the decoder is
``get_decoder()``, its blocks the ModuleList of ``num_hidden_layers`` modules,
the final norm its norm child, the unembedding ``get_output_embeddings()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Family:
    """What one family of checkpoints does differently; the adapter reads nothing else about it."""

    name: str
    # config.model_type of its checkpoints: a checkpoint of another family is named at load time.
    model_types: tuple[str, ...]
    # Where the image goes relative to the instruction in the user turn (as the family's model cards do).
    image_first: bool = True
    # Tokens that end the assistant's turn besides the tokenizer's EOS (e.g. <end_of_utterance>).
    end_of_turn: tuple[str, ...] = ()
    # Tokens of the image markup, besides the config's image token, that a caption must never contain.
    image_markup: tuple[str, ...] = ()
    # The processor pairs images with prompts through one list of images per prompt (Idefics, Gemma 3).
    image_lists: bool = False

    def load(self, path: str, *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False) -> LMMAdapter:
        import transformers

        if looks_local(path) and not Path(path).expanduser().exists():
            raise MMConceptsError(f"model path {path!r} does not exist")
        # trust_remote_code runs the Python code a checkpoint ships; only a model entry's explicit key turns it on.
        config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        if config.model_type not in self.model_types:
            raise MMConceptsError(
                f"{path} is a {config.model_type!r} checkpoint, not one of adapter {self.name!r} ({', '.join(self.model_types)})"
            )
        device_ = resolve_device(device)
        kwargs = {"dtype": resolve_dtype(dtype, device_), "trust_remote_code": trust_remote_code}
        if device_.type == "cuda":
            # accelerate places the weights straight on the GPU, without a full CPU copy.
            kwargs.update(device_map={"": device_.index or 0})
        model = transformers.AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        if device_.type != "cuda":
            model = model.to(device_)
        processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        return LMMAdapter(self, model.eval(), processor)

    def from_loaded(self, model, processor) -> LMMAdapter:
        """An adapter around a model already in memory (the tiny LLaVA's quality gate, during training)."""
        return LMMAdapter(self, model, processor)


def _find_parts(model) -> tuple[torch.nn.Module, torch.nn.ModuleList, torch.nn.Module, torch.nn.Module]:
    """The decoder, its blocks, its final norm and the unembedding; a part not found is named."""
    what = type(model).__name__
    decoder = model.get_decoder()
    if decoder is None or decoder is model:
        raise MMConceptsError(f"{what}: no language model found (get_decoder() gives none)")
    n = model.config.get_text_config().num_hidden_layers
    blocks = next((m for m in decoder.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n), None)
    if blocks is None:
        raise MMConceptsError(f"{what}: no decoder blocks found (no ModuleList of {n} blocks in {type(decoder).__name__})")
    # The final norm is the decoder's own norm, registered after its blocks.
    norms = [m for m in decoder.children() if type(m).__name__.lower().endswith("norm")]
    if not norms:
        raise MMConceptsError(f"{what}: no final norm found (no norm module directly under {type(decoder).__name__})")
    head = model.get_output_embeddings()
    if head is None:
        raise MMConceptsError(f"{what}: no unembedding found (get_output_embeddings() gives none)")
    return decoder, blocks, norms[-1], head


@dataclass(frozen=True)
class Encoder:
    """A family's processor call: images and one prompt -> CPU tensors. It holds no model, so a
    DataLoader worker can run it ahead of the model."""

    family: Family
    processor: object

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def __call__(self, images: list[Image.Image], prompt: str, *, padding_side: str) -> dict:
        batch = [[im] for im in images] if self.family.image_lists else images
        # A chat template that writes the BOS itself (Gemma 3, Idefics3) must not get a second one from the tokenizer.
        bos = self.tokenizer.bos_token
        specials = not (bos and prompt.startswith(bos))
        # The side is passed, not set on the tokenizer: some processors (InternVL) default to left padding.
        return dict(
            self.processor(
                images=batch, text=[prompt] * len(images), return_tensors="pt", padding=True, padding_side=padding_side,
                add_special_tokens=specials,
            )
        )  # fmt: skip


class LMMAdapter:
    """A loaded captioning LMM of some family, and the few parts the pipeline needs."""

    def __init__(self, family: Family, model, processor):
        self.family, self.model, self.processor = family, model, processor
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._decoder, self._blocks, self._norm, self._head = _find_parts(model)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    # -- prompts and inputs ----------------------------------------------------------
    def caption_prompt(self, instruction: str) -> str:
        """The chat-templated prompt that asks for a caption, ending where the answer starts."""
        text = {"type": "text", "text": instruction}
        image = {"type": "image"}
        content = [image, text] if self.family.image_first else [text, image]
        conversation = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True)

    def encoder(self) -> Encoder:
        """What turns images and a prompt into model inputs, without the model (for loader workers)."""
        return Encoder(self.family, self.processor)

    def to_device(self, inputs: dict) -> dict:
        """A batch's tensors on the model's device; from pinned memory the copies do not block."""
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in inputs.items()}

    def encode(self, images: list[Image.Image], prompt: str, *, padding_side: str) -> dict:
        """Processor inputs for a batch of images sharing one prompt, on the model's device."""
        return self.to_device(self.encoder()(images, prompt, padding_side=padding_side))

    # -- the modules the pipeline reads ------------------------------------------
    def language_model(self) -> torch.nn.Module:
        return self._decoder

    def decoder_layers(self) -> torch.nn.ModuleList:
        return self._blocks

    def final_norm(self) -> torch.nn.Module:
        return self._norm

    def unembedding(self) -> torch.nn.Module:
        return self._head

    @property
    def n_layers(self) -> int:
        return len(self._blocks)

    def image_token_id(self) -> int | None:
        config = self.model.config
        found = getattr(config, "image_token_id", None)
        return found if found is not None else getattr(config, "image_token_index", None)

    def token_ids(self, tokens: tuple[str, ...]) -> set[int]:
        """The ids of those tokens the vocabulary has (a checkpoint may lack an optional one)."""
        unk = self.tokenizer.unk_token_id
        ids = {self.tokenizer.convert_tokens_to_ids(t) for t in tokens}
        return {i for i in ids if i is not None and i != unk}

    def stop_token_ids(self) -> set[int]:
        """Tokens that end a caption: EOS, the family's end of turn, and the checkpoint's declared EOS ids."""
        ids = {self.tokenizer.eos_token_id, *self.token_ids(self.family.end_of_turn)}
        eos = self.model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
        return {i for i in ids if i is not None}

    def never_generated_ids(self) -> set[int]:
        """Image placeholder and markup tokens: a caption made of them would be read as an image."""
        ids = {self.image_token_id(), *self.token_ids(self.family.image_markup)}
        return {i for i in ids if i is not None}
