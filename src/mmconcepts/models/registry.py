"""Adapter lookup by the ``adapter:`` name of a model's config entry."""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.base import LMMAdapter
from mmconcepts.models.idefics2 import Idefics2Adapter
from mmconcepts.models.llava import LlavaAdapter
from mmconcepts.models.qwen2_vl import Qwen2VLAdapter, Qwen25VLAdapter

ADAPTERS: dict[str, type[LMMAdapter]] = {
    cls.family: cls for cls in (LlavaAdapter, Idefics2Adapter, Qwen2VLAdapter, Qwen25VLAdapter)
}


def load_adapter(name: str, path: str, *, dtype: str = "auto", device: str = "auto") -> LMMAdapter:
    if name not in ADAPTERS:
        raise MMConceptsError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[name](path, dtype=dtype, device=device)
