"""Tiny random-weight checkpoints of the real LMM classes, built offline.

Each builder writes a folder that looks like a hub checkpoint of its family:
the real ``transformers`` model class with a few small layers, the family's
real processor and image processor classes, a tokenizer trained here with the
``tokenizers`` library (SentencePiece-like for the Llama/Mistral families,
byte-level BPE for Qwen), the family's special tokens and a chat template with
the structure of the real one. Adapters then load it by path like a download.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

CORPUS = [
    "a red circle on a blue background",
    "two small green squares next to a large yellow triangle",
    "a dog sitting on the grass in a park",
    "a man riding a horse along the beach at sunset",
    "a plate of food with rice and vegetables on a wooden table",
    "a cat sleeping on a bed near the window",
    "Provide a one-sentence caption for the provided image.",
    "USER: ASSISTANT: User: Assistant: system user assistant You are a helpful assistant.",
]
LAYERS = 3
HIDDEN = 32


def train_tokenizer(style: str, specials: list[str], bos: str | None = None):
    """A small BPE tokenizer; ``metaspace`` mimics SentencePiece (``▁`` word starts), ``bytelevel`` GPT-2/Qwen."""
    from transformers import PreTrainedTokenizerFast

    if style == "metaspace":
        tok = Tokenizer(models.BPE(unk_token=specials[0]))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        alphabet = list(string.printable) + ["▁"]
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        # Byte-level spends 256 ids on its alphabet before the first merge.
        vocab_size=320 if style == "metaspace" else 600, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    if bos is not None:
        # Llama-style tokenizers prepend BOS to every encoded text.
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def _finish(model, processor, out: Path, eos: int | list[int], pad: int) -> Path:
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _seeded(cls, config):
    torch.manual_seed(0)
    return cls(config).eval()


# -- LLaVA-1.5: Llama text model, CLIP vision tower, text before image tokens -------------------
LLAVA_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() + ': ' }}"
    "{% for c in m['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def build_llava(out: Path, hidden: int = HIDDEN, layers: int = LAYERS, image_size: int = 32) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    tok = train_tokenizer("metaspace", ["<unk>", "<s>", "</s>", "<image>", "<pad>"], bos="<s>")
    tok.add_special_tokens({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"})
    ids = tok.convert_tokens_to_ids
    vision = CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=2,
        image_size=image_size, patch_size=8,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2,
        bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"),
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=ids("<image>"), vision_feature_layer=-2,
        vision_feature_select_strategy="default", pad_token_id=ids("<pad>"),
    )  # fmt: skip
    crop = {"height": image_size, "width": image_size}
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=crop)
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE,
    )  # fmt: skip
    return _finish(_seeded(LlavaForConditionalGeneration, config), processor, out, ids("</s>"), ids("<pad>"))


def llava_image_tokens(config) -> int:
    """(image_size / patch)^2 patches; the CLS token is dropped by the ``default`` strategy."""
    return (config.vision_config.image_size // config.vision_config.patch_size) ** 2


# -- Idefics2: Mistral text model, SigLIP-like vision + perceiver resampler, image first ----------
IDEFICS2_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].capitalize() }}"
    "{% if m['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for c in m['content'] %}"
    "{% if c['type'] == 'text' %}{{ c['text'] }}{% else %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_idefics2(out: Path) -> Path:
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2ImageProcessor
    from transformers import Idefics2Processor, MistralConfig

    specials = ["<unk>", "<s>", "</s>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"]
    tok = train_tokenizer("metaspace", specials, bos="<s>")
    tok.add_special_tokens({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>"})
    ids = tok.convert_tokens_to_ids
    text = MistralConfig(
        vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=2,
        bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<unk>"),
    )  # fmt: skip
    config = Idefics2Config(
        vision_config=dict(
            hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=32, patch_size=8,
        ),
        perceiver_config=dict(
            hidden_size=HIDDEN, resampler_n_latents=4, resampler_depth=1, resampler_n_heads=2,
            resampler_head_dim=8, num_key_value_heads=1,
        ),
        text_config=text, image_token_id=ids("<image>"),
    )  # fmt: skip
    image_processor = Idefics2ImageProcessor(size={"shortest_edge": 16, "longest_edge": 32}, do_image_splitting=False)
    processor = Idefics2Processor(
        image_processor=image_processor, tokenizer=tok, image_seq_len=4, chat_template=IDEFICS2_TEMPLATE
    )
    # Like the real checkpoint, its generation_config names only </s>: that the turn ends at
    # <end_of_utterance> is the adapter's knowledge.
    return _finish(_seeded(Idefics2ForConditionalGeneration, config), processor, out, ids("</s>"), ids("<unk>"))


def idefics2_image_tokens(config, processor) -> int:
    """The perceiver's latents per image, times 5 when the processor splits an image into 4 crops + itself."""
    return config.perceiver_config.resampler_n_latents * (5 if processor.image_processor.do_image_splitting else 1)


# -- Qwen2-VL / Qwen2.5-VL: Qwen2 text model with M-RoPE, native-resolution vision, image first ---
QWEN_TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_SPECIALS += ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# Native resolution: a 56x56 image gives 2x2 merged tokens, 112x84 gives 4x3.
QWEN_PIXELS = {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}


def build_qwen(out: Path, version: str = "2") -> Path:
    import transformers as tf

    tok = train_tokenizer("bytelevel", QWEN_SPECIALS)
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    ids = tok.convert_tokens_to_ids
    # head_dim = 32 / 2 = 16: M-RoPE splits its 8 frequency pairs over (time, height, width).
    text = dict(
        vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=2, num_key_value_heads=1,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
    )  # fmt: skip
    if version == "2":
        vision = dict(depth=2, embed_dim=HIDDEN, hidden_size=HIDDEN, num_heads=2, mlp_ratio=2)
        config_cls, model_cls, processor_cls = tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
    else:
        vision = dict(
            depth=2, hidden_size=HIDDEN, out_hidden_size=HIDDEN, intermediate_size=64, num_heads=2,
            fullatt_block_indexes=[1],
        )  # fmt: skip
        config_cls, model_cls = tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration
        processor_cls = tf.Qwen2_5_VLProcessor
    config = config_cls(
        text_config=text, vision_config=vision,
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip
    processor = processor_cls(
        image_processor=tf.Qwen2VLImageProcessor(size=QWEN_PIXELS), tokenizer=tok,
        video_processor=tf.Qwen2VLVideoProcessor(size=QWEN_PIXELS), chat_template=QWEN_TEMPLATE,
    )  # fmt: skip
    eos = [ids("<|im_end|>"), ids("<|endoftext|>")]
    return _finish(_seeded(model_cls, config), processor, out, eos, ids("<|endoftext|>"))


def qwen_image_tokens(config, image_grid_thw) -> list[int]:
    """Per image: its t*h*w patches, merged spatial_merge_size^2 into one token."""
    merge = config.vision_config.spatial_merge_size
    return [int(g.prod()) // merge**2 for g in image_grid_thw]


BUILDERS = {
    "llava": build_llava,
    "idefics2": build_idefics2,
    "qwen2_vl": lambda out: build_qwen(out, "2"),
    "qwen2_5_vl": lambda out: build_qwen(out, "2.5"),
}
