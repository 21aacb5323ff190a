"""A tiny LLaVA-1.5 trained to caption a generated world, saved like ``llava-hf/llava-1.5-7b-hf``.

The model is a genuine ``LlavaForConditionalGeneration`` (CLIP vision tower, Llama
decoder) with a byte-level BPE tokenizer trained on the world's captions and a
``LlavaProcessor`` whose chat template gives LLaVA-1.5 prompts
(``USER: <image>\\n{text} ASSISTANT:``). ``AutoProcessor.from_pretrained`` and
``LlavaForConditionalGeneration.from_pretrained`` load the output folder, so the
pipeline serves it through exactly the code path of the real checkpoints.

Training has LLaVA's two parts. The real LLaVA starts from a pretrained CLIP vision
tower; ours is pretrained first, on the same world: it learns to predict which words
the image's captions contain, from its patch features max-pooled over the image.
Then, with the vision tower frozen (as in LLaVA-1.5), projector and language model
learn captioning: prompt + " " + caption + ``</s>``, with the loss on the caption
and ``</s>`` only, one random ground-truth caption per image per step. Last, they
learn the world's VQA questions under LLaVA-1.5's short-answer instruction, a batch
of questions beside a batch of captions per step.

Why, measured on the default world (shape named right after 800 captioning steps):
trained end to end from scratch, the model learns colours, sizes and backgrounds
within a few hundred steps but still guesses shapes (~20%, chance is 17%); with
the pretrained, frozen tower 60%; adding a larger initialisation of the language
model (``text_init_std`` 0.06 instead of transformers' 0.02), which lets it learn
sooner where in the image to look, 95%.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmconcepts.atomic import atomic_path
from mmconcepts.data.karpathy import factors_of, load_karpathy
from mmconcepts.device import set_threads
from mmconcepts.errors import MMConceptsError
from mmconcepts.models.families import FAMILIES
from mmconcepts.models.generation import ANSWER_TOKENS, greedy_generate, greedy_texts, vqa_instruction
from mmconcepts.shapes.caption_quality import caption_quality
from mmconcepts.shapes.llava_settings import LMM_DEFAULTS
from mmconcepts.shapes.params import merge_params
from mmconcepts.shapes.training import batch_order, warmup_cosine, world_split
from mmconcepts.shapes.vqa import world_questions
from mmconcepts.steering.vqa_metrics import accuracy_by_type

PAD, BOS, EOS, IMAGE = "<pad>", "<s>", "</s>", "<image>"
IGNORE = -100  # label of positions that carry no loss

# LLaVA-1.5's conversation format: "USER: <image>\n{text} ASSISTANT:" (images first).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ message['role'] | upper ~ ': ' }}"
    "{%- if message['content'] is string -%}{{ message['content'] ~ ' ' }}"
    "{%- else -%}"
    "{%- for part in message['content'] if part['type'] == 'image' -%}{{ '<image>\n' }}{%- endfor -%}"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{ part['text'] ~ ' ' }}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)



# -- tokenizer, processor, model ------------------------------------------------------------
def build_tokenizer(captions: list[str], prompts: list[str], max_vocab: int):
    """Byte-level BPE trained on the captions and answers (as they follow "ASSISTANT:") and the prompts.

    Every caption and answer word must end up as one token, as most words are in real
    LMM vocabularies; a ``max_vocab`` too small for that is an error.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max_vocab,
        special_tokens=[PAD, BOS, EOS, IMAGE],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Prompts are repeated so that their words merge like the captions' do.
    tok.train_from_iterator([" " + c for c in captions] + [f"USER: \n{prompt} ASSISTANT:" for prompt in prompts] * 100, trainer)
    # Offsets without the leading space; <s> first, like Llama's tokenizer.
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=True),
            processors.TemplateProcessing(
                single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
            ),
        ]
    )
    words = sorted({w for c in captions for w in re.findall(r"[^\s.,]+", c)})
    split = [w for w in words if len(tok.encode(" " + w, add_special_tokens=False).ids) != 1]
    if split:
        raise MMConceptsError(f"train_lmm: max_vocab = {max_vocab} leaves caption words in pieces, e.g. {split[:5]}")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, extra_special_tokens={"image_token": IMAGE}
    )


