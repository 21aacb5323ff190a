"""Opening images, with unreadable ones reported instead of crashing a whole split."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mmconcepts.errors import MMConceptsError


def open_rgb(path: str | Path) -> Image.Image | None:
    """The image as RGB, or None when the file is missing or not a decodable image."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError):  # missing, undecodable (UnidentifiedImageError is an OSError), truncated
        return None


def require_rgb(path: str | Path) -> Image.Image:
    """The image as RGB; one that cannot be read is an error naming the file (where no image may be skipped)."""
    im = open_rgb(path)
    if im is None:
        raise MMConceptsError(f"{path}: cannot read the image")
    return im
