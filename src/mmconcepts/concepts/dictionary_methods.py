"""The decomposition methods, in report order, and what each one's figures mean.

The one list of method names: the workflow, the decomposer, the dictionary store
and the evaluation all read it. The Snakefile imports it at start, so it imports
nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodFacts:
    coding: str  # how activations are computed: "lasso", "projection" (centred) or "distance" (1 / (1 + d))
    reconstruction: bool  # v U (+ mean) approximates z, so its error is a figure of the method
    sparsity: bool  # zero activations are the method's doing, so their fraction is a figure of it
    sign_free: bool  # u and −u are the same solution: the activation's sign carries no meaning


# k-means and the largest-norm samples code by 1 / (1 + distance): those are not coefficients,
# so v U rebuilds nothing and no activation is ever zero. PCA's projections are dense.
FACTS = {
    "snmf": MethodFacts("lasso", reconstruction=True, sparsity=True, sign_free=False),
    "pca": MethodFacts("projection", reconstruction=True, sparsity=False, sign_free=True),
    "kmeans": MethodFacts("distance", reconstruction=False, sparsity=False, sign_free=False),
    "simple": MethodFacts("distance", reconstruction=False, sparsity=False, sign_free=False),
    "random": MethodFacts("lasso", reconstruction=True, sparsity=True, sign_free=False),
}
METHODS = tuple(FACTS)
