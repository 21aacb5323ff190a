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


def train_tokenizer(style: str, specials: list[str], bos: str | None = None, named: dict[str, str] | None = None):
    """A small BPE tokenizer; ``metaspace`` mimics SentencePiece (``▁`` word starts), ``bytelevel`` GPT-2/Qwen.

    ``named``: special tokens a processor reads by attribute (Gemma 3's ``boi_token``, InternVL's ``context_image_token``).
    """
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
    return PreTrainedTokenizerFast(tokenizer_object=tok, extra_special_tokens=named or {})


def _finish(model, processor, out: Path, eos: int | list[int], pad: int) -> Path:
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _seeded(cls, config):
    torch.manual_seed(0)
    return cls(config).eval()


def vision_dims() -> dict:
    """A two-layer vision tower as wide as the text model."""
    return {"hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": 2, "num_attention_heads": 2}


def clip_vision(image_size: int = 32):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(**vision_dims(), image_size=image_size, patch_size=8)


def llama_text(tok, bos: str, eos: str, pad: str, layers: int = LAYERS) -> dict:
    """Llama/Mistral text settings: 4 heads of 8, grouped in 2 key-value heads."""
    ids = tok.convert_tokens_to_ids
    return {
        "vocab_size": len(tok), "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": layers,
        "num_attention_heads": 4, "num_key_value_heads": 2, "bos_token_id": ids(bos), "eos_token_id": ids(eos), "pad_token_id": ids(pad),
    }  # fmt: skip


def qwen_text(tok) -> dict:
    """Qwen2/3 text settings, byte-level tokenizer with <|endoftext|> as BOS and pad and <|im_end|> as EOS."""
    ids = tok.convert_tokens_to_ids
    return {
        "vocab_size": len(tok), "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": 2, "num_key_value_heads": 1,
        "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"), "pad_token_id": ids("<|endoftext|>"),
    }  # fmt: skip


