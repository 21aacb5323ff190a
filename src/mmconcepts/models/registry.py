"""Adapter lookup by the ``adapter:`` name of a model's config entry."""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.base import LMMAdapter
from mmconcepts.models.llava import LlavaAdapter

ADAPTERS: dict[str, type[LMMAdapter]] = {cls.family: cls for cls in (LlavaAdapter,)}


def load_adapter(name: str, path: str, *, dtype: str = "auto", device: str = "auto") -> LMMAdapter:
    if name not in ADAPTERS:
        raise MMConceptsError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[name](path, dtype=dtype, device=device)
