"""Thumbnails embedded in the report as data URIs, so the page is one file that opens from disk."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from mmconcepts.images import open_rgb

THUMB_PX = 96


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def _encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        im.save(buf, format="PNG", optimize=True)
    else:
        im.save(buf, format="JPEG", quality=85, optimize=True)
    return buf.getvalue()


class Thumbnails:
    """Encodes each image file once (an image recurs across concepts and K) and records the missing ones."""

    def __init__(self, size: int = THUMB_PX):
        self.size = size
        self._cache: dict[str, str | None] = {}
        self.missing: list[str] = []

    def __call__(self, path: str) -> str | None:
        """The thumbnail's data URI, or None when the file is missing or unreadable."""
        if path not in self._cache:
            self._cache[path] = self._make(path)
            if self._cache[path] is None:
                self.missing.append(path)
        return self._cache[path]

    def missing_note(self, listed: int = 5) -> str | None:
        """The report's note on image files that could not be read, or None when all could."""
        if not self.missing:
            return None
        names = ", ".join(self.missing[:listed]) + (" …" if len(self.missing) > listed else "")
        return f"{len(self.missing)} image file(s) could not be read and are shown as placeholders: {names}"

    def _make(self, path: str) -> str | None:
        im = open_rgb(Path(path))
        if im is None:
            return None
        im.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        # Flat synthetic images compress best as PNG, photographs as JPEG: keep the smaller.
        png, jpeg = _encode(im, "PNG"), _encode(im, "JPEG")
        return data_uri(png, "image/png") if len(png) <= len(jpeg) else data_uri(jpeg, "image/jpeg")
