"""A[1, 1, 1] with the power non-linearity O¹ = (S¹)^μ in the hidden layer (paper 1 §7.9).

The network computes O = a_2 (a_1 I)^μ; c_1 is the learning-channel weight.  Statistics:
α = E(TI^μ), β = E(I^{2μ}), γ = E(TI), δ = E(I^{μ+1}); P = a_2 a_1^μ.

* ``derivative=False`` (eq. 113): the channel omits f'(S¹):
  da_2/dt = a_1^μ(α − βP),  da_1/dt = c_1(γ − δP).
  Both vanish only if P = α/β = γ/δ: in general there is no fixed point.
* ``derivative=True`` (eq. 114): the channel multiplies by f'(S¹) = μ(a_1I)^{μ-1}:
  da_2/dt = a_1^μ(α − βP),  da_1/dt = μc_1a_1^{μ-1}(α − βP).
* ``derivative="gradient"`` (eq. 119): gradient descent, c_1 replaced by a_2.

For non-integer μ the state must keep a_1 > 0 (inputs are positive too).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .base import LearningSystem, ScalarData, check_finite, check_statistics
from .onedim import march_to_root, monotone_roots, theorem1_limit

__all__ = ["PowerChain", "AdaptivePowerChain", "NoFixedPointError", "power_statistics"]

DERIVATIVE_MODES = (True, False, "gradient")


class NoFixedPointError(ArithmeticError):
    """The theory says this trajectory does not converge to a (non-trivial) fixed point."""


def power_statistics(inputs: np.ndarray, targets: np.ndarray, mu: float) -> dict[str, float]:
    """Empirical α = E(TI^μ), β = E(I^{2μ}), γ = E(TI), δ = E(I^{μ+1}) (eq. 113-114)."""
    i = np.asarray(inputs, dtype=float).ravel()
    t = np.asarray(targets, dtype=float).ravel()
    if i.shape != t.shape:
        raise ValueError(f"inputs and targets must have the same number of samples; got {i.shape} and {t.shape}")
    if float(mu) != int(mu) and np.any(i <= 0):
        raise ValueError("non-integer mu needs positive inputs (I^mu is undefined for I <= 0)")
    return {
        "alpha": float(np.mean(t * i**mu)),
        "beta": float(np.mean(i ** (2 * mu))),
        "gamma": float(np.mean(t * i)),
        "delta": float(np.mean(i ** (mu + 1))),
    }


class PowerChain(ScalarData, LearningSystem):
    """Averaged learning dynamics of the power-law A[1,1,1]; state ``(a1, a2)``.

    ``c1`` is required unless ``derivative="gradient"``; ``gamma`` and ``delta`` are
    required for ``derivative=False``.
    """

    names = ("a1", "a2")

    def __init__(self, mu: float, alpha: float, beta: float, c1: float | None = None, *, gamma: float | None = None, delta: float | None = None, derivative: bool | str = True) -> None:
        if not any(derivative is m or (isinstance(m, str) and derivative == m) for m in DERIVATIVE_MODES):
            raise ValueError(f"derivative must be one of True, False, 'gradient'; got {derivative!r}")
        self.derivative = derivative
        self.mu = check_finite("mu", mu)
        if self.mu <= 0:
            raise ValueError(f"mu must be > 0; got {mu}")
        self.alpha, self.beta = check_statistics(alpha, beta, "E(I^(2 mu))")
        if derivative == "gradient":
            if c1 is not None:
                raise ValueError("c1 must be None for derivative='gradient' (gradient descent uses a2)")
            self.c1 = None
        else:
            if c1 is None:
                raise ValueError(f"c1 (the channel weight) is required for derivative={derivative!r}")
            self.c1 = check_finite("c1", c1)
        if derivative is False:
            if gamma is None or delta is None:
                raise ValueError("derivative=False needs gamma = E(TI) and delta = E(I^(mu+1)) (eq. 113)")
            self.gamma = check_finite("gamma", gamma)
            self.delta = check_finite("delta", delta)
        else:
            self.gamma = None if gamma is None else check_finite("gamma", gamma)
            self.delta = None if delta is None else check_finite("delta", delta)

    @classmethod
    def from_data(cls, inputs: np.ndarray, targets: np.ndarray, mu: float, c1: float | None = None, *, derivative: bool | str = True) -> "PowerChain":
        """Build the system from samples, with the statistics of :func:`power_statistics`."""
        return cls(mu, c1=c1, derivative=derivative, **power_statistics(inputs, targets, mu))

    @property
    def integer_mu(self) -> bool:
        return float(self.mu).is_integer()

    def product(self, y: np.ndarray) -> float:
        """P = a_2 a_1^μ."""
        return float(y[1] * np.power(y[0], self.mu))

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Eq. 113, 114 or 119."""
        a1, a2 = float(y[0]), float(y[1])
        a1_mu = float(np.power(a1, self.mu))
        p = a2 * a1_mu
        err = self.alpha - self.beta * p
        da2 = a1_mu * err
        if self.derivative is False:
            da1 = self.c1 * (self.gamma - self.delta * p)
        else:
            gain = self.c1 if self.derivative is True else a2
            da1 = self.mu * gain * float(np.power(a1, self.mu - 1)) * err
        return np.array([da1, da2])

    def conserved(self, y: np.ndarray) -> dict[str, float]:
        """With the derivative: a_2 − a_1²/(2c_1μ) (eq. 115); gradient: a_1² − μa_2²; none without."""
        a1, a2 = float(y[0]), float(y[1])
        if self.derivative is True:
            return {"a2 - a1^2/(2*c1*mu)": a2 - a1**2 / (2 * self.c1 * self.mu)}
        if self.derivative == "gradient":
            return {"a1^2 - mu*a2^2": a1**2 - self.mu * a2**2}
        return {}

    def has_fixed_points(self, *, rtol: float = 1e-9) -> bool:
        """Whether critical points exist: always with the derivative; for eq. 113 only if α/β = γ/δ."""
        if self.derivative is not False:
            return True
        return abs(self.alpha * self.delta - self.beta * self.gamma) <= rtol * max(abs(self.alpha * self.delta), abs(self.beta * self.gamma), 1e-300)

    def fixed_point_function(self, y0: Sequence[float]) -> Callable[[float], float]:
        """h(t) = (t²/(2c_1μ) + K)t^μ with K = a_2(0) − a_1(0)²/(2c_1μ): fixed points solve α − βh(t) = 0 (eq. 117)."""
        if self.derivative is not True:
            raise ValueError("eq. 117 holds for derivative=True only")
        y0 = self.as_state(y0)
        k = y0[1] - y0[0] ** 2 / (2 * self.c1 * self.mu)
        return lambda t: (t * t / (2 * self.c1 * self.mu) + k) * t**self.mu

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """The critical point reached from ``y0`` (a_1(0) > 0).

        * ``derivative=True`` (Theorem 12): a_2 = a_1²/(2c_1μ) + K (eq. 115) reduces the
          system to da_1/dt = Q(a_1) = μc_1a_1^{μ-1}(α − βh(a_1)) (eq. 118); the positive roots
          of eq. 117 are found on the (at most two) intervals where h is monotone, and
          Theorem 1 picks the one reached.
        * ``derivative="gradient"``: a_1² − μa_2² = H is conserved; the fixed point is the
          unique solution of a_2a_1^μ = α/β on the branch of the trajectory.
        * ``derivative=False``: raises :class:`NoFixedPointError` unless α/β = γ/δ (eq. 113).
        """
        y0 = self.as_state(y0)
        a1, a2 = y0
        if a1 <= 0:
            raise ValueError(f"the prediction needs a1(0) > 0 (the domain of Theorem 12); got a1(0) = {a1}")
        target = self.alpha / self.beta
        if self.derivative is False:
            if not self.has_fixed_points():
                raise NoFixedPointError(
                    f"eq. 113 has no fixed point: it needs a2*a1^mu = alpha/beta = {target:.6g} and = gamma/delta = {self.gamma / self.delta:.6g} at once"
                )
            raise NotImplementedError("alpha/beta = gamma/delta: fixed points exist but no reduction is implemented; use integrate()")
        if self.derivative is True:
            c1, mu = self.c1, self.mu
            h = self.fixed_point_function(y0)
            k = a2 - a1**2 / (2 * c1 * mu)
            # h'(t) = t^{μ-1}((μ+2)t²/(2c_1μ) + Kμ): at most one critical point on t > 0.
            tc2 = -2 * c1 * mu**2 * k / (mu + 2)
            pieces = [(0.0, math.sqrt(tc2)), (math.sqrt(tc2), math.inf)] if tc2 > 0 else [(0.0, math.inf)]
            roots = [r for r in monotone_roots(h, target, pieces) if r > 0]

            def q(t: float) -> float:
                return mu * c1 * t ** (mu - 1) * (self.alpha - self.beta * h(t))

            x = theorem1_limit(q, roots, a1, lower=0.0)
            if not (0 < x < math.inf):
                raise NoFixedPointError(f"a1 tends to {x}: outside the hypotheses of Theorem 12 (alpha, beta, c1 > 0)")
            return np.array([x, x * x / (2 * c1 * mu) + k])
        return self._gradient_limit(a1, a2, target)

    def _gradient_limit(self, a1: float, a2: float, target: float) -> np.ndarray:
        mu = self.mu
        hh = a1**2 - mu * a2**2
        if hh > 0:
            # a_1 = √(μa_2² + H) > 0 on the whole branch; x ↦ x(μx² + H)^{μ/2} is increasing.
            phi = lambda x: x * (mu * x * x + hh) ** (mu / 2)  # noqa: E731
            if target > 0:
                (x,) = monotone_roots(phi, target, [(0.0, math.inf)])
            else:
                (x,) = monotone_roots(lambda z: -phi(-z), -target, [(0.0, math.inf)])
                x = -x
            return np.array([math.sqrt(mu * x * x + hh), x])
        if hh == 0:
            raise ValueError("degenerate initial condition a1^2 = mu*a2^2")
        sigma = math.copysign(1.0, a2)
        if sigma * target <= 0:
            raise NoFixedPointError("a2 has the wrong sign for a2*a1^mu = alpha/beta on this branch: a1 decays to 0")
        phi = lambda t: t**mu * math.sqrt((t * t - hh) / mu)  # noqa: E731
        (t,) = monotone_roots(phi, abs(target), [(0.0, math.inf)])
        return np.array([t, sigma * math.sqrt((t * t - hh) / mu)])