# -- LLaVA-1.5: Llama text model, CLIP vision tower, text before image tokens -------------------
LLAVA_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() + ': ' }}"
    "{% for c in m['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def build_llava(out: Path, hidden: int = HIDDEN, layers: int = LAYERS, image_size: int = 32) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

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
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2ImageProcessor, Idefics2Processor, MistralConfig

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
        vision_config={
            "hidden_size": HIDDEN, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": 32, "patch_size": 8,
        },
        perceiver_config={
            "hidden_size": HIDDEN, "resampler_n_latents": 4, "resampler_depth": 1, "resampler_n_heads": 2,
            "resampler_head_dim": 8, "num_key_value_heads": 1,
        },
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
    text = {
        "vocab_size": len(tok), "hidden_size": HIDDEN, "intermediate_size": 64, "num_hidden_layers": LAYERS,
        "num_attention_heads": 2, "num_key_value_heads": 1,
        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
        "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"), "pad_token_id": ids("<|endoftext|>"),
    }  # fmt: skip
    video_processor = tf.Qwen2VLVideoProcessor(size=QWEN_PIXELS)
    if version == "2":
        vision = {"depth": 2, "embed_dim": HIDDEN, "hidden_size": HIDDEN, "num_heads": 2, "mlp_ratio": 2}
        config_cls, model_cls, processor_cls = tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
    elif version == "3":
        # 16-pixel patches (merged 32 pixels a token); block 1's visual features are also added to the text's block 1
        # (DeepStack); M-RoPE's sections interleave.
        text.update(head_dim=16, rope_parameters={**text["rope_parameters"], "mrope_interleaved": True})
        vision = {
            "depth": 2, "hidden_size": HIDDEN, "out_hidden_size": HIDDEN, "intermediate_size": 64, "num_heads": 2, "patch_size": 16,
            "num_position_embeddings": 16, "deepstack_visual_indexes": [0],
        }  # fmt: skip
        config_cls, model_cls, processor_cls = tf.Qwen3VLConfig, tf.Qwen3VLForConditionalGeneration, tf.Qwen3VLProcessor
        video_processor = tf.Qwen3VLVideoProcessor(size=QWEN_PIXELS, patch_size=16)
    else:
        vision = {
            "depth": 2, "hidden_size": HIDDEN, "out_hidden_size": HIDDEN, "intermediate_size": 64, "num_heads": 2,
            "fullatt_block_indexes": [1],
        }  # fmt: skip
        config_cls, model_cls = tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration
        processor_cls = tf.Qwen2_5_VLProcessor
    config = config_cls(
        text_config=text, vision_config=vision,
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip
    processor = processor_cls(
        image_processor=tf.Qwen2VLImageProcessor(size=QWEN_PIXELS, patch_size=vision.get("patch_size", 14)), tokenizer=tok,
        video_processor=video_processor, chat_template=QWEN_TEMPLATE,
    )  # fmt: skip
    eos = [ids("<|im_end|>"), ids("<|endoftext|>")]
    return _finish(_seeded(model_cls, config), processor, out, eos, ids("<|endoftext|>"))


def qwen_image_tokens(config, image_grid_thw) -> list[int]:
    """Per image: its t*h*w patches, merged spatial_merge_size^2 into one token."""
    merge = config.vision_config.spatial_merge_size
    return [int(g.prod()) // merge**2 for g in image_grid_thw]


# -- LLaVA-NeXT: LLaVA-1.5 with any-resolution tiles, Mistral-style [INST] turns --------------
LLAVA_NEXT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for c in m['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}{{ ' [/INST]' }}"
    "{% else %}{{ m['content'][0]['text'] + '</s>' }}{% endif %}{% endfor %}"
)
# Tiles of 32 pixels: a wide or tall image gets two tiles besides its thumbnail, a square one one.
PINPOINTS = [[32, 32], [32, 64], [64, 32]]


def build_llava_next(out: Path) -> Path:
    import transformers as tf

    tok = train_tokenizer("metaspace", ["<unk>", "<s>", "</s>", "<image>", "<pad>"], bos="<s>")
    tok.add_special_tokens({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"})
    ids = tok.convert_tokens_to_ids
    config = tf.LlavaNextConfig(
        vision_config=clip_vision(), text_config=tf.MistralConfig(**llama_text(tok, "<s>", "</s>", "<pad>")),
        image_token_index=ids("<image>"), image_grid_pinpoints=PINPOINTS, pad_token_id=ids("<pad>"),
    )  # fmt: skip
    image_processor = tf.LlavaNextImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=PINPOINTS
    )
    processor = tf.LlavaNextProcessor(
        image_processor=image_processor, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=LLAVA_NEXT_TEMPLATE,
    )  # fmt: skip
    return _finish(_seeded(tf.LlavaNextForConditionalGeneration, config), processor, out, ids("</s>"), ids("<pad>"))


# -- LLaVA-OneVision: Qwen2 text model, SigLIP tiles, Qwen chat turns -----------------------
ONEVISION_TEMPLATE = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n")


def build_llava_onevision(out: Path) -> Path:
    import transformers as tf

    tok = train_tokenizer("bytelevel", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"])
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    ids = tok.convert_tokens_to_ids
    text = tf.Qwen2Config(**qwen_text(tok))
    config = tf.LlavaOnevisionConfig(
        vision_config=tf.SiglipVisionConfig(**vision_dims(), image_size=32, patch_size=8), text_config=text,
        image_token_index=ids("<image>"), video_token_index=ids("<video>"), image_grid_pinpoints=PINPOINTS,
        vision_aspect_ratio="anyres_max_9",
    )  # fmt: skip
    image_processor = tf.LlavaOnevisionImageProcessor(size={"height": 32, "width": 32}, image_grid_pinpoints=PINPOINTS)
    processor = tf.LlavaOnevisionProcessor(
        image_processor=image_processor, tokenizer=tok, video_processor=tf.LlavaOnevisionVideoProcessor(),
        num_image_tokens=16, vision_feature_select_strategy="full", chat_template=ONEVISION_TEMPLATE,
    )  # fmt: skip
    eos = [ids("<|im_end|>"), ids("<|endoftext|>")]
    return _finish(_seeded(tf.LlavaOnevisionForConditionalGeneration, config), processor, out, eos, ids("<|endoftext|>"))



# -- Idefics3 / SmolVLM: Llama 3 text model, SigLIP + pixel shuffle, Idefics2's turns -------------
IDEFICS3_TEMPLATE = "<|begin_of_text|>" + IDEFICS2_TEMPLATE


def build_idefics3(out: Path) -> Path:
    import transformers as tf

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>",
                "<global-img>"]  # fmt: skip
    tok = train_tokenizer("bytelevel", specials, bos="<|begin_of_text|>")
    tok.add_special_tokens({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|end_of_text|>"})
    ids = tok.convert_tokens_to_ids
    text = tf.LlamaConfig(**llama_text(tok, "<|begin_of_text|>", "<|end_of_text|>", "<|end_of_text|>"))
    # 32-pixel images in 8-pixel patches: 16 patches, shuffled 2x2 into 4 image tokens.
    config = tf.Idefics3Config(
        vision_config=dict(**vision_dims(), image_size=32, patch_size=8), text_config=text,
        image_token_id=ids("<image>"), scale_factor=2,
    )  # fmt: skip
    image_processor = tf.Idefics3ImageProcessor(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    processor = tf.Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=4, chat_template=IDEFICS3_TEMPLATE)
    # As in Idefics2, that the turn ends at <end_of_utterance> is the adapter's knowledge.
    return _finish(_seeded(tf.Idefics3ForConditionalGeneration, config), processor, out, ids("<|end_of_text|>"), ids("<|end_of_text|>"))


# -- Gemma 3: Gemma 3 text model, SigLIP pooled to a fixed number of tokens, bidirectional over the image ---
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<start_of_image>' }}{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{{ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def build_gemma3(out: Path) -> Path:
    import transformers as tf

    image_tokens = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    specials = ["<unk>", "<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", *image_tokens.values()]
    tok = train_tokenizer("metaspace", specials, bos="<bos>", named=image_tokens)
    tok.add_special_tokens({"unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"})
    ids = tok.convert_tokens_to_ids
    # Alternating sliding-window and full layers, as the real model; the window is shorter than a prompt.
    text = tf.Gemma3TextConfig(
        **llama_text(tok, "<bos>", "<eos>", "<pad>"), head_dim=8, query_pre_attn_scalar=8, sliding_window=16,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    )  # fmt: skip
    config = tf.Gemma3Config(
        text_config=text, vision_config=tf.SiglipVisionConfig(**vision_dims(), image_size=32, patch_size=8),
        mm_tokens_per_image=4, boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )  # fmt: skip
    image_processor = tf.Gemma3ImageProcessor(size={"height": 32, "width": 32}, do_pan_and_scan=False)
    processor = tf.Gemma3Processor(image_processor=image_processor, tokenizer=tok, image_seq_length=4, chat_template=GEMMA3_TEMPLATE)
    # Like gemma-3-*-it, whose generation_config names <end_of_turn> besides <eos>.
    eos = [ids("<eos>"), ids("<end_of_turn>")]
    return _finish(_seeded(tf.Gemma3ForConditionalGeneration, config), processor, out, eos, ids("<pad>"))


# -- InternVL (the -hf checkpoints): Qwen2 text model, InternViT + pixel shuffle, Qwen chat turns -----
INTERNVL_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_internvl(out: Path) -> Path:
    import transformers as tf

    image_tokens = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                    "video_token": "<video>"}  # fmt: skip
    tok = train_tokenizer("bytelevel", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *image_tokens.values()], named=image_tokens)
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    ids = tok.convert_tokens_to_ids
    # 32-pixel tiles of 8-pixel patches: 16 patches, shuffled 2x2 into 4 image tokens.
    config = tf.InternVLConfig(
        vision_config=tf.InternVLVisionConfig(**vision_dims(), image_size=32, patch_size=8),
        text_config=tf.Qwen2Config(**qwen_text(tok)), image_token_id=ids("<IMG_CONTEXT>"), image_seq_length=4,
        tie_word_embeddings=False,
    )  # fmt: skip
    processor = tf.InternVLProcessor(
        image_processor=tf.GotOcr2ImageProcessor(size={"height": 32, "width": 32}, crop_to_patches=False), tokenizer=tok,
        video_processor=tf.InternVLVideoProcessor(size={"height": 32, "width": 32}), image_seq_length=4,
        chat_template=INTERNVL_TEMPLATE,
    )  # fmt: skip
    eos = [ids("<|im_end|>"), ids("<|endoftext|>")]
    return _finish(_seeded(tf.InternVLForConditionalGeneration, config), processor, out, eos, ids("<|endoftext|>"))


# -- Mistral 3 (Mistral Small 3.1): Mistral text model, Pixtral vision with row breaks, [INST] turns, text first --
MISTRAL3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST]' }}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '[IMG]' }}{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{{ '[/INST]' }}{% else %}{{ m['content'][0]['text'] + eos_token }}{% endif %}{% endfor %}"
)


def build_mistral3(out: Path) -> Path:
    import transformers as tf

    specials = ["<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]"]
    tok = train_tokenizer("bytelevel", specials, bos="<s>")
    tok.add_special_tokens({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"})
    ids = tok.convert_tokens_to_ids
    # Native resolution in 8-pixel patches merged 2x2: a 56x56 image is 3x3 tokens, rows ended by [IMG_BREAK].
    config = tf.Mistral3Config(
        vision_config=tf.PixtralVisionConfig(**vision_dims(), image_size=64, patch_size=8),
        text_config=tf.MistralConfig(**llama_text(tok, "<s>", "</s>", "<pad>")), image_token_index=ids("[IMG]"),
        spatial_merge_size=2, tie_word_embeddings=False,
    )  # fmt: skip
    image_processor = tf.PixtralImageProcessor(size={"longest_edge": 64}, patch_size=8)
    processor = tf.PixtralProcessor(
        image_processor=image_processor, tokenizer=tok, patch_size=8, spatial_merge_size=2, chat_template=MISTRAL3_TEMPLATE
    )
    return _finish(_seeded(tf.Mistral3ForConditionalGeneration, config), processor, out, ids("</s>"), ids("<pad>"))


# -- Molmo2: Qwen3-like text model, SigLIP crops pooled 2x2, image markup tokens around rows ----------------
MOLMO2_TEMPLATE = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>\n", "<|image|>")
MOLMO2_IMAGE_TOKENS = ["<|image|>", "<|video|>", "<im_patch>", "<im_col>", "<im_start>", "<low_res_im_start>", "<frame_start>",
                       "<im_end>", "<frame_end>", "<im_low>"]  # fmt: skip


def build_molmo2(out: Path) -> Path:
    import transformers as tf

    tok = train_tokenizer("bytelevel", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *MOLMO2_IMAGE_TOKENS])
    tok.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    ids = tok.convert_tokens_to_ids
    text = tf.Molmo2TextConfig(**qwen_text(tok), head_dim=16, additional_vocab_size=0)
    # 56-pixel crops of 14-pixel patches (4x4), pooled 2x2; one low-resolution view and at most two crops.
    config = tf.Molmo2Config(
        text_config=text, vision_config=dict(**vision_dims(), num_key_value_heads=2, head_dim=16, image_size=[56, 56], patch_size=14),
        adapter_config={"vision_feature_layer": [-1], "hidden_size": HIDDEN, "num_attention_heads": 2, "num_key_value_heads": 2,
                            "head_dim": 16, "intermediate_size": 2 * HIDDEN, "text_hidden_size": HIDDEN},
        image_start_token_id=ids("<im_start>"), low_res_image_start_token_id=ids("<low_res_im_start>"),
        image_end_token_id=ids("<im_end>"), image_patch_id=ids("<im_patch>"), frame_start_token_id=ids("<frame_start>"),
        frame_end_token_id=ids("<frame_end>"),
    )  # fmt: skip
    image_processor = tf.Molmo2ImageProcessor(size={"height": 56, "width": 56}, max_crops=2, overlap_margins=[1, 1])
    processor = tf.Molmo2Processor(
        image_processor=image_processor, video_processor=tf.Molmo2VideoProcessor(), tokenizer=tok, chat_template=MOLMO2_TEMPLATE
    )
    eos = [ids("<|im_end|>"), ids("<|endoftext|>")]
    return _finish(_seeded(tf.Molmo2ForConditionalGeneration, config), processor, out, eos, ids("<|endoftext|>"))


BUILDERS = {
    "llava": build_llava,
    "idefics2": build_idefics2,
    "qwen2_vl": lambda out: build_qwen(out, "2"),
    "qwen2_5_vl": lambda out: build_qwen(out, "2.5"),
    "llava_next": build_llava_next,
    "llava_onevision": build_llava_onevision,
    "idefics3": build_idefics3,
    "qwen3_vl": lambda out: build_qwen(out, "3"),
    "gemma3": build_gemma3,
    "internvl": build_internvl,
    "mistral3": build_mistral3,
    "molmo2": build_molmo2,
}


_BUILT: dict[str, Path] = {}


def checkpoint(family: str, tmp_path_factory) -> Path:
    """The family's tiny checkpoint, built once per test session whichever test module asks first."""
    if family not in _BUILT:
        _BUILT[family] = BUILDERS[family](tmp_path_factory.mktemp(family) / "model")
    return _BUILT[family]