def build_processor(tokenizer, image_size: int, patch_size: int):
    from transformers import CLIPImageProcessor, LlavaProcessor

    if image_size % patch_size:
        raise MMConceptsError(f"train_lmm: patch_size {patch_size} does not divide the world's image size {image_size}")
    images = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    # num_additional_image_tokens=1 with the "default" strategy: the CLS token is dropped, one token per patch.
    return LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer, image_size: int, p: dict):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    n_patches = (image_size // p["patch_size"]) ** 2
    vision = CLIPVisionConfig(
        image_size=image_size,
        patch_size=p["patch_size"],
        hidden_size=p["vision_width"],
        intermediate_size=2 * p["vision_width"],
        num_hidden_layers=p["vision_layers"],
        num_attention_heads=p["vision_heads"],
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=p["text_width"],
        intermediate_size=p["text_mlp"],
        num_hidden_layers=p["text_layers"],
        num_attention_heads=p["text_heads"],
        num_key_value_heads=p["text_heads"],
        max_position_embeddings=4 * (n_patches + 64),  # image tokens, prompt and caption, with room to spare
        initializer_range=p["text_init_std"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        image_seq_length=n_patches,
        # The vision tower is tiny: use its last layer (LLaVA-1.5 uses the penultimate of 24).
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    gen.do_sample = False
    return model


# -- training data ------------------------------------------------------------------------
class CaptionData:
    """Pixel values of the training images and token ids of prompt and captions, ready to batch."""

    def __init__(self, processor, images, samples, prompt: str, chunk: int = 500):
        tok = processor.tokenizer
        chunks = [images[i : i + chunk] for i in range(0, len(images), chunk)]
        self.pixels = torch.cat([processor.image_processor(c, return_tensors="pt")["pixel_values"] for c in chunks])
        self.prompt_ids = processor(images=images[:1], text=[prompt], return_tensors="pt")["input_ids"][0].tolist()
        self.captions = [
            [ids + [tok.eos_token_id] for ids in tok([" " + c for c in s.captions], add_special_tokens=False)["input_ids"]]
            for s in samples
        ]
        self.pad_id = tok.pad_token_id
        self._tower_features = None
        # The concatenation must be what the processor makes of the whole text, or training and inference differ.
        whole = processor(images=images[:1], text=[f"{prompt} {samples[0].captions[0]}"], return_tensors="pt")["input_ids"][0]
        if whole.tolist() != self.prompt_ids + self.captions[0][0][:-1]:
            raise MMConceptsError("train_lmm: prompt and caption tokens do not concatenate like the processor's")

    def tower_features(self, model) -> torch.Tensor:
        """The frozen vision tower's features of every image, computed on first use (parts 2 and 3 share them)."""
        if self._tower_features is None:
            self._tower_features = frozen_vision_features(model, self.pixels)
        return self._tower_features

    def batch(self, indices: list[int], caption_choice: np.ndarray) -> dict:
        seqs = [self.captions[i][c % len(self.captions[i])] for i, c in zip(indices, caption_choice)]
        n_prompt, width = len(self.prompt_ids), len(self.prompt_ids) + max(map(len, seqs))
        input_ids = torch.full((len(seqs), width), self.pad_id)
        labels = torch.full((len(seqs), width), IGNORE)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, cap in enumerate(seqs):
            end = n_prompt + len(cap)
            input_ids[row, :end] = torch.tensor(self.prompt_ids + cap)
            labels[row, n_prompt:end] = torch.tensor(cap)
            attention[row, :end] = 1
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "image_rows": list(indices)}


class QuestionData:
    """VQA rows (image, its question's prompt, the answer); an image is its row in the ``CaptionData``.

    Each question has its own prompt (LLaVA-1.5's: the question, then the short-answer
    instruction); prompts are tokenised once per distinct question. Rows are right-padded:
    the loss is on the answer and ``</s>`` only.
    """

    def __init__(self, processor, adapter, image_rows: dict[str, int], questions, images):
        tok = processor.tokenizer
        self.pad_id = tok.pad_token_id
        prompt_ids: dict[str, list[int]] = {}
        self.rows = []
        for q in questions:
            prompt = adapter.caption_prompt(vqa_instruction(q.question))
            if prompt not in prompt_ids:
                prompt_ids[prompt] = processor(images=images[:1], text=[prompt], return_tensors="pt")["input_ids"][0].tolist()
            answer = tok(" " + q.multiple_choice_answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            self.rows.append((image_rows[q.image_id], prompt_ids[prompt], answer))

    def batch(self, indices: list[int]) -> dict:
        rows = [self.rows[i] for i in indices]
        width = max(len(p) + len(a) for _, p, a in rows)
        input_ids = torch.full((len(rows), width), self.pad_id)
        labels = torch.full((len(rows), width), IGNORE)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (_, prompt, answer) in enumerate(rows):
            end = len(prompt) + len(answer)
            input_ids[r, :end] = torch.tensor(prompt + answer)
            labels[r, len(prompt) : end] = torch.tensor(answer)
            attention[r, :end] = 1
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "image_rows": [image for image, _, _ in rows]}


def vision_tower(model) -> torch.nn.Module:
    from transformers import CLIPVisionModel

    return next(m for m in model.modules() if isinstance(m, CLIPVisionModel))


def pretrain_vision(model, data: CaptionData, p: dict, rng: np.random.Generator) -> list[float]:
    """Part 1: the vision tower learns which words an image's captions contain.

    Multi-label over the vocabulary, from the features the projector will read
    (layer ``vision_feature_layer``, CLS dropped), max-pooled over patches: max
    pooling lets small objects speak as loudly as the background.
    """
    tower = vision_tower(model)
    layer = model.config.vision_feature_layer
    vocab = model.config.text_config.vocab_size
    words = torch.zeros(len(data.captions), vocab)
    for i, caps in enumerate(data.captions):
        for ids in caps:
            words[i, ids[:-1]] = 1  # not </s>
    head = torch.nn.Linear(tower.config.hidden_size, vocab)
    optimizer = torch.optim.AdamW([*tower.parameters(), *head.parameters()], lr=p["vision_lr"], weight_decay=p["weight_decay"])
    tower.train()
    losses = []
    order = batch_order(rng, len(data.captions), p["vision_batch_size"], p["vision_steps"])
    bar = tqdm(order, total=p["vision_steps"], desc="pretrain vision", mininterval=5)
    for indices in bar:
        patches = tower(data.pixels[indices], output_hidden_states=True).hidden_states[layer][:, 1:]
        logits = head(patches.max(dim=1).values)
        loss = F.binary_cross_entropy_with_logits(logits, words[indices], reduction="sum") / len(indices)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
    tower.requires_grad_(False)
    return losses


@torch.no_grad()
def frozen_vision_features(model, pixels: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """What the projector reads of every image (the vision tower's selected features), computed once.

    Parts 2 and 3 and the fine-tunes keep the tower frozen, so its output never changes: running it
    again at every step cost about a tenth of a step. The features are read at the projector's
    input, so that the library's own layer selection (``vision_feature_layer``, CLS dropped) applies.
    """
    if any(t.requires_grad for t in vision_tower(model).parameters()):
        raise MMConceptsError("train_lmm: the vision tower must be frozen before its features are cached")
    read = []
    hook = model.model.multi_modal_projector.register_forward_pre_hook(lambda _module, args: read.append(args[0]))
    try:
        for start in range(0, len(pixels), batch_size):
            model.model.get_image_features(pixel_values=pixels[start : start + batch_size])
    finally:
        hook.remove()
    return torch.cat(read)


def with_image_features(model, features: torch.Tensor, batch: dict) -> dict:
    """A batch's images as their cached tower features through the (trained) projector, in place of pixels."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    rows = batch["image_rows"]
    projected = model.model.multi_modal_projector(features[rows])
    inputs = {k: v for k, v in batch.items() if k != "image_rows"}
    return {**inputs, "mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=list(projected))}}


def train_loop(model, data: CaptionData, p: dict, rng: np.random.Generator, questions: QuestionData | None = None) -> list[float]:
    """Captioning (part 2), or captioning and answering questions (part 3: one batch of each per step).

    Only parameters that still require gradients are trained; the vision tower is frozen.
    """
    features = data.tower_features(model)
    trainable = [t for t in model.parameters() if t.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=p["lr"], weight_decay=p["weight_decay"])
    schedule = warmup_cosine(optimizer, p["warmup"], p["steps"])
    model.train()
    losses = []
    order = batch_order(rng, len(data.captions), p["batch_size"], p["steps"])
    if questions is not None:
        question_order = batch_order(rng, len(questions.rows), p["vqa_batch_size"], p["steps"])
    bar = tqdm(order, total=p["steps"], desc="train LMM", mininterval=5)
    for indices in bar:
        loss = model(**with_image_features(model, features, data.batch(indices, rng.integers(0, 1 << 16, len(indices))))).loss
        if questions is not None:
            loss = loss + model(**with_image_features(model, features, questions.batch(next(question_order)))).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
    return losses


# -- the quality gate ----------------------------------------------------------------------
def generate_captions(adapter, images, prompt: str, batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy captions through the pipeline's own generation, as the workflow will caption."""
    adapter.model.eval()
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="caption test", mininterval=5):
        ids = greedy_generate(adapter, images[start : start + batch_size], prompt, max_new_tokens)
        out += [t.strip() for t in adapter.tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return out


def answer_questions(adapter, questions, images_by_id: dict, batch_size: int) -> dict[str, str]:
    """Greedy short answers, as the workflow asks them: question id -> answer."""
    adapter.model.eval()
    prompts = [adapter.caption_prompt(vqa_instruction(q.question)) for q in questions]
    texts = greedy_texts(adapter, [images_by_id[q.image_id] for q in questions], prompts, batch_size, ANSWER_TOKENS)
    return {q.id: text for q, text in zip(questions, texts)}


def train_tiny_llava(world_dir, out_dir, **params) -> dict:
    """Train on the world's train split, check captions on its test split, save the HF folder."""
    p = merge_params(LMM_DEFAULTS, params, "train_lmm", positive=("steps", "batch_size", "vision_batch_size", "eval_batch_size"))
    set_threads(p["threads"])
    started = time.perf_counter()
    world_dir = Path(world_dir)
    # The tokenizer knows every style's words from the start: fine-tunes share it, as real ones do.
    caption_files = [world_dir / "captions.json", *sorted(world_dir.glob("styles/*/captions.json"))]
    all_captions = [c for path in caption_files for s in load_karpathy(path, world_dir) for c in s.captions]
    vqa = {split: world_questions(world_dir, split) for split in ("train", "test")} if p["vqa_batch_size"] else {}
    answers = sorted({q.multiple_choice_answer for qs in vqa.values() for q in qs})
    prompts = [p["prompt"], *sorted({vqa_instruction(q.question) for qs in vqa.values() for q in qs})]
    train_samples, train_images = world_split(world_dir, "train")
    image_size = train_images[0].width

    torch.manual_seed(p["seed"])
    tokenizer = build_tokenizer(all_captions + answers, prompts, p["max_vocab"])
    processor = build_processor(tokenizer, image_size, p["patch_size"])
    model = build_model(tokenizer, image_size, p)
    adapter = FAMILIES["llava"].from_loaded(model, processor)
    prompt = adapter.caption_prompt(p["prompt"])
    data = CaptionData(processor, train_images, train_samples, prompt)
    train_rows = {s.id: i for i, s in enumerate(train_samples)}
    questions = QuestionData(processor, adapter, train_rows, vqa["train"], train_images) if vqa else None
    rng = np.random.default_rng(p["seed"])
    vision_losses = pretrain_vision(model, data, p, rng)
    losses = train_loop(model, data, p, rng)
    if questions is not None:
        # Part 3: questions, with captions alongside so that captioning is not forgotten. Trained
        # jointly from the start instead, shapes were named right in 54 % of captions (97 % without).
        part3 = {**p, "steps": p["vqa_steps"], "lr": p["vqa_lr"], "warmup": min(p["warmup"], p["vqa_steps"])}
        losses += train_loop(model, data, part3, rng, questions)
    train_seconds = time.perf_counter() - started

    test_samples, test_images = world_split(world_dir, "test")
    if p["eval_images"]:
        test_samples, test_images = test_samples[: p["eval_images"]], test_images[: p["eval_images"]]
    generated = generate_captions(adapter, test_images, prompt, p["eval_batch_size"], p["max_new_tokens"])
    quality = caption_quality(generated, [list(s.captions) for s in test_samples], factors_of(world_dir, [s.id for s in test_samples]))
    print(f"train_lmm quality gate: shape named right in {quality['shape_accuracy']:.1%} of {quality['images']} test captions, "
          f"word accuracy {quality['word_accuracy']:.1%}, exact match {quality['exact_match']:.1%}")
    if vqa:
        test_questions = [q for q in vqa["test"] if q.image_id in {s.id for s in test_samples}]
        images_by_id = {s.id: im for s, im in zip(test_samples, test_images)}
        predicted = answer_questions(adapter, test_questions, images_by_id, p["eval_batch_size"])
        quality["vqa"] = accuracy_by_type(predicted, test_questions)
        print(f"train_lmm quality gate: VQA accuracy {quality['vqa']['overall']:.1%} on {len(test_questions)} test questions "
              f"({', '.join(f'{t} {a:.1%}' for t, a in quality['vqa']['by_type'].items())})")
    if quality["shape_accuracy"] < p["min_shape_accuracy"]:
        raise MMConceptsError(
            f"train_lmm: the model names the main shape in only {quality['shape_accuracy']:.1%} of test captions "
            f"(min_shape_accuracy = {p['min_shape_accuracy']}); train longer (steps) or on more images"
        )
    if vqa and quality["vqa"]["overall"] < p["min_vqa_accuracy"]:
        raise MMConceptsError(
            f"train_lmm: VQA accuracy {quality['vqa']['overall']:.1%} on the test questions "
            f"(min_vqa_accuracy = {p['min_vqa_accuracy']}); train longer (vqa_steps)"
        )
    summary = {
        "params": p,
        "parameters": sum(t.numel() for t in model.parameters()),
        "vocab_size": len(tokenizer),
        "sequence_length": len(data.prompt_ids) + max(len(c) for caps in data.captions for c in caps),
        "torch_threads": torch.get_num_threads(),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "final_vision_loss": float(np.mean(vision_losses[-50:])) if vision_losses else None,
        "final_loss": float(np.mean(losses[-50:])),
        "quality": quality,
        "examples": [{"id": s.id, "generated": g, "reference": s.captions[0]} for s, g in zip(test_samples[:5], generated)],
    }
    save_model(out_dir, model, processor, summary)
    return {k: summary[k] for k in ("parameters", "train_seconds", "total_seconds", "final_loss", "quality")}


def save_model(out_dir, model, processor, summary: dict) -> None:
    """The Hugging Face folder (model, processor, tokenizer, chat template) and ``training.json``, written whole."""
    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
