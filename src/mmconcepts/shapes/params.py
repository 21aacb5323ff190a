"""Checking a trainer's settings against its defaults; light, so config checks import no torch."""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError


def merge_params(defaults: dict, params: dict, where: str, positive=()) -> dict:
    """The defaults updated with ``params``, checked against their types; errors name the key.

    Numbers must be non-negative, and those named in ``positive`` at least 1.
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise MMConceptsError(f"{where}: unknown key(s) {unknown}; known: {', '.join(defaults)}")
    p = {**defaults, **params}
    for key, default in defaults.items():
        value = p[key]
        if isinstance(default, str) and not isinstance(value, str):
            raise MMConceptsError(f"{where}: {key} must be a string, not {value!r}")
        if key == "threads" and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise MMConceptsError(f"{where}: threads must be a positive integer, not {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise MMConceptsError(f"{where}: {key} must be a non-negative number, not {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise MMConceptsError(f"{where}: {key} must be an integer, not {value!r}")
            p[key] = type(default)(value)
    for key in positive:
        if p[key] < 1:
            raise MMConceptsError(f"{where}: {key} must be at least 1, not {p[key]!r}")
    return p
