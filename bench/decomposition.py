"""Semi-NMF against scikit-learn's DictionaryLearning (the reference code's solver), side by side.

    python bench/decomposition.py                            # all sizes (scikit-learn at COCO scale: ~14 min)
    python bench/decomposition.py --sizes small              # 2,000 × 4,096, K = 20 only
    python bench/decomposition.py --sizes coco --skip-coco-sklearn   # ours only, against scikit-learn's recorded figure

On planted problems (``mmconcepts.concepts.decomposition.planted``: known unit-norm atoms,
sparse non-negative codes, noise) every method is timed on the same data in one run.
The COCO-scale row (82,783 × 4,096 as LLaVA-1.5-7B's states of one word on Karpathy
train, K = 20) is ``make_sparse_planted``, where a fit used to lose planted atoms for
some seeds: ours runs for ``random_state`` 0–4, scikit-learn once.
Every dictionary is then scored the same way: its atoms (projected onto the unit ball;
overcomplete's unconstrained atoms scaled to unit norm) are given codes by the same
exact non-negative lasso (``mmconcepts.concepts.decomposition.coding.encode`` on float64 data),
and the objective ½‖Z − V U‖²_F + α‖V‖₁ is computed from the residual in float64.
Atom recovery is the mean cosine to the planted atoms after Hungarian matching.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch
from sklearn.decomposition import DictionaryLearning
from threadpoolctl import threadpool_limits

from mmconcepts.concepts.decomposition import SemiNMF
from mmconcepts.concepts.decomposition.coding import Features, encode
from mmconcepts.concepts.decomposition.planted import atom_recovery, make_planted, make_sparse_planted

SIZES = {"small": (2_000, 4_096, 20), "k100": (2_000, 4_096, 100), "large": (20_000, 4_096, 20), "coco": (82_783, 4_096, 20)}
COCO_SEEDS = range(5)
# scikit-learn on the coco row, as this script last measured it (--skip-coco-sklearn prints it instead)
SKLEARN_COCO_RECORDED = {
    "time": 771.51,
    "iters": 43,
    "objective": 4_825_401.97,
    "recovery": 0.9998,
    "measured": "2026-11-26 on the 2-core machine shared with other jobs (torch 2.14, 2 threads, load ≈ 3)",
}
ROWS_PER_BLOCK = 8_192  # exact_objective in row blocks: a float64 copy of a COCO-sized Z is 2.7 GB


def exact_objective(Z: np.ndarray, U: np.ndarray, alpha: float) -> float:
    Ut = torch.from_numpy(np.asarray(U, dtype=np.float64))
    total = 0.0
    for s in range(0, len(Z), ROWS_PER_BLOCK):  # each sample's code is its own problem
        Zd = torch.from_numpy(Z[s : s + ROWS_PER_BLOCK].astype(np.float64))
        Vt, _ = encode(Features(Zd), Ut, alpha)
        total += 0.5 * float((Zd - Vt.T @ Ut).square().sum()) + alpha * float(Vt.sum())
    return total


def run_ours(Z, K, alpha, seed=0):
    est = SemiNMF(K, alpha=alpha, random_state=seed)
    t = time.perf_counter()
    est.fit(Z)
    return time.perf_counter() - t, est.n_iter_, est.components_


def scored(Z, planted, alpha, t, n_iter, U):
    """(time, iterations, exact objective, recovery) of atoms U projected onto the unit ball."""
    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1.0)
    return t, n_iter, exact_objective(Z, U, alpha), atom_recovery(U, planted)


def run_sklearn(Z, K, alpha):
    est = DictionaryLearning(
        n_components=K, alpha=alpha, positive_code=True, fit_algorithm="cd", transform_algorithm="lasso_cd", random_state=0
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its inner lasso warns about convergence on most calls
        est.fit(Z)
    return time.perf_counter() - t, est.n_iter_, est.components_


def overcomplete_runner():
    """overcomplete's Semi-NMF when it imports, else the reason it does not."""
    try:
        from overcomplete.optimization import SemiNMF as OvercompleteSemiNMF
    except Exception as e:  # it fails on import in several ways depending on the stack
        return None, f"{type(e).__name__}: {e}"

    def run(Z, K, alpha):
        torch.manual_seed(0)
        est = OvercompleteSemiNMF(K, solver="mu", device="cpu")
        t = time.perf_counter()
        _, D = est.fit(torch.from_numpy(Z))
        U = D.numpy()
        return time.perf_counter() - t, None, U / np.linalg.norm(U, axis=1, keepdims=True)

    return run, None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="small,k100,large,coco", help=f"comma-separated, from {', '.join(SIZES)}")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--sklearn-budget", type=float, default=600.0,
                   help="skip scikit-learn where its estimated time exceeds this (s); not on the coco row")
    p.add_argument("--skip-coco-sklearn", action="store_true",
                   help="on the coco row, print scikit-learn's last recorded figure instead of running it (~14 min)")
    p.add_argument("--threads", type=int, help="CPU threads for every method (torch and the BLAS/OpenMP pools); default: as found")
    a = p.parse_args(argv)
    if a.threads:  # on a shared machine one thread each avoids waits on descheduled threads
        torch.set_num_threads(a.threads)
        threadpool_limits(a.threads)
    names = [s.strip() for s in a.sizes.split(",") if s.strip()]
    if unknown := [n for n in names if n not in SIZES]:
        p.error(f"unknown size(s) {', '.join(unknown)}; choose from {', '.join(SIZES)}")

    oc_run, oc_why = overcomplete_runner()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda: {torch.cuda.is_available()}; "
          f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if oc_why:
        print(f"overcomplete Semi-NMF skipped: {oc_why}")
    print("objective: atoms of each method, codes re-solved by mmconcepts' exact non-negative lasso, float64 residual")
    head = f"{'size (M × B, K)':<22}{'method':<16}{'time s':>9}{'speedup':>9}{'iters':>7}{'objective':>16}{'obj ratio':>11}{'recovery':>10}"
    print(head)
    print("-" * len(head))

    sk_rate = None  # scikit-learn seconds per (M × K), from the first size it ran on
    for name in names:
        M, B, K = SIZES[name]
        coco = name == "coco"
        Z, planted, _ = make_sparse_planted(M, B, K) if coco else make_planted(M, B, K, seed=0)
        rows = {}  # method: (time, iterations, objective, recovery), or why it did not run
        for seed in COCO_SEEDS if coco else [0]:
            t, n_iter, U = run_ours(Z, K, a.alpha, seed)
            rows[f"mmconcepts s{seed}" if coco else "mmconcepts"] = scored(Z, planted, a.alpha, t, n_iter, U)
        estimate = None if sk_rate is None or coco else sk_rate * M * K
        if coco and a.skip_coco_sklearn:
            r = SKLEARN_COCO_RECORDED
            rows["scikit-learn *"] = (r["time"], r["iters"], r["objective"], r["recovery"])
        elif estimate is not None and estimate > a.sklearn_budget:
            rows["scikit-learn"] = f"skipped (estimated {estimate:.0f} s > {a.sklearn_budget:.0f} s)"
        else:
            t, n_iter, U = run_sklearn(Z, K, a.alpha)
            rows["scikit-learn"] = scored(Z, planted, a.alpha, t, n_iter, U)
            sk_rate = sk_rate or t / (M * K)
        if oc_run:
            rows["overcomplete"] = scored(Z, planted, a.alpha, *oc_run(Z, K, a.alpha))

        ref = rows.get("scikit-learn", rows.get("scikit-learn *"))
        ref = None if isinstance(ref, str) else ref
        label = f"{M:,} × {B:,}, K={K}"
        for method, r in rows.items():
            if isinstance(r, str):
                print(f"{label:<22}{method:<16}{r}")
                continue
            t, n_iter, obj, rec = r
            speed = f"{ref[0] / t:.1f}×" if ref else "—"
            ratio = f"{obj / ref[2]:.5f}" if ref else "—"
            iters = "—" if n_iter is None else str(n_iter)
            print(f"{label:<22}{method:<16}{t:>9.2f}{speed:>9}{iters:>7}{obj:>16.2f}{ratio:>11}{rec:>10.4f}")
        if coco and ref:
            ours = [r for m, r in rows.items() if m.startswith("mmconcepts")]
            worst = max(r[2] for r in ours) / ref[2], min(r[3] for r in ours), min(ref[0] / r[0] for r in ours)
            print(f"{'':<22}seeds {COCO_SEEDS[0]}–{COCO_SEEDS[-1]}: objective ratio ≤ {worst[0]:.5f}, recovery ≥ "
                  f"{worst[1]:.4f}, speed-up ≥ {worst[2]:.1f}× (must: ≤ 1.001, ≥ 0.99, ≥ 50×)")
        if "scikit-learn *" in rows:
            print(f"{'':<22}* scikit-learn not run now (--skip-coco-sklearn): its last recorded figure, "
                  f"{SKLEARN_COCO_RECORDED['measured']}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
