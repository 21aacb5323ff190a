"""Activations as non-negative lasso codes, shared by Semi-NMF and the random dictionary.

Every row i solves  min_{v ≥ 0} ½ v G vᵀ − v c_iᵀ + α Σ v,  which is the code of
sample z_i for the dictionary U when G = U Uᵀ and c_i = z_i Uᵀ, i.e.
½‖z_i − v U‖² + α‖v‖₁ up to a constant. K is small (tens to hundreds), so the
work per sweep is M × K², far below the M × B × K product that builds C.

Codes are kept transposed (K × M) so that a coordinate is a contiguous row.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from mmconcepts.concepts.decomposition._input import as_features, check_n_components
from mmconcepts.device import resolve_device
from mmconcepts.errors import MMConceptsError

TRANSFORM_TOL = 1e-7  # KKT tolerance (relative to the problem's scale) of an exact code solve
PARALLEL_WORK = 1 << 24  # multiply-adds below which an operation on Z stays on one thread


@contextlib.contextmanager
def cpu_threads(device: torch.device, n: int):
    """Run the block with ``n`` CPU threads (nothing changes on a GPU)."""
    if device.type != "cpu" or n == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Features:
    """Z (M × B) and the large operations on it, which alone run on all CPU threads.

    Everything else in a fit is many small K × M, K × K or K × B operations. Those run
    on one thread (``serial``): each small op that goes parallel waits at a barrier for
    every thread, and on a busy machine a descheduled thread turns each wait into a time
    slice (a fit measured over 10× slower on 2 shared cores).
    """

    def __init__(self, Zt: torch.Tensor, threads: int | None = None):
        self.Z = Zt
        self.threads = threads or torch.get_num_threads()
        with self.parallel(Zt.numel()):
            self.sq = torch.linalg.vector_norm(Zt, dim=1).double().square()  # ‖z_i‖²
        self.zz = float(self.sq.sum())

    def parallel(self, work: int):
        """All threads for ``work`` multiply-adds, if that is enough to be worth a barrier."""
        return cpu_threads(self.Z.device, self.threads if work >= PARALLEL_WORK else 1)

    def serial(self):
        return cpu_threads(self.Z.device, 1)

    def project(self, U: torch.Tensor) -> torch.Tensor:
        """C = U Zᵀ (K × M, float64): the right-hand sides of the codes' problems."""
        U = U.to(self.Z.dtype)
        with self.parallel(U.shape[0] * self.Z.numel()):
            C = U @ self.Z.T
        return C.double()

    def combine(self, Vt: torch.Tensor) -> torch.Tensor:
        """Vᵀ Z (K × B, float64): the right-hand sides of the atoms' problems."""
        Vt = Vt.to(self.Z.dtype)
        with self.parallel(Vt.shape[0] * self.Z.numel()):
            Bm = Vt @ self.Z
        return Bm.double()

    def subset(self, rows: torch.Tensor) -> Features:
        with self.parallel(rows.numel() * self.Z.shape[1]):
            return Features(self.Z[rows], self.threads)


