"""The tiny LLaVA's training settings, apart from the trainer so that config checks need no torch."""

PROMPT = "Provide a one-sentence caption for the provided image."

LMM_DEFAULTS = {
    "seed": 0,
    "prompt": PROMPT,
    # architecture
    "patch_size": 8,
    "vision_width": 128,
    "vision_layers": 2,
    "vision_heads": 4,
    "text_width": 128,
    "text_layers": 4,
    "text_heads": 4,
    "text_mlp": 384,
    "max_vocab": 1024,
    "text_init_std": 0.06,
    # part 1: vision tower pretraining on caption words
    "vision_steps": 700,
    "vision_batch_size": 64,
    "vision_lr": 1e-3,
    # part 2: captioning, vision tower frozen
    "steps": 800,
    "batch_size": 32,
    "lr": 1e-3,
    "warmup": 50,
    "weight_decay": 0.01,
    # part 3: questions (with captions alongside), after captioning
    "vqa_steps": 250,
    "vqa_batch_size": 16,  # questions per step beside a batch of captions; 0: no VQA
    "vqa_lr": 1e-3,
    # quality gate, on the test split
    "eval_images": 0,  # 0: every test image
    "eval_batch_size": 100,
    "max_new_tokens": 24,
    "min_shape_accuracy": 0.9,  # training fails below this; 0 turns the gate off
    "min_vqa_accuracy": 0.85,  # overall VQAv2 accuracy on the test questions; 0 turns the gate off
    "threads": None,
}

# Fine-tuning on one caption style (rule finetune_lmm): the captioning part again, vision tower frozen.
FINETUNE_DEFAULTS = {
    "seed": 0,
    "prompt": PROMPT,
    "steps": 200,
    "batch_size": 32,
    "lr": 5e-4,
    "warmup": 20,
    "weight_decay": 0.01,
    "eval_images": 0,
    "eval_batch_size": 100,
    "max_new_tokens": 32,  # styled captions are longer
    "min_shape_accuracy": 0.9,
    "min_style_rate": 0.9,  # test captions that must carry a planted word of the style
    "threads": None,
}
