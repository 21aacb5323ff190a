"""Images per second of steered captioning: batch size 64 (ours) against batch size 1 (the authors' code).

    .venv/bin/python bench/steering.py [MODEL_DIR] [--images N] [--batch-size B]

The authors keep steering state in a global dictionary and so run one image at a
time; our hook adds α·v to a whole batch (models.hooks.add_vector). The vector is a
seeded random direction of norm 10 at block 2, added at every position; the model and
images are those of bench/extraction.py (the trained shapes-llava when it exists).
Both rates are measured in this run, interleaved, best of ``--repeats``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import INSTRUCTION, best_rates, load_images, load_model, parser


def main() -> None:
    from mmconcepts.models.generation import greedy_generate
    from mmconcepts.models.hooks import add_vector

    ap = parser(__doc__)
    ap.add_argument("--layer", default="2")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        adapter, model_desc = load_model(a.model, Path(tmp))
        images, image_desc = load_images(a.images, a.world)
        prompt = adapter.caption_prompt(INSTRUCTION)
        hidden = adapter.language_model().config.hidden_size
        vector = torch.randn(hidden, generator=torch.Generator().manual_seed(0))
        vector = 10 * vector / vector.norm()
        print(f"model: {model_desc}; images: {a.images} from {image_desc}; torch threads: {torch.get_num_threads()}")

        def steered(batch):
            with add_vector(adapter, a.layer, vector, 1.0, "all"):
                greedy_generate(adapter, [images[i] for i in batch], prompt, a.max_new_tokens)

        one, many = best_rates(steered, list(range(a.images)), a.batch_size, a.repeats)
        print(f"steered captioning, images/s: batch size 1 {one:.1f}, batch size {a.batch_size} {many:.1f} ({many / one:.1f}x)")


if __name__ == "__main__":
    main()
