"""Eq. 19 of paper 1 as the learning channel and the optimizer use it: the papers'
scales α, the readings of section 5.2's quantized weight updates (:class:`Reading`) and
the quantizer objects (:class:`Quantizer`, :class:`MemberQuantizer`) that quantize each
example's update and sum a minibatch of them.  The quantizer itself and its level
thresholds are :mod:`.quantize_levels`, the factored minibatch sum :mod:`.quantize_sum`
(their names are importable from here too).  Its own modules because both the learning
channel's transforms and the optimizer's per-example updates use them, and neither
should import the other."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Re-exported: eq. 19 itself, its thresholds and the minibatch sums are imported from here.
from .quantize_levels import (level_thresholds, product_thresholds, quantize, quantize_,  # noqa: F401
                              thresholds_available)
from .quantize_sum import factored_is_exact, n_level_elements, outer_sum_factored, outer_sum_loop  # noqa: F401

# The papers' scales α of eq. 19: 2⁻³ for error signals (section 5.1, Figures 6-7) and
# 2⁻⁶ for per-example weight updates (section 5.2).  Every default refers to these.
SIGNAL_ALPHA = 2.0 ** -3
UPDATE_ALPHA = 2.0 ** -6


# The readings of section 5.2 (issue 30): "Equation 19 is again used for quantization ...
# applied after the error signals have been backpropagated to all the hidden layers, but
# before summing over the minibatch" leaves three things open.
LR_PLACES = ("inside", "outside")  # Quantize(η·I_b O_bᵀ), or η·Quantize(I_b O_bᵀ)
BELOW = ("floor", "zero")          # a value below the lowest level: that level (eq. 19), or 0
REDUCTIONS = ("mean", "sum")       # over the minibatch's quantized per-example updates


@dataclass(frozen=True)
class Reading:
    """One reading of section 5.2's quantized weight updates.

    ``lr``: ``"inside"``: ΔW = R_b Quantize(η·I_b O_bᵀ) (η scales the value eq. 19 sees, so
    "weight updates need to be small" is about the update itself), ``"outside"``:
    ΔW = η·R_b Quantize(I_b O_bᵀ) (eq. 19 on the Hebbian product, η applied after).
    ``below``: ``"floor"``: eq. 19 as printed (a tiny value becomes α·2^{1−bits}),
    ``"zero"``: a zero level below it (:func:`quantize` with ``zero=True``).
    ``reduce``: R_b is the minibatch ``"mean"`` (1/B)Σ_b or the plain ``"sum"`` Σ_b.
    """

    lr: str = "outside"
    below: str = "zero"
    reduce: str = "mean"

    def __post_init__(self):
        for name, allowed in (("lr", LR_PLACES), ("below", BELOW), ("reduce", REDUCTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"update_{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    def scale(self, lr: float) -> float:
        """The factor applied to each example's update before eq. 19."""
        return lr if self.lr == "inside" else 1.0

    def count(self, B: int) -> int:
        """What the sum over B examples is divided by."""
        return B if self.reduce == "mean" else 1


# The default: the reading that reproduces section 5.2's claims at the paper's protocol
# (docs/channels.md, "Which reading": BP, RBP and SRBP all above 94% at 1 and 3 bits,
# within 2.7 points of each other).
DEFAULT_READING = Reading()
# The reading the engine used before the options existed (and the runs stored then):
# eq. 19 as printed on η·I·Oᵀ, averaged over the minibatch.
LEGACY_READING = Reading("inside", "floor", "mean")


