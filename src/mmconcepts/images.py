"""Opening images, with unreadable ones reported instead of crashing a whole split."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def open_rgb(path: str | Path) -> Image.Image | None:
    """The image as RGB, or None when the file is missing or not a decodable image."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError):  # missing, undecodable (UnidentifiedImageError is an OSError), truncated
        return None
