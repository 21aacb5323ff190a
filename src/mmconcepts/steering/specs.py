"""Steering set specs, checked when the workflow starts (so this module imports nothing heavy)."""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError

KINDS = ("answer", "word", "before_eos")


def parse_set(spec, where: str) -> tuple[str, str | None]:
    """(kind, value) of a set spec: ``{answer: X}``, ``{word: W}`` or ``before_eos``; errors name ``where``."""
    if spec == "before_eos":
        return "before_eos", None
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, value),) = spec.items()
        if kind in ("answer", "word") and isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return kind, str(value)
    raise MMConceptsError(f"{where}: {spec!r} is not a set; use {{answer: X}}, {{word: W}} or before_eos")
