"""Semi-NMF against scikit-learn's DictionaryLearning (the reference code's solver), side by side.

    python bench/decomposition.py                  # all sizes
    python bench/decomposition.py --sizes small    # 2,000 × 4,096, K = 20 only

On planted problems (``mmconcepts.decomposition.planted``: known unit-norm atoms,
sparse non-negative codes, noise) every method is timed on the same data in one run.
Every dictionary is then scored the same way: its atoms (projected onto the unit ball;
overcomplete's unconstrained atoms scaled to unit norm) are given codes by the same
exact non-negative lasso (``mmconcepts.decomposition.coding.encode`` on float64 data),
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

from mmconcepts.decomposition import SemiNMF
from mmconcepts.decomposition.coding import Features, encode
from mmconcepts.decomposition.planted import atom_recovery, make_planted

SIZES = {"small": (2_000, 4_096, 20), "k100": (2_000, 4_096, 100), "large": (20_000, 4_096, 20)}


def exact_objective(Z: np.ndarray, U: np.ndarray, alpha: float) -> float:
    Zd = torch.from_numpy(Z.astype(np.float64))
    Ut = torch.from_numpy(np.asarray(U, dtype=np.float64))
    Vt, _ = encode(Features(Zd), Ut, alpha)
    return 0.5 * float((Zd - Vt.T @ Ut).square().sum()) + alpha * float(Vt.sum())


def run_ours(Z, K, alpha):
    est = SemiNMF(K, alpha=alpha)
    t = time.perf_counter()
    est.fit(Z)
    return time.perf_counter() - t, est.n_iter_, est.components_


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
    p.add_argument("--sizes", default="small,k100,large", help=f"comma-separated, from {', '.join(SIZES)}")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--sklearn-budget", type=float, default=600.0, help="skip scikit-learn where its estimated time exceeds this (s)")
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
    head = f"{'size (M × B, K)':<22}{'method':<14}{'time s':>9}{'speedup':>9}{'iters':>7}{'objective':>16}{'obj ratio':>11}{'recovery':>10}"
    print(head)
    print("-" * len(head))

    sk_rate = None  # scikit-learn seconds per (M × K), from the first size it ran on
    for name in names:
        M, B, K = SIZES[name]
        Z, planted, _ = make_planted(M, B, K, seed=0)
        rows = {"mmconcepts": run_ours(Z, K, a.alpha)}
        estimate = None if sk_rate is None else sk_rate * M * K
        if estimate is not None and estimate > a.sklearn_budget:
            rows["scikit-learn"] = f"skipped (estimated {estimate:.0f} s > {a.sklearn_budget:.0f} s)"
        else:
            rows["scikit-learn"] = run_sklearn(Z, K, a.alpha)
            sk_rate = sk_rate or rows["scikit-learn"][0] / (M * K)
        if oc_run:
            rows["overcomplete"] = oc_run(Z, K, a.alpha)

        ref = rows["scikit-learn"]
        ref_obj = None if isinstance(ref, str) else exact_objective(Z, ref[2], a.alpha)
        label = f"{M:,} × {B:,}, K={K}"
        for method, r in rows.items():
            if isinstance(r, str):
                print(f"{label:<22}{method:<14}{r}")
                continue
            t, n_iter, U = r
            U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1.0)
            obj = ref_obj if method == "scikit-learn" else exact_objective(Z, U, a.alpha)
            speed = f"{ref[0] / t:.1f}×" if ref_obj is not None else "—"
            ratio = f"{obj / ref_obj:.5f}" if ref_obj is not None else "—"
            iters = "—" if n_iter is None else str(n_iter)
            print(f"{label:<22}{method:<14}{t:>9.2f}{speed:>9}{iters:>7}{obj:>16.2f}{ratio:>11}{atom_recovery(U, planted):>10.4f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