class AdaptivePowerChain(ScalarData, LearningSystem):
    """The power-law A[1,1,1] with an adaptive channel c_1 (paper 2 §5.9, eq. 132-137); state ``(a1, a2, c1)``.

    O¹ = (a_1I)^μ, O = a_2O¹, and the derivative of the hidden unit is used (eq. 132):

        da_2/dt = a_1^μ(α − βP),  da_1/dt = μc_1a_1^{μ-1}(α − βP),  dc_1/dt = a_1^μ(α − βP),

    with P = a_2a_1^μ, α = E(TI^μ), β = E(I^{2μ}).  a_1 > 0 is the domain (a_1^μ for real μ).
    """

    names = ("a1", "a2", "c1")

    def __init__(self, mu: float, alpha: float, beta: float) -> None:
        self.mu = check_finite("mu", mu)
        if self.mu <= 0:
            raise ValueError(f"mu must be > 0; got {mu}")
        self.alpha, self.beta = check_statistics(alpha, beta, "E(I^(2 mu))")

    @classmethod
    def from_data(cls, inputs: np.ndarray, targets: np.ndarray, mu: float) -> "AdaptivePowerChain":
        """The system with α = E(TI^μ), β = E(I^{2μ}) of the samples (:func:`power_statistics`)."""
        stats = power_statistics(inputs, targets, mu)
        return cls(mu, stats["alpha"], stats["beta"])

    def product(self, y: np.ndarray) -> float:
        """P = a_2 a_1^μ."""
        return float(y[1] * np.power(y[0], self.mu))

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Eq. 132."""
        a1, a2, c1 = float(y[0]), float(y[1]), float(y[2])
        with np.errstate(invalid="ignore", divide="ignore"):  # a1 < 0 (real mu): nan, and integrate() reports "failed"
            a1_mu = float(np.power(a1, self.mu))
            err = self.alpha - self.beta * a2 * a1_mu
            return np.array([self.mu * c1 * float(np.power(a1, self.mu - 1)) * err, a1_mu * err, a1_mu * err])

    def conserved(self, y: np.ndarray) -> dict[str, float]:
        """c_1 − a_2 (eq. 134: dc_1/dt = da_2/dt) and a_1² − μc_1² (eq. 133-134: a_1da_1/dt = μc_1dc_1/dt)."""
        a1, a2, c1 = float(y[0]), float(y[1]), float(y[2])
        return {"c1 - a2": c1 - a2, "a1^2 - mu*c1^2": a1**2 - self.mu * c1**2}

    def reduction(self, y0: Sequence[float]) -> tuple[str, float, Callable, Callable]:
        """(parameter, x0, state(x), Q(x)): the one-dimensional reduction along K_1 = c_1 − a_2 and H = a_1² − μc_1².

        * H > 0 (the paper's K = μc_1² − a_1² < 0): a_1 = √(H + μc_1²) > 0 never vanishes;
          x = c_1 ∈ ℝ and dc_1/dt = Q(c_1) = a_1^μ(α − β(c_1 − K_1)a_1^μ), which is +∞ at −∞
          and −∞ at +∞: a global minimum is always reached.
        * H < 0 (K > 0, eq. 135-137): c_1 = ±√((a_1² − H)/μ) keeps its sign; x = a_1 > 0 and
          da_1/dt = Q(a_1) = μc_1a_1^{μ-1}(α − β(c_1 − K_1)a_1^μ) (eq. 136).  Near a_1 = 0,
          Q has the sign of c_1α: when c_1α < 0 the trajectory can run to the line a_1 = 0.
        """
        y0 = self.as_state(y0)
        a1, a2, c1 = (float(v) for v in y0)
        if a1 <= 0:
            raise ValueError(f"the reduction needs a1(0) > 0 (the domain of the power a1^mu); got a1(0) = {a1}")
        mu, alpha, beta = self.mu, self.alpha, self.beta
        k1, h = c1 - a2, a1**2 - mu * c1**2
        if abs(h) <= 1e-13 * max(1.0, a1**2, mu * c1**2):
            raise ValueError(f"degenerate initial condition a1^2 = mu*c1^2 ({a1}, {c1}): the invariant curve passes through a1 = c1 = 0")
        if h > 0:
            def state(x):
                x = np.asarray(x, dtype=float)
                return np.array([np.sqrt(h + mu * x * x), x - k1, x])

            def q(x):
                a, b, c = state(x)
                a_mu = np.power(a, mu)
                return a_mu * (alpha - beta * b * a_mu)

            return "c1", c1, state, q
        sigma = math.copysign(1.0, c1)

        def state(x):
            x = np.asarray(x, dtype=float)
            c = sigma * np.sqrt((x * x - h) / mu)
            return np.array([x, c - k1, c])

        def q(x):
            a, b, c = state(x)
            with np.errstate(invalid="ignore", divide="ignore"):
                return mu * c * np.power(a, mu - 1) * (alpha - beta * b * np.power(a, mu))

        return "a1", a1, state, q

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """The point reached from ``y0``, by Theorem 1 on :meth:`reduction`.

        If the flow runs down to a_1 = 0 with no root of Q on the way, the limit for μ > 1
        is the *trivial* fixed point (0, c_1* − K_1, c_1*) with c_1* = ±√(−H/μ), where
        a_1^μ = 0 stops every equation: not a minimum of the error (Theorem 7 of paper 2
        says "convergent", which is true, but not to a global minimum).  For μ < 2 that
        point is reached in finite time (a_1^{μ-1} is not Lipschitz); for μ <= 1 a_1 would
        cross 0, out of the domain: :class:`NoFixedPointError`.
        """
        name, x0, state, q = self.reduction(y0)
        x = march_to_root(q, x0)
        lower = name == "a1" and (x <= 1e-12 or x == -math.inf)
        if lower:
            if self.mu <= 1:
                raise NoFixedPointError(f"a1 reaches 0 in finite time (mu = {self.mu} <= 1): the trajectory leaves the domain a1 > 0")
            return state(0.0)
        if not math.isfinite(x):
            raise NoFixedPointError(f"{name} -> {x}: Q has no root in the direction of the flow")
        return state(x)
