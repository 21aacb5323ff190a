"""Semi-NMF concept dictionary (CoX-LMM): min ½‖Z − V U‖²_F + α‖V‖₁, V ≥ 0, ‖u_k‖₂ ≤ 1.

The same objective as scikit-learn's ``DictionaryLearning(positive_code=True)``, solved
by alternating block updates in torch, each of which never increases the objective:

* codes: two warm-started sweeps of coordinate descent on the K × K Gram (``coding``);
* atoms: one pass of block-coordinate descent, each atom set to the exact minimiser of
  its own sub-problem on the unit ball (the sub-problem is isotropic, so projecting the
  unconstrained minimiser onto the ball is exact).

Each step starts from an extrapolation of the last two iterates, kept only when it is
no worse than the last iterate (checked for free with the product the step needs
anyway), with the extrapolation weight grown on success and halved on failure.
Between the code and atom steps, an atom that explains less than the worst-fitted
sample's residual would is moved onto that residual (a strict decrease, see
``_replace_weak_atoms``). The start comes from the same fit on a seeded subsample
(recursively), where the long first phase is cheap; on the smallest subsample,
k-means++ seedings of data rows are fitted until two agree on the lowest objective.
An iteration costs two M × B × K products (Z Uᵀ and Vᵀ Z); everything else is K × K,
K × M or K × B and is kept in float64, so float32 data only rounds those products.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mmconcepts.concepts.decomposition.coding import Features, LassoCoder, encode, nn_lasso

CODE_SWEEPS = 2  # coordinate-descent sweeps on the codes per iteration: cheap, and warm-started
FIRST_CODE_TOL = 1e-3  # the first codes, from zero, are solved to this KKT tolerance instead
BETA0, BETA_GROWTH = 0.5, 1.1  # extrapolation weight: start, growth after a success (≤ 1)
COARSEN = 4  # the initial atoms are fitted on 1 / COARSEN of the samples ...
COARSE_ROWS_PER_ATOM = 25  # ... while that leaves this many samples per atom
COARSE_TOL, COARSE_MAX_ITER = 1e-4, 200  # a start needs no tight fit
MAX_STARTS = 3  # seedings fitted on the smallest subsample (one in ~40 ends in a poor minimum) ...
AGREE = 1e-3  # ... until two of them reach the lowest objective within this fraction


class SemiNMF(LassoCoder):
    """Semi-NMF with an L1 penalty on the codes and unit-ball atoms, scikit-learn style.

    ``device``: "cpu" (default), "cuda", or "auto" (CUDA when present). Attributes after ``fit``: ``components_``
    (K × B), ``n_iter_`` (iterations on all samples, after the subsampled start),
    ``objective_`` (on the training data, with the exact codes),
    ``objective_history_`` (after each iteration, the last entry after the final exact
    code solve), ``reconstruction_err_`` (‖Z − V U‖_F on the training data).

    The history never increases in exact arithmetic; with float64 data it is
    non-increasing as computed, with float32 data up to the rounding of the float32
    products (about 1e-8 of ‖Z‖²_F). ``tol`` stops the fit when an iteration
    lowers the objective by less than that fraction.
    """

    def __init__(self, n_components=20, alpha=1.0, max_iter=500, tol=1e-6, random_state=0, device="cpu"):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device

    def _fit(self, feats: Features) -> torch.Tensor:
        K, alpha = int(self.n_components), float(self.alpha)
        gen = torch.Generator()
        gen.manual_seed(int(self.random_state)) if self.random_state is not None else gen.seed()
        U = _initial_atoms(feats, K, alpha, gen)
        U, Vt, history = _alternate(feats, U, alpha, self.max_iter, self.tol, gen)
        Vt, obj = encode(feats, U, alpha, Vt)
        history.append(obj)
        self._set_result(Vt, U, obj)
        self.n_iter_ = len(history) - 1
        self.objective_history_ = np.array(history)
        return Vt


def _alternate(feats: Features, U, alpha, max_iter, tol, gen):
    """Alternating updates from atoms U; return the last (U, V) and the objective after each iteration."""
    K, M, zz = U.shape[0], feats.Z.shape[0], feats.zz

    def objective(Vt, Ct, G):  # ‖Z − V U‖² = ‖Z‖² − 2⟨V, Z Uᵀ⟩ + ⟨V, U Uᵀ V⟩
        return 0.5 * (zz - 2 * float((Vt * Ct).sum()) + float((Vt * (G @ Vt)).sum())) + alpha * float(Vt.sum())

    Vt = torch.zeros(K, M, dtype=torch.float64, device=U.device)
    Ue, Ve = U.clone(), Vt.clone()  # where the next step starts: U, V or an extrapolation
    f, beta = float("inf"), BETA0
    history: list[float] = []
    for n_iter in range(1, max_iter + 1):
        Ct, G = feats.project(Ue), Ue @ Ue.T
        if n_iter > 1 and objective(Ve, Ct, G) > f:  # extrapolation rejected: restart from the iterate
            beta /= 2
            Ue, Ve = U.clone(), Vt.clone()
            Ct, G = feats.project(Ue), Ue @ Ue.T
        elif n_iter > 1:
            beta = min(1.0, beta * BETA_GROWTH)

        if n_iter == 1:  # from zero codes, a few sweeps would send the first atom update far off
            nn_lasso(Ct, G, alpha, Ve, tol=FIRST_CODE_TOL)
        else:
            nn_lasso(Ct, G, alpha, Ve, tol=None, max_sweeps=CODE_SWEEPS)
        _replace_weak_atoms(feats, Ue, Ve, Ct, G, alpha, gen)
        A, Bm = Ve @ Ve.T, feats.combine(Ve)
        _update_atoms(Ue, A, Bm)
        f_new = 0.5 * (zz - 2 * float((Bm * Ue).sum()) + float((A * (Ue @ Ue.T)).sum())) + alpha * float(Ve.sum())
        history.append(f_new)
        converged = f - f_new <= tol * abs(f_new)
        f = f_new

        U_prev, V_prev, U, Vt = U, Vt, Ue, Ve
        if converged:
            break
        Ue = U + beta * (U - U_prev)
        Ue /= torch.linalg.vector_norm(Ue, dim=1, keepdim=True).clamp_min(1.0)
        Ve = (Vt + beta * (Vt - V_prev)).clamp_min_(0)
    return U, Vt, history


def _initial_atoms(feats: Features, K: int, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """Atoms fitted on a seeded quarter of the samples (recursively), or on all of few samples.

    The first iterations, far from any minimum, are the slowest part of a fit; on a
    subsample they cost a fraction, and its atoms start the full fit close to its minimum.
    """
    if _smallest(feats, K):
        return _best_start(feats, K, alpha, gen)
    M = feats.Z.shape[0]
    rows = torch.randperm(M, generator=gen)[: M // COARSEN].sort().values.to(feats.Z.device)
    sub = feats.subset(rows)
    if _smallest(sub, K):  # its start is already fitted on it
        return _best_start(sub, K, alpha, gen)
    return _alternate(sub, _initial_atoms(sub, K, alpha, gen), alpha, COARSE_MAX_ITER, COARSE_TOL, gen)[0]


def _smallest(feats: Features, K: int) -> bool:
    """Whether a quarter of these samples would leave too few per atom to fit on."""
    return feats.Z.shape[0] // COARSEN < COARSE_ROWS_PER_ATOM * K


def _best_start(feats: Features, K: int, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """Atoms of the lowest objective among seedings fitted on all of ``feats``.

    From one seeding, a few fits in a hundred end where three atoms are each the sum of
    two of three true atoms: every atom is well used, so no re-seeding can tell, but the
    objective is some 5 % higher. So seedings are fitted until two of them reach the
    lowest objective found (within AGREE), at most MAX_STARTS: two on most problems, and
    a failure needs all three to fail. On the smallest subsample a start costs little
    next to the full fit.
    """
    fits: list[tuple[float, torch.Tensor]] = []
    for _ in range(MAX_STARTS):
        U, _, history = _alternate(feats, _seed_atoms(feats, K, gen), alpha, COARSE_MAX_ITER, COARSE_TOL, gen)
        fits.append((history[-1], U))
        best = min(f for f, _ in fits)
        if sum(f <= best * (1 + AGREE) for f, _ in fits) >= 2:
            break
    return min(fits, key=lambda fit: fit[0])[1]


def _seed_atoms(feats: Features, K: int, gen: torch.Generator) -> torch.Tensor:
    """K data rows scaled to unit norm, spread out by k-means++ seeding on their directions."""
    Z, M = feats.Z, feats.Z.shape[0]
    inv_norm = 1 / feats.sq.sqrt().clamp_min(1e-12)

    def cosine_distance(i):  # to row i, without a normalised copy of Z
        return (1 - feats.project(Z[i : i + 1].double())[0] * inv_norm * inv_norm[i]).clamp_min(0)

    idx = [int(torch.randint(M, (1,), generator=gen))]
    dist = cosine_distance(idx[0])
    for _ in range(1, K):
        p = dist.square().cpu()
        if float(p.sum()) <= 0:  # every row repeats a chosen direction: take any unchosen row
            p = torch.ones(M, dtype=torch.float64)
            p[idx] = 0
        idx.append(int(torch.multinomial(p, 1, generator=gen)))
        dist = torch.minimum(dist, cosine_distance(idx[-1]))
    return Z[idx].double() * inv_norm[idx, None]


def _replace_weak_atoms(feats: Features, U, Vt, Ct, G, alpha, gen) -> None:
    """Move atoms that explain less than one badly fitted sample would (U and Vt in place).

    With every other code fixed, dropping atom k raises the objective by
    cost_k = Σ_i v_ik (⟨r_i, u_k⟩ − α + ½ v_ik ‖u_k‖²), r_i the residual of sample i,
    and an atom along r_j, used by sample j alone with code ‖r_j‖ − α, lowers it by
    ½ (‖r_j‖ − α)². So the atom of least cost is moved onto the largest residual of a
    sample that does not use it when that gain is larger: a strict decrease. It frees
    atoms stuck on one outlier (a sample of pure noise fitted exactly), which otherwise
    stay in use for good and leave two true atoms merged into one.

    Unused atoms (cost 0) are pointed at the residuals of samples drawn with probability
    ∝ squared residual (seeded), without repeats; their codes stay 0 until the next code step.
    """
    res = (feats.sq - 2 * (Vt * Ct).sum(dim=0) + (Vt * (G @ Vt)).sum(dim=0)).clamp_min(0)
    used = Vt > 0
    dead = torch.nonzero(~used.any(dim=1)).flatten()
    cost = (Vt * (Ct - G @ Vt - alpha + 0.5 * Vt * torch.diagonal(G)[:, None])).sum(dim=1)
    cost[dead] = math.inf
    k = int(cost.argmin())
    j = int(torch.where(used[k], -1.0, res).argmax())
    r = feats.Z[j].double() - Vt[:, j] @ U
    r_norm = float(torch.linalg.vector_norm(r))
    if not used[k, j] and r_norm > alpha and 0.5 * (r_norm - alpha) ** 2 > float(cost[k]):
        U[k] = r / r_norm
        Vt[k] = 0
        Vt[k, j] = r_norm - alpha
        res[j] = 0  # explained now: not a target for an unused atom
    if dead.numel() == 0 or int((res > 0).sum()) < dead.numel():  # none, or (almost) exact fit
        return
    rows = torch.multinomial(res.cpu(), dead.numel(), replacement=False, generator=gen).to(U.device)
    R = feats.Z[rows].double() - Vt[:, rows].T @ U
    U[dead] = R / torch.linalg.vector_norm(R, dim=1, keepdim=True).clamp_min(1e-12)


def _update_atoms(U: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor) -> None:
    """One block-coordinate pass over the atoms (in place), each projected on the unit ball.

    Atom k minimises ½ A_kk ‖u_k − w_k‖² with w_k = u_k + (B_k − A_k U) / A_kk, U being
    the atoms as updated so far. Atoms go in blocks of about √K: the residuals B − A U
    of a block come from one product with U, and the block's own updates correct them
    by rank-one steps, so U is read K / √K times instead of K times.
    """
    K = U.shape[0]
    size = max(1, math.isqrt(K))
    for s in range(0, K, size):
        e = min(s + size, K)
        P = Bm[s:e] - A[s:e] @ U
        for k in range(s, e):
            if A[k, k] <= 0:  # unused atom: any value is optimal, keep it
                continue
            u = U[k : k + 1] + P[k - s : k - s + 1] / A[k, k]
            u /= torch.linalg.vector_norm(u).clamp_min(1.0)
            P -= A[s:e, k : k + 1] @ (u - U[k : k + 1])
            U[k : k + 1] = u
