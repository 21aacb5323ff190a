"""Adapter lookup by the ``adapter:`` name of a model's config entry."""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.base import LMMAdapter
from mmconcepts.models.families import FAMILIES


def load_adapter(
    name: str, path: str, *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False
) -> LMMAdapter:
    if name not in FAMILIES:
        raise MMConceptsError(f"unknown adapter {name!r}; supported: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name].load(path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
