"""Distributions of the learning channel's random feedback matrices.

A feedback matrix ``C`` carries the signal of a source layer k down to layer h; it has
the shape ``(N_h, N_k)`` of the transposed forward map (for RBP, the shape of
``(W^{h+1})ᵀ``; for SRBP, ``N_h × N_L``, paper 1 section 7.7).

Distributions (paper 1, sections 3 and 4.2, Figures 3-4):

- ``normal``: the scaled normal of Glorot & Bengio, std sqrt(2/(N_h+N_k)) (default);
- ``uniform``: the scaled uniform on ±sqrt(6/(N_h+N_k));
- ``sign``: random ±1;
- ``sparse``: (0,1) Bernoulli, each entry 1 with probability n / N_h, so each source
  neuron reaches n neurons of layer h on average ("Sparse-n"); n = 0 sends nothing and
  n = N_h sends the same signal to every neuron (the failing extremes of Figure 4).
  For chained channels (RBP) the entries are scaled by 1/sqrt(n) (Figure 4 caption) so
  the signal does not grow exponentially with depth.

``mean`` shifts normal/uniform draws to a non-zero mean (section 4.2 item 3); it is an
absolute value added to every entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch

from ..init import glorot_std

DISTRIBUTIONS = ("normal", "uniform", "sign", "sparse")


@dataclass(frozen=True)
class FeedbackInit:
    """How to draw one feedback matrix.

    distribution: normal | uniform | sign | sparse.
    mean: added to every entry of normal/uniform draws (absolute value, not scaled).
    n: expected non-zeros per source neuron for ``sparse`` (0 <= n <= N_h).
    sparse_scale: ``"auto"`` scales sparse entries by 1/sqrt(n) in chained channels only,
        ``"none"`` never, ``"sqrt"`` always.
    scale: multiplies the drawn matrix (after the mean shift).
    """

    distribution: str = "normal"
    mean: float = 0.0
    n: float | None = None
    sparse_scale: str = "auto"
    scale: float = 1.0

    def __post_init__(self):
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"feedback distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if self.distribution == "sparse":
            if self.n is None or self.n < 0:
                raise ValueError("feedback distribution 'sparse' needs n >= 0 (expected non-zeros per source neuron)")
        elif self.n is not None:
            raise ValueError(f"feedback n applies only to distribution 'sparse', not {self.distribution!r}")
        if self.sparse_scale not in ("auto", "none", "sqrt"):
            raise ValueError(f"feedback sparse_scale must be one of ('auto', 'none', 'sqrt'), got {self.sparse_scale!r}")
        if self.mean != 0.0 and self.distribution not in ("normal", "uniform"):
            raise ValueError("feedback mean applies only to distributions 'normal' and 'uniform'")

    def to_dict(self) -> dict:
        return asdict(self)

    def draw(self, n_h: int, n_k: int, generator: torch.Generator, chained: bool,
             dtype=torch.float32) -> torch.Tensor:
        """One ``(n_h, n_k)`` matrix carrying signals from a layer of n_k to one of n_h."""
        d = self.distribution
        if d == "normal":
            C = torch.randn((n_h, n_k), generator=generator, dtype=dtype) * glorot_std(n_h, n_k) + self.mean
        elif d == "uniform":
            limit = math.sqrt(6.0 / (n_h + n_k))
            C = (torch.rand((n_h, n_k), generator=generator, dtype=dtype) * 2 - 1) * limit + self.mean
        elif d == "sign":
            C = torch.randint(0, 2, (n_h, n_k), generator=generator).to(dtype) * 2 - 1
        else:
            if self.n > n_h:
                raise ValueError(f"feedback sparse n={self.n} exceeds the receiving layer's size {n_h}")
            p = self.n / n_h
            C = (torch.rand((n_h, n_k), generator=generator, dtype=dtype) < p).to(dtype)
            if self.n > 0 and (self.sparse_scale == "sqrt" or (self.sparse_scale == "auto" and chained)):
                C = C / math.sqrt(self.n)
        return C * self.scale if self.scale != 1.0 else C
