"""The settings of the mutual-knowledge stage, their defaults (the paper's) and their check.

Kept free of heavy imports: the workflow checks a config's ``mutual:`` entries with it before any job.
"""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError

METHODS = ("pca", "kmeans")  # how a class's foreground patches are split into visual concepts
RELEVANCE_RULES = ("mean", "percentile")  # the code's rule and the paper's
SCORE_NAMES = ("code", "eq1")  # log(N·u·m), the code's; Eq. (1) taken literally
# The foreground: one decomposition of a class's stacked tokens (the code's), one per image (the paper's
# text), or, as a control where the set has object masks, the best whole-patch mask of the true object.
FOREGROUND_SCOPES = ("class", "image", "truth")
# The foreground's affinity: the paper's f fᵀ (second eigenvector) or the centred tokens' (first eigenvector).
AFFINITIES = ("gram", "centred")

MUTUAL_DEFAULTS = {
    "methods": list(METHODS),
    "n_concepts": 5,
    "top_k": 500,
    "per_concept": 3,
    "u": 50,  # the demo's value; the paper gives none
    "relevance": "mean",
    "offset": 0.02,
    "ot": True,
    "ot_scale": 2.5,
    "ot_reg": 1.0,
    "ot_iterations": 1000,
    "score": "code",
    "curve_length": 16,
    "foreground": "class",
    "affinity": "gram",
    "second_min": 5,
    "connectivity": 4,
    "perturbation_blur": 0.0625,  # Deletion/Insertion blur: its sigma as a share of the image's shorter side
    "seed": 0,
    "batch_size": 64,
}
_POSITIVE = ("n_concepts", "top_k", "per_concept", "u", "curve_length", "ot_iterations", "batch_size")


def mutual_settings(**params) -> dict:
    """The defaults updated with ``params``, checked; errors name the key."""
    unknown = sorted(set(params) - set(MUTUAL_DEFAULTS))
    if unknown:
        raise MMConceptsError(f"mutual: unknown setting(s) {unknown}; known: {', '.join(MUTUAL_DEFAULTS)}")
    p = {**MUTUAL_DEFAULTS, **params}
    methods = p["methods"]
    if not isinstance(methods, list) or not methods or any(m not in METHODS for m in methods) or len(set(methods)) < len(methods):
        raise MMConceptsError(f"mutual: methods must be a non-empty list of distinct {', '.join(METHODS)}, not {methods!r}")
    for key in _POSITIVE:
        if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 1:
            raise MMConceptsError(f"mutual: {key} must be a positive integer, not {p[key]!r}")
    for key, choices in (
        ("relevance", RELEVANCE_RULES),
        ("score", SCORE_NAMES),
        ("foreground", FOREGROUND_SCOPES),
        ("affinity", AFFINITIES),
        ("connectivity", (4, 8)),
    ):
        if p[key] not in choices:
            raise MMConceptsError(f"mutual: {key} must be one of {', '.join(map(str, choices))}, not {p[key]!r}")
    if isinstance(p["perturbation_blur"], bool) or not isinstance(p["perturbation_blur"], (int, float)) or p["perturbation_blur"] <= 0:
        raise MMConceptsError(f"mutual: perturbation_blur must be a positive number, not {p['perturbation_blur']!r}")
    for key in ("offset", "ot_scale", "ot_reg"):
        if isinstance(p[key], bool) or not isinstance(p[key], (int, float)):
            raise MMConceptsError(f"mutual: {key} must be a number, not {p[key]!r}")
    if not isinstance(p["ot"], bool):
        raise MMConceptsError(f"mutual: ot must be true or false, not {p['ot']!r}")
    longest = p["n_concepts"] * p["per_concept"] + 1
    if p["curve_length"] < longest:
        raise MMConceptsError(f"mutual: curve_length {p['curve_length']} is shorter than an MI curve can be "
                              f"(n_concepts × per_concept + 1 = {longest})")  # fmt: skip
    return p