def kkt_violation(Vt: torch.Tensor, Ct: torch.Tensor, G: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-sample largest violation of the optimality conditions (length M).

    With gradient g = G V − C + α, g must be 0 where v > 0 and ≥ 0 where v = 0.
    """
    g = G @ Vt - Ct + alpha
    return torch.where(Vt > 0, g.abs(), (-g).clamp_min(0)).amax(dim=0)


def nn_lasso(
    Ct: torch.Tensor,
    G: torch.Tensor,
    alpha: float,
    Vt: torch.Tensor | None = None,
    *,
    tol: float | None = TRANSFORM_TOL,
    max_sweeps: int = 10_000,
    check_every: int = 5,
) -> tuple[torch.Tensor, int]:
    """Solve every column of ``Ct`` (K × M) by cyclic coordinate descent; return (Vt, sweeps).

    ``Vt`` warm-starts the solve and is updated in place. The solve stops when every
    sample's KKT violation is at most ``tol`` times the scale of its problem
    (max(max_k |c_ik|, α)); samples that have converged drop out of later sweeps.
    ``tol=None`` runs exactly ``max_sweeps`` sweeps on all samples: the cheap inexact
    step inside a fit, where each sweep only has to decrease the objective.
    """
    K, M = Ct.shape
    if Vt is None:
        Vt = torch.zeros_like(Ct)
    diag = torch.diagonal(G)
    Vt[diag <= 0] = 0  # an all-zero atom gets a zero code
    live = torch.nonzero(diag > 0).flatten().tolist()
    inv = torch.where(diag > 0, 1 / diag, torch.zeros_like(diag))
    # v_k ← max(0, (c_k − α − Σ_{j≠k} G_kj v_j) / G_kk): one row-times-matrix product per
    # coordinate, with the diagonal removed and 1/G_kk folded into G and C beforehand.
    Gs = (G - torch.diag(diag)) * inv[:, None]
    Cs = (Ct - alpha) * inv[:, None]
    scale = Ct.abs().amax(dim=0).clamp_min(alpha) if tol is not None else None
    cols = torch.arange(M, device=Ct.device)
    sweeps = 0
    while sweeps < max_sweeps:
        every = cols.numel() == M
        V, C = (Vt, Cs) if every else (Vt[:, cols], Cs[:, cols])
        n = max_sweeps - sweeps if tol is None else min(check_every, max_sweeps - sweeps)
        for _ in range(n):
            for k in live:
                torch.clamp_min(C[k] - (Gs[k : k + 1] @ V)[0], 0, out=V[k])
        sweeps += n
        if not every:
            Vt[:, cols] = V
        if tol is None:
            break
        viol = kkt_violation(V, Ct[:, cols], G, alpha)
        cols = cols[viol > tol * scale[cols]]
        if cols.numel() == 0:
            break
    else:
        if tol is not None:
            warnings.warn(f"non-negative lasso: {cols.numel()} of {M} samples not converged after {max_sweeps} sweeps")
    return Vt, sweeps


def encode(feats: Features, U: torch.Tensor, alpha: float, Vt=None) -> tuple[torch.Tensor, float]:
    """Exact codes (K × M, float64) of the rows of Z for the atoms U, and the objective.

    ‖Z − V U‖² = ‖Z‖² − 2⟨V, Z Uᵀ⟩ + ⟨V, U Uᵀ V⟩ needs only K × M quantities, so the
    objective costs nothing beyond the product Z Uᵀ that the codes need anyway.
    """
    Ct = feats.project(U)
    with feats.serial():
        G = U @ U.T
        Vt = nn_lasso(Ct, G, alpha, Vt, tol=TRANSFORM_TOL)[0]
        fit = feats.zz - 2 * float((Vt * Ct).sum()) + float((Vt * (G @ Vt)).sum())
        return Vt, 0.5 * fit + alpha * float(Vt.sum())


def lasso_codes(Z, components, alpha: float, device, owner: str) -> tuple[np.ndarray, float]:
    """Codes (M × K) of the rows of Z for fixed atoms, and the objective: a transform."""
    Zt = as_features(Z, device=resolve_device(device))
    if Zt.shape[1] != components.shape[1]:
        raise MMConceptsError(f"{owner} was fitted on {components.shape[1]} features, got {Zt.shape[1]}")
    U = torch.as_tensor(components, dtype=torch.float64, device=Zt.device)
    Vt, obj = encode(Features(Zt), U, alpha)
    return np.ascontiguousarray(Vt.T.cpu().numpy()), obj


class LassoCoder(TransformerMixin, BaseEstimator):
    """Base of the dictionaries whose activations are non-negative lasso codes.

    Subclasses set ``components_`` (K × B) in ``_fit(feats)`` (run on one CPU thread,
    see ``Features``), which returns the training codes (K × M); ``alpha`` and
    ``device`` are their constructor parameters.
    """

    def fit(self, Z, y=None):
        self.fit_transform(Z)
        return self

    def fit_transform(self, Z, y=None):
        if self.alpha < 0:
            raise MMConceptsError(f"alpha must be ≥ 0, got {self.alpha}")
        Zt = as_features(Z, device=resolve_device(self.device))
        check_n_components(self.n_components, Zt.shape[0])
        feats = Features(Zt)
        with feats.serial():
            Vt = self._fit(feats)
        return np.ascontiguousarray(Vt.T.cpu().numpy())

    def transform(self, Z):
        return self._encode(Z)[0]

    def objective(self, Z) -> float:
        """½‖Z − V U‖²_F + α‖V‖₁ with V = transform(Z)."""
        return self._encode(Z)[1]

    def _encode(self, Z):
        if not hasattr(self, "components_"):
            raise MMConceptsError(f"{type(self).__name__} is not fitted yet: call fit first")
        return lasso_codes(Z, self.components_, self.alpha, self.device, type(self).__name__)

    def _set_result(self, Vt: torch.Tensor, U: torch.Tensor, objective: float) -> None:
        self.components_ = U.cpu().numpy()
        self.objective_ = objective
        fit = 2 * (objective - self.alpha * float(Vt.sum()))
        self.reconstruction_err_ = float(np.sqrt(max(fit, 0.0)))
