"""Commands of the shift analysis: compare an original and a fine-tuned model, report it."""

from __future__ import annotations

from mmconcepts.cli.registry import HEADER, OUT, THREADS, arg, command
from mmconcepts.device import set_threads


def _side(name: str, features: str, samples: str, lens: str):
    from mmconcepts.atomic import read_json
    from mmconcepts.concepts.feature_store import read_features
    from mmconcepts.concepts.lens import Lens
    from mmconcepts.errors import MMConceptsError
    from mmconcepts.shift.compare import Side

    Z, attrs = read_features(features)
    kept = {s["id"]: s for s in read_json(samples, "samples file")["samples"]}
    unknown = [i for i in attrs["sample_ids"] if i not in kept]
    if unknown:
        raise MMConceptsError(f"{features}: sample id {unknown[0]!r} is not in {samples} (a store and samples of different runs?)")
    return Side(name=name, states=Z, ids=list(attrs["sample_ids"]), samples=kept, lens=Lens(lens))


@command(
    "shift",
    "how fine-tuning moved the concepts of a word: one layer, method and K",
    OUT, THREADS, HEADER,
    arg("--original", nargs=4, required=True, metavar=("NAME", "FEATURES", "SAMPLES", "LENS")),
    arg("--finetuned", nargs=4, required=True, metavar=("NAME", "FEATURES", "SAMPLES", "LENS")),
    arg("--word", required=True),
    arg("--layer", required=True),
    arg("--method", required=True),
    arg("--k", type=int, required=True),
    arg("--aggregate", default="mean"),
    arg("--seed", type=int, default=0),
    arg("--alpha", type=float, default=1.0, help="sparsity of the lasso-coded methods"),
    arg("--n-words", type=int, default=15, help="words per concept"),
    arg("--n-shift-words", type=int, default=30, help="words per concept shift"),
    arg("--n-mas", type=int, default=20, help="most activating samples compared per concept"),
    arg("--style", default=None, help="style.json of the fine-tune's planted change (ground truth)"),
    arg("--factors", default=None, help="factors.json of the world (ground truth)"),
    arg("--vectors", required=True, help="where the concept shifts Δ_k go (npz: shifts, counts, original)"),
)  # fmt: skip
def shift(a):
    from mmconcepts.atomic import read_json, write_json, write_npz
    from mmconcepts.data.karpathy import load_factors
    from mmconcepts.shift.compare import compare

    set_threads(a.threads)
    result, vectors = compare(
        _side(*a.original),
        _side(*a.finetuned),
        word=a.word,
        layer=a.layer,
        method=a.method,
        k=a.k,
        aggregate=a.aggregate,
        seed=a.seed,
        alpha=a.alpha,
        n_words=a.n_words,
        n_shift_words=a.n_shift_words,
        n_mas=a.n_mas,
        truth=read_json(a.style, "style file") if a.style else None,
        factors=load_factors(a.factors) if a.factors else None,
    )
    write_npz(a.vectors, **vectors)
    write_json(a.out, {**a.header, **result}, indent=None)


@command("shift-report", "write the shift report of one pair and word", OUT, arg("--runs", nargs="+", required=True))
def shift_report(a):
    from mmconcepts.report.shift import render_shift_report

    render_shift_report(a.out, a.runs)