class Quantizer:
    """Eq. 19 with fixed ``(α, bits)`` and a :class:`Reading` of section 5.2, as an
    in-place map on each example's update, with :meth:`outer_sum`, the minibatch sum of
    quantized outer products computed without forming every example's update, and the
    reading's direction ΔW/η (:meth:`outer_direction`, :meth:`examples_direction`).

    ``method``: ``"factored"`` (default) or ``"loop"`` (the per-example reference: every
    example's ``(N_h, N_{h-1})`` update formed and quantized, in chunks of examples).
    """

    METHODS = ("factored", "loop")

    def __init__(self, alpha: float, bits: int, method: str = "factored", reading: Reading = DEFAULT_READING):
        if bits < 1:
            raise ValueError(f"bits must be an integer >= 1, got {bits}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {', '.join(self.METHODS)}, got {method!r}")
        self.alpha, self.bits, self.method, self.reading = float(alpha), int(bits), method, reading
        self.zero = reading.below == "zero"

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return quantize_(u, self.alpha, self.bits, self.zero)

    def outer_sum(self, I: torch.Tensor, O: torch.Tensor, lr: float) -> torch.Tensor:
        """``Σ_b Quantize(lr · I_b O_bᵀ)``, shape ``(E, N_h, N_{h-1})``, for ``I``
        ``(E, B, N_h)`` and ``O`` ``(E, B, N_{h-1})`` (section 5.2, eq. 19)."""
        if (self.method == "loop" or not factored_is_exact(I.dtype, I.shape[1], self.bits)
                or not thresholds_available(self.alpha, self.bits, I.dtype, I.device, self.zero)):
            return outer_sum_loop(I, O, lr, self)
        return outer_sum_factored(I, O, lr, self.alpha, self.bits, self.zero)

    def outer_direction(self, I: torch.Tensor, O: torch.Tensor, lr: float) -> torch.Tensor:
        """ΔW/η of the reading for the per-example updates ``I_b O_bᵀ``: R_b Q(s·I_b O_bᵀ)/s
        (s = η inside, 1 outside; R the mean or the sum), by :meth:`outer_sum`."""
        return self.from_sum(self.outer_sum(I, O, self.reading.scale(lr)), I.shape[1], lr)

    def from_sum(self, total: torch.Tensor, B: int, lr: float) -> torch.Tensor:
        """ΔW/η from ``total`` = Σ_b Q(s·u_b) over B examples, in place."""
        return total.div_(self.reading.count(B) * self.reading.scale(lr))

    def examples_direction(self, u: torch.Tensor, lr: float) -> torch.Tensor:
        """ΔW/η of the reading for per-example updates ``u`` (examples on axis 1)."""
        s = self.reading.scale(lr)
        q = self(u * s)
        return (q.mean(1) if self.reading.reduce == "mean" else q.sum(1)) / s

    def __repr__(self) -> str:
        extra = "" if self.reading == DEFAULT_READING else f", reading={self.reading}"
        return f"Quantizer(alpha={self.alpha}, bits={self.bits}, method={self.method!r}{extra})"


class MemberQuantizer(Quantizer):
    """Eq. 19 with one number of bits per population member (populations across variants,
    e.g. Table 1's quantized-update rows 5, 3 and 1 bit in one population): each
    contiguous group of members with one ``bits`` is quantized by the :class:`Quantizer`
    of that ``bits`` on its slice of the population (one :class:`Reading` for all)."""

    def __init__(self, alpha: float, bits: list[int], method: str = "factored", reading: Reading = DEFAULT_READING):
        if not bits:
            raise ValueError("update_bits: a per-member list needs at least one member")
        super().__init__(alpha, max(int(b) for b in bits), method, reading)
        self.bits = [int(b) for b in bits]
        self.groups: list[tuple[int, int, Quantizer]] = []
        for e, b in enumerate(self.bits):
            if self.groups and self.groups[-1][2].bits == b:
                self.groups[-1] = (self.groups[-1][0], e + 1, self.groups[-1][2])
            else:
                self.groups.append((e, e + 1, Quantizer(alpha, b, method, reading)))

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        for a, z, q in self.groups:
            q(u[a:z])  # in place on the slice
        return u

    def outer_sum(self, I: torch.Tensor, O: torch.Tensor, lr: float) -> torch.Tensor:
        """:meth:`Quantizer.outer_sum` of every group, stacked on the member axis."""
        return torch.cat([q.outer_sum(I[a:z], O[a:z], lr) for a, z, q in self.groups])

    def __repr__(self) -> str:
        extra = "" if self.reading == DEFAULT_READING else f", reading={self.reading}"
        return f"MemberQuantizer(alpha={self.alpha}, bits={self.bits}{extra})"
