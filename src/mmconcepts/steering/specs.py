"""Steering specs, checked when the workflow starts (so this module imports nothing heavy).

A vector is either the difference of the mean states of two sets (``base``, ``target``),
or read from a result the workflow already made (``vector:``):
- ``{concepts: [i, j], token: T, method: M, k: K}``: s_ij = u_j − u_i of the model's
  dictionary of T (``results/<model>/<T>/layer<L>/<M>/k<K>/dictionary.npz``);
- ``{shift: k, analysis: A, token: T}``: Δ_k, concept k's shift in the shift analysis A.
"""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError

KINDS = ("answer", "word", "before_eos")
VECTOR_KINDS = ("concepts", "shift")


def parse_set(spec, where: str) -> tuple[str, str | None]:
    """(kind, value) of a set spec: ``{answer: X}``, ``{word: W}`` or ``before_eos``; errors name ``where``."""
    if spec == "before_eos":
        return "before_eos", None
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, value),) = spec.items()
        if kind in ("answer", "word") and isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return kind, str(value)
    raise MMConceptsError(f"{where}: {spec!r} is not a set; use {{answer: X}}, {{word: W}} or before_eos")


def _index(value) -> int | None:
    """A concept index, also from the string ``--config`` makes of a number in a list; None if not one."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_vector(spec, where: str) -> tuple[str, dict]:
    """(kind, spec with its indices as integers) of a ``vector:`` spec, its keys checked; errors name ``where``."""
    usage = "use {concepts: [i, j], token: T, method: M, k: K} or {shift: k, analysis: A, token: T}"
    if not isinstance(spec, dict):
        raise MMConceptsError(f"{where}: {spec!r} is not a vector spec; {usage}")
    kinds = [kind for kind in VECTOR_KINDS if kind in spec]
    if len(kinds) != 1:
        raise MMConceptsError(f"{where}: {spec!r} names {'no' if not kinds else 'two'} vector kind(s); {usage}")
    kind = kinds[0]
    keys = {"concepts": {"concepts", "token", "method", "k"}, "shift": {"shift", "analysis", "token"}}[kind]
    if set(spec) != keys:
        missing, unknown = sorted(keys - set(spec)), sorted(set(spec) - keys)
        raise MMConceptsError(f"{where}: a {kind} vector needs exactly {sorted(keys)} (missing {missing}, unknown {unknown})")
    if kind == "concepts":
        pair = [_index(i) for i in spec["concepts"]] if isinstance(spec["concepts"], list) else []
        if len(pair) != 2 or None in pair or pair[0] == pair[1]:
            raise MMConceptsError(f"{where}.concepts: {spec['concepts']!r} is not two different concept indices [i, j]")
        k = _index(spec["k"])
        if k is None or max(pair) >= k:
            raise MMConceptsError(f"{where}: concepts {pair} are not indices of a dictionary of k = {spec['k']!r} concepts")
        return kind, {**spec, "concepts": pair, "k": k}
    if _index(spec["shift"]) is None:
        raise MMConceptsError(f"{where}.shift: {spec['shift']!r} is not a concept index")
    return kind, {**spec, "shift": _index(spec["shift"])}
