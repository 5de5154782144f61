"""Distributions of the learning channel's random feedback matrices.

A feedback matrix ``C^{h,k}`` carries the signal of a source layer k down to layer h; it
has the shape ``(N_h, N_k)`` of the transposed forward map (for RBP, the shape of
``(W^{h+1})ᵀ``; for SRBP, ``N_h × N_L``, paper 1 section 7.7).

Distributions (paper 1, sections 3 and 4.2, Figures 3-4):

- ``normal``: the scaled normal of Glorot & Bengio, std sqrt(2/(N_h+N_k)) (default);
- ``uniform``: the scaled uniform on ±sqrt(6/(N_h+N_k));
- ``sign``: random ±1 (probability 1/2 each);
- ``sparse``: (0,1) Bernoulli, each entry 1 with probability p = n / N_h, where N_h is the
  fan-in of the forward map the matrix stands in for, so each source neuron reaches n
  neurons of layer h on average ("Sparse-n", Figure 3).  n = 0 sends nothing and n = N_h
  sends the same signal to every neuron of the layer (the failing extremes of Figure 4).
  For chained channels (a source layer k < L, as in RBP) the entries are scaled by
  1/sqrt(n) (Figure 4 caption) so the signal does not grow exponentially with depth.

``mean`` shifts normal/uniform draws to a non-zero mean (section 4.2 item 3); it is an
absolute value added to every entry.

``congruent=True`` gives every entry the sign of the corresponding forward weight
(section 3, "congruent weights"; Fact 4) and keeps the drawn magnitude:
``C = |draw| ⊙ sign(M)`` with ``M = (W^{h+1})ᵀ`` for a chained connection.  For a skip
connection h ← k with k > h+1 there is no single corresponding weight; the reference is
the matrix BP would use there, the product of the transposed forward matrices between
h and k, ``M = (W^{h+1})ᵀ (W^{h+2})ᵀ ⋯ (W^k)ᵀ`` (SBP's feedback matrix, section 3).  A
zero reference entry counts as positive.  Congruent magnitudes are the same numbers as
the non-congruent draw from the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch

from ..engine.init import glorot_std

DISTRIBUTIONS = ("normal", "uniform", "sign", "sparse")
SPARSE_SCALES = ("auto", "none", "sqrt")


@dataclass(frozen=True)
class FeedbackInit:
    """How to draw one feedback matrix.

    distribution: normal | uniform | sign | sparse.
    mean: added to every entry of normal/uniform draws (absolute value, not scaled).
    n: expected non-zeros per source neuron for ``sparse`` (0 <= n <= N_h).
    sparse_scale: ``"auto"`` scales sparse entries by 1/sqrt(n) in chained connections
        only (source layer below the output), ``"none"`` never, ``"sqrt"`` always.
    scale: multiplies the drawn matrix (after the mean shift).
    congruent: give every entry the sign of the corresponding forward weight (or of the
        product of transposed forward matrices for a skip connection), section 3.
    """

    distribution: str = "normal"
    mean: float = 0.0
    n: float | None = None
    sparse_scale: str = "auto"
    scale: float = 1.0
    congruent: bool = False

    def __post_init__(self):
        for key in ("mean", "scale") + (("n",) if self.n is not None else ()):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"feedback {key} must be a finite number, got {v!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"feedback distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if self.distribution == "sparse":
            if self.n is None or not self.n >= 0:
                raise ValueError("feedback distribution 'sparse' needs n >= 0 (expected non-zeros per source neuron)")
        elif self.n is not None:
            raise ValueError(f"feedback n applies only to distribution 'sparse', not {self.distribution!r}")
        if self.sparse_scale not in SPARSE_SCALES:
            raise ValueError(f"feedback sparse_scale must be one of {SPARSE_SCALES}, got {self.sparse_scale!r}")
        if self.mean != 0.0 and self.distribution not in ("normal", "uniform"):
            raise ValueError("feedback mean applies only to distributions 'normal' and 'uniform'")
        if not isinstance(self.congruent, bool):
            raise ValueError(f"feedback congruent must be true or false, got {self.congruent!r}")

    @classmethod
    def from_options(cls, value: "FeedbackInit | dict | str | None") -> "FeedbackInit":
        """A FeedbackInit from itself, a dict of its fields, a distribution name or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(distribution=value)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                raise ValueError(f"unknown feedback option(s) {unknown}; accepted: {sorted(cls.__dataclass_fields__)}")
            return cls(**value)
        raise ValueError(f"feedback must be a dict of {sorted(cls.__dataclass_fields__)} or a distribution name, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def zero_mean(self) -> bool:
        """Whether entries have expectation zero (normal/uniform without mean, sign)."""
        return self.distribution in ("normal", "uniform", "sign") and self.mean == 0.0

    def density(self, n_h: int) -> float:
        """Expected fraction of non-zero entries in a matrix reaching a layer of n_h."""
        if self.distribution != "sparse":
            return 1.0
        return min(1.0, self.n / n_h)

    def check(self, n_h: int) -> None:
        """Raise ValueError if a matrix reaching a layer of ``n_h`` neurons cannot be drawn."""
        if self.distribution == "sparse" and self.n > n_h:
            raise ValueError(f"feedback sparse n={self.n} exceeds the receiving layer's size {n_h} "
                             f"(p = n / fan-in must be <= 1)")

    def draw(self, shape: tuple[int, ...], fan_in: int, fan_out: int, generator: torch.Generator,
             chained: bool, dtype=torch.float32, sign_like: torch.Tensor | None = None,
             synapses: int | None = None) -> torch.Tensor:
        """One feedback parameter of ``shape`` standing in for a forward map with
        ``fan_in`` inputs (the receiving layer, N_h) and ``fan_out`` outputs (N_k): for a
        dense route ``shape = (N_h, N_k)``.  The scales (Glorot's, sparse n / fan-in) come
        from the fan-in and fan-out, not from the shape.

        ``synapses=m`` draws ``(*shape, m)``: an independent matrix for each of m
        synapses per receiving neuron (per-synapse feedback, section 4.2 item 7).
        ``sign_like`` (of ``shape``) is the reference whose signs congruent feedback
        takes; it is required when ``congruent`` is set.
        """
        shape = tuple(shape) if synapses is None else (*shape, synapses)
        n_h, n_k = fan_in, fan_out
        d = self.distribution
        if d == "normal":
            C = torch.randn(shape, generator=generator, dtype=dtype) * glorot_std(n_h, n_k) + self.mean
        elif d == "uniform":
            limit = math.sqrt(6.0 / (n_h + n_k))
            C = (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * limit + self.mean
        elif d == "sign":
            C = torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
        else:
            self.check(n_h)
            C = (torch.rand(shape, generator=generator, dtype=dtype) < self.n / n_h).to(dtype)
            if self.n > 0 and (self.sparse_scale == "sqrt" or (self.sparse_scale == "auto" and chained)):
                C = C / math.sqrt(self.n)
        if self.scale != 1.0:
            C = C * self.scale
        if self.congruent:
            if sign_like is None:
                raise ValueError("congruent feedback needs the forward weights' signs (sign_like)")
            s = torch.where(sign_like.to("cpu") >= 0, 1.0, -1.0).to(dtype)
            C = C.abs() * (s if synapses is None else s.unsqueeze(-1))
        return C


class MemberFeedback:
    """One :class:`FeedbackInit` per population member (populations across variants):
    member e's matrices are drawn from ``members[e]`` with member e's own generator, so a
    member equals the single run with its seed and its distribution (e.g. Sparse-8 and
    Sparse-2 of Table 1, or normal, uniform and ±1, in one population).

    Members must agree on ``congruent`` (whether the channel hands the forward weights'
    signs to the draw); ``zero_mean`` holds when it holds for every member (resampling
    refuses the population as it would refuse the single run of a non-zero-mean member)."""

    def __init__(self, members):
        self.members = tuple(FeedbackInit.from_options(m) for m in members)
        if not self.members:
            raise ValueError("feedback: a per-member list needs at least one member")
        if len({m.congruent for m in self.members}) > 1:
            raise ValueError(f"feedback: per-member distributions must agree on congruent, got "
                             f"{[m.congruent for m in self.members]}")

    def member(self, e: int) -> FeedbackInit:
        return self.members[e]

    @property
    def congruent(self) -> bool:
        return self.members[0].congruent

    @property
    def zero_mean(self) -> bool:
        return all(m.zero_mean for m in self.members)

    def density(self, n_h: int) -> float:
        """The largest member's density (a cost estimate covers every member)."""
        return max(m.density(n_h) for m in self.members)

    def check(self, n_h: int) -> None:
        for m in self.members:
            m.check(n_h)

    def __repr__(self) -> str:
        return f"MemberFeedback({list(self.members)})"
