"""CLIP's two encoders as the mutual-knowledge stage uses them, through open_clip's own API.

- Images are resized to the model's square input **without a centre crop** (the authors' code),
  then normalised with the model's own mean and std.
- One pass gives an image's embedding and the patch tokens of the last block, before ``ln_post``
  and without the class token (``forward_intermediates``), as the authors' demo reads them.
- Only ViTs have patch tokens; any other vision tower is an error naming the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mmconcepts.errors import MMConceptsError

DESCRIPTOR_PROMPT = "a photo showing {}"  # how the paper encodes a descriptor


@dataclass
class ClipEncoders:
    name: str
    model: torch.nn.Module
    tokenizer: object
    image_size: int
    mean: torch.Tensor
    std: torch.Tensor
    device: torch.device
    batch_size: int = 64

    @classmethod
    def load(cls, name: str, spec: dict, batch_size: int = 64, device: str = "cpu") -> ClipEncoders:
        """``spec``: ``{"path": folder}`` or ``{"model": open_clip name, "pretrained": tag or file}``;
        ``device``: as ``mmconcepts.device.resolve_device`` reads it (``auto``: CUDA when present)."""
        from open_clip.transformer import VisionTransformer

        from mmconcepts.device import resolve_device
        from mmconcepts.models.clip import load_clip

        device = resolve_device(device)
        clip_spec = {"name": spec.get("model", name), **{k: spec[k] for k in ("path", "pretrained") if k in spec}}
        model, _, tokenizer = load_clip(clip_spec, device=str(device))
        if not isinstance(model.visual, VisionTransformer):
            raise MMConceptsError(
                f"mutual: model {name!r} has a {type(model.visual).__name__} vision tower; mutual knowledge needs "
                "a ViT's patch tokens (the paper does not say how it decomposed its CNNs)"
            )
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        cfg = model.visual.preprocess_cfg
        mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(cfg["std"], dtype=torch.float32).view(3, 1, 1)
        return cls(name, model.eval(), tokenizer, int(size), mean, std, device, batch_size)

    @property
    def patch_grid(self) -> tuple[int, int]:
        p = self.model.visual.patch_size
        p = p[0] if isinstance(p, (tuple, list)) else p
        return self.image_size // p, self.image_size // p

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        side = (self.image_size, self.image_size)
        arrays = [np.asarray(im.convert("RGB").resize(side, Image.BICUBIC), dtype=np.float32) / 255.0 for im in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        return ((x - self.mean) / self.std).to(self.device)

    @torch.no_grad()
    def images(self, images: list[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings (N, E), in batches."""
        out = [F.normalize(self.model.encode_image(self.pixels(images[s : s + self.batch_size])), dim=-1) for s in range(0, len(images), self.batch_size)]
        return torch.cat(out).float().cpu().numpy()

    @torch.no_grad()
    def images_and_tokens(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (N, E) L2-normalised, last-block patch tokens (N, h, w, C))."""
        h, w = self.patch_grid
        embs, tokens = [], []
        for s in range(0, len(images), self.batch_size):
            out = self.model.forward_intermediates(image=self.pixels(images[s : s + self.batch_size]), image_indices=1, image_output_fmt="NLC")
            embs.append(out["image_features"])
            t = out["image_intermediates"][-1]
            tokens.append(t.reshape(t.shape[0], h, w, t.shape[-1]))
        return F.normalize(torch.cat(embs), dim=-1).float().cpu().numpy(), torch.cat(tokens).float().cpu().numpy()

    @torch.no_grad()
    def texts(self, texts: list[str]) -> np.ndarray:
        out = [F.normalize(self.model.encode_text(self.tokenizer(texts[s : s + 256]).to(self.device)), dim=-1) for s in range(0, len(texts), 256)]
        return torch.cat(out).float().cpu().numpy()

    def classes(self, class_names, templates) -> np.ndarray:
        """Zero-shot class embeddings (C, E): each class's template embeddings averaged, renormalised."""
        rows = [self.texts([t.format(c) for t in templates]).mean(0) for c in class_names]
        rows = np.stack(rows)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def descriptors(self, descriptors) -> np.ndarray:
        return self.texts([DESCRIPTOR_PROMPT.format(d) for d in descriptors])
