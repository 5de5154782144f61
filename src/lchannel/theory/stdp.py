"""A[1,1,1] under the STDP-like rule (paper 2 §3.6, §5.2, eq. 13-19, 32-33, Theorem 2′).

The hidden unit sees three phases (eq. 15-17): the forward pass O¹ = a_1I, then the
output fed back through the channel, O¹ + c_1O, then the clamped target fed back,
O¹ + c_1T.  Every weight learns from the *change* of its postsynaptic activity times its
presynaptic activity (eq. 13-14); the change of the hidden unit between phases 1 and 2 is
ΔO¹ = c_1(T − O), the SRBP signal (eq. 18), and that of the output unit is T − O:

* Δa_1 = ηΔO¹·I = ηc_1(T − O)I;
* Δa_2 = η(T − O)(a_1I + c_1O), the hidden activity of phase 1 (eq. 32);
* the channel: Δc_1 = ηΔO¹·O = ηc_1O(T − O) (**O-form**, eq. 32, ``rule="stdp"``), or
  Δc_1 = ηT·ΔO¹ = ηc_1T(T − O) (**T-form**, eq. 19, ``rule="stdp-t"``).

Averaged, with α = E(IT), β = E(I²), γ = E(T²), P = a_1a_2 and E = α − βP (eq. 33):

    da_1/dt = c_1E,   da_2/dt = (a_1 + c_1P)E = a_1(1 + c_1a_2)E (eq. 46),
    dc_1/dt = c_1PE (O-form)   or   c_1(γ − αP) (T-form).

The two channel rules differ at the minima: with the O-form dc_1/dt vanishes with E, so
the whole state converges (Theorem 2′); with the T-form dc_1/dt = c_1(γ − α²/β) on the
hyperbola P = α/β, and γ − α²/β = E(T²) − E(IT)²/E(I²) ≥ 0 (Cauchy-Schwarz) vanishes
only when T ∝ I: otherwise |c_1| grows exponentially while a_1a_2 → α/β.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import LearningSystem, MatrixLayout, ScalarData, check_finite, check_rule, check_statistics
from .rules import STDP_RULES
from .samples import Dataset

__all__ = ["STDPChain"]


class STDPChain(MatrixLayout, ScalarData, LearningSystem):
    """The averaged STDP-like learning of A[1,1,1]; state ``(a1, a2, c1)``.

    ``rule="stdp"``: the channel by eq. 32 (O-form, Theorem 2′); ``rule="stdp-t"``: by
    eq. 19 (T-form), which needs ``gamma`` = E(T²) >= α²/β.
    """

    names = ("a1", "a2", "c1")
    sizes = (1, 1, 1)
    depth = 2

    def __init__(self, alpha: float, beta: float, gamma: float | None = None, *, rule: str = "stdp") -> None:
        self.rule = check_rule(rule, STDP_RULES)
        self.alpha, self.beta = check_statistics(alpha, beta)
        if self.rule_spec.stdp == "target":
            if gamma is None:
                raise ValueError("gamma = E(T^2) is required for rule 'stdp-t' (the T-form of eq. 19: dc1/dt = c1(gamma - alpha P))")
            g = check_finite("gamma", gamma)
            floor = self.alpha**2 / self.beta
            if g < floor * (1 - 1e-12) - 1e-300:
                raise ValueError(f"gamma = E(T^2) must be >= alpha^2/beta = {floor:.6g} (Cauchy-Schwarz); got {gamma}")
            self.gamma: float | None = g
        else:
            self.gamma = None if gamma is None else check_finite("gamma", gamma)

    @classmethod
    def from_data(cls, data: Dataset, *, rule: str = "stdp") -> "STDPChain":
        """The system with α, β and γ = E(T²) of a one-input, one-target training set."""
        return cls(data.alpha, data.beta, float(np.mean(data.targets[:, 0] ** 2)), rule=rule)

    # ------------------------------------------------------------------ dynamics
    def product(self, y: np.ndarray) -> float:
        """P = a_1a_2."""
        return float(y[0] * y[1])

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Eq. 33 (O-form), or eq. 33 with dc_1/dt = c_1(γ − αP) (T-form, eq. 19)."""
        a1, a2, c1 = float(y[0]), float(y[1]), float(y[2])
        p = a1 * a2
        err = self.alpha - self.beta * p
        dc1 = c1 * p * err if self.rule_spec.stdp == "output" else c1 * (self.gamma - self.alpha * p)
        return np.array([c1 * err, (a1 + c1 * p) * err, dc1])

    def dP_factor(self, y: np.ndarray) -> float:
        """g = c_1a_2 + a_1(a_1 + c_1P) in dP/dt = g(α − βP)."""
        a1, a2, c1 = (float(v) for v in y)
        return c1 * a2 + a1 * (a1 + c1 * a1 * a2)

    def conserved(self, y: np.ndarray) -> dict[str, float]:
        """None is conserved; see :meth:`proof_quantities` for what the proof of Theorem 2′ uses."""
        return {}

    def proof_quantities(self, y: np.ndarray) -> dict[str, float]:
        """The quantities of the proof of Theorem 2′ (O-form), at ``y``.

        * ``c1``: keeps its sign, c_1(t) = c_1(0)exp ∫P(α − βP) (eq. 36);
        * ``a2 - c1``: d(a_2 − c_1)/dt = a_1(α − βP) (eq. 37);
        * ``sign(c1)*(alpha*a1 - beta*c1)``: non-decreasing, since
          d(αa_1 − βc_1)/dt = c_1(α − βP)² (eq. 44);
        * ``alpha - beta*P``: keeps its sign (it solves dE/dt = −βg E).
        """
        a1, a2, c1 = (float(v) for v in y)
        return {
            "c1": c1,
            "a2 - c1": a2 - c1,
            "sign(c1)*(alpha*a1 - beta*c1)": float(np.sign(c1)) * (self.alpha * a1 - self.beta * c1),
            "alpha - beta*P": self.alpha - self.beta * a1 * a2,
        }

    def channel_growth_rate(self) -> float:
        """d ln|c_1|/dt on the hyperbola P = α/β: 0 for the O-form, γ − α²/β >= 0 for the T-form."""
        if self.rule_spec.stdp == "output":
            return 0.0
        return self.gamma - self.alpha**2 / self.beta

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """Not available: no conserved quantity reduces eq. 33 to one dimension.

        Theorem 2′ proves convergence to P = α/β (O-form), which the tests check by
        integration; the particular point reached has no closed form.
        """
        raise NotImplementedError(
            "the STDP system (eq. 33) has no conserved quantity and no closed-form limit; Theorem 2' only proves "
            "convergence to the hyperbola alpha - beta*a1*a2 = 0 (check it with integrate())"
        )
