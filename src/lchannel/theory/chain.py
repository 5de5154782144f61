"""Linear chains A[1, 1, 1], A[1, 1, 1, 1], ..., A[1, ..., 1] (paper 1 §7.2-7.4, paper 2 §5.2-5.4).

Forward weights a_1..a_L, learning-channel weights c_1..c_{L-1} (index = target layer),
P = a_1 a_2 ... a_L, α = E(IT), β = E(I²).  The averaged learning equations are

* SRBP (paper 1 eq. 23, 36, 45):  da_i/dt = c_i a_1...a_{i-1} (α − βP), c_L = 1;
* RBP (paper 1 eq. 87 for a chain): da_i/dt = c_i c_{i+1}...c_{L-1} a_1...a_{i-1} (α − βP);
* ARBP (paper 2 eq. 74-75): RBP for the a_i and dc_i/dt = a_1...a_i c_{i+1}...c_{L-1} (α − βP);
* ASRBP (paper 2 eq. 81-82): SRBP for the a_i and dc_i/dt = a_1...a_i (α − βP);
* GD (paper 1 eq. 52): da_i/dt = (P/a_i)(α − βP), for comparison.

For L = 2 RBP = SRBP (eq. 23) and ARBP = ASRBP (paper 2 eq. 24).  The reductions of the
adaptive chains live in :mod:`~lchannel.theory.reductions` (``Reduction`` and
``adaptive_pair_limit`` stay importable from here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.polynomial import Polynomial

from .base import RULES, LearningSystem, MatrixLayout, ScalarData, channel_weights, check_rule, check_statistics, fixed_channel
from .onedim import march_to_root, real_roots, theorem1_limit
from .power import NoFixedPointError
from .reductions import Reduction, adaptive_pair_limit, arbp_reduction, asrbp_reduction

__all__ = ["LinearChain", "Reduction", "adaptive_pair_limit"]

#: Deepest chain whose Q(a_1) is expanded into a polynomial (degree 2^5 − 1 = 31) for its roots.
MAX_EXPANDED_DEPTH = 5


class LinearChain(MatrixLayout, ScalarData, LearningSystem):
    """The averaged learning dynamics of the linear chain A[1, ..., 1] with L = ``depth`` layers.

    Parameters
    ----------
    alpha, beta:
        Data statistics α = E(IT) and β = E(I²) > 0.
    c:
        Learning-channel weights c_1..c_{L-1} for the fixed-channel rules ``rbp``/``srbp``.
        Must be omitted for ``arbp``/``asrbp`` (the c_i are then state variables and
        their initial values go in ``y0``) and for ``gd``.
    depth:
        Number of weight layers L >= 2; inferred from ``c`` when given.
    rule:
        One of ``"srbp"`` (default), ``"rbp"``, ``"arbp"``, ``"asrbp"``, ``"gd"``.

    The state is ``(a1, ..., aL)``, followed by ``(c1, ..., c_{L-1})`` for the adaptive rules.
    """

    def __init__(self, alpha: float, beta: float, c: Sequence[float] | None = None, *, depth: int | None = None, rule: str = "srbp") -> None:
        self.rule = check_rule(rule, RULES)
        self.alpha, self.beta = check_statistics(alpha, beta)
        c_arr = channel_weights(c)
        if c_arr is not None and depth is None:
            depth = c_arr.size + 1
        if depth is None:
            raise ValueError("give depth (number of weight layers L >= 2) or c (the L-1 channel weights)")
        if not isinstance(depth, (int, np.integer)) or depth < 2:
            raise ValueError(f"depth must be an integer >= 2; got {depth!r}")
        self.depth = int(depth)
        self.c = fixed_channel(self.rule, c, self.depth - 1, f"depth-1 = {self.depth - 1}")
        L = self.depth
        self.names = tuple(f"a{i}" for i in range(1, L + 1)) + (tuple(f"c{i}" for i in range(1, L)) if self.adaptive else ())
        self.sizes = (1,) * (L + 1)

    # ------------------------------------------------------------------ structure
    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(a, c): forward weights and channel weights (fixed or from the state)."""
        L = self.depth
        return (y[:L], y[L:]) if self.adaptive else (y[:L], self.c)

    def feedback(self, y: np.ndarray) -> np.ndarray:
        """The factor b_i multiplying a_1...a_{i-1}(α − βP) in da_i/dt, i = 1..L.

        The scalar form of the rule's error signal R^i = b_i (T − O) (:class:`~lchannel.theory.rules.Rule`):
        b_L = 1 (the top layer follows the gradient) and b_i = w_i b_{source(i)}, where the
        carrier w_i is a_{i+1} for GD and c_i otherwise.  SRBP/ASRBP: b_i = c_i;
        RBP/ARBP: b_i = c_i...c_{L-1}; GD: b_i = a_{i+1}...a_L.
        """
        a, c = self.split(y)
        spec = self.rule_spec
        carriers = c if spec.has_channel else a[1:]
        if spec.skipped:
            return np.append(carriers, 1.0)
        return np.append(np.cumprod(carriers[::-1])[::-1], 1.0)

    def product(self, y: np.ndarray) -> float:
        """P = a_1 a_2 ... a_L."""
        return float(np.prod(y[: self.depth]))

    # ------------------------------------------------------------------ dynamics
    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """The averaged learning equations (module docstring; eq. 23, 36, 44, paper 2 eq. 24, 72-73, 79-80)."""
        a, _ = self.split(y)
        err = self.alpha - self.beta * np.prod(a)
        prefix = np.concatenate(([1.0], np.cumprod(a)))  # prefix[i] = a_1...a_i
        b = self.feedback(y)
        da = b * prefix[:-1] * err
        if not self.adaptive:
            return da
        # dc_i/dt = a_1..a_i b_{source(i)} (α − βP): ARBP eq. 75 (b_{i+1} = c_{i+1}..c_{L-1}),
        # ASRBP eq. 82 (b_L = 1)
        L = self.depth
        upper = b[[self.rule_spec.source(i, L) - 1 for i in range(1, L)]]
        dc = prefix[1:-1] * upper * err
        return np.concatenate((da, dc))

    def dP_factor(self, y: np.ndarray) -> float:
        """The factor g(y) in dP/dt = g(y)(α − βP) (eq. 24, 37, 46).

        For A[1,1,1] g = a_1² + c_1 a_2; it vanishes on the parabola a_2 = −a_1²/c_1 (eq. 28).
        """
        a, _ = self.split(y)
        prefix = np.concatenate(([1.0], np.cumprod(a)))
        suffix = np.append(np.cumprod(a[::-1])[::-1][1:], 1.0)  # a_{i+1}..a_L
        dP_da = prefix[:-1] * suffix
        return float(np.sum(dP_da * self.feedback(y) * prefix[:-1]))

    def conserved(self, y: np.ndarray) -> dict[str, float]:
        """Quantities constant along trajectories.

        * SRBP: a_{i+1} − c_{i+1} a_i²/(2c_i) (eq. 30, 39-40, 48; c_L = 1);
        * RBP:  a_{i+1} − a_i²/(2c_i) (same derivation with the products c_i..c_{L-1});
        * ARBP: c_i − a_{i+1} (paper 2 eq. 29, 76) and a_i² − c_i² (eq. 31, 78);
        * ASRBP: c_i² − a_i² (paper 2 eq. 57, 83), c_{L-1} − a_L (eq. 58, 90) and, for
          2 <= i <= L-1, (a_i + c_i)e^{−c_{i-1}} and (a_i − c_i)e^{c_{i-1}} (eq. 61-62, 85-86);
        * GD: a_{i+1}² − a_i² (paper 1 eq. 54).
        """
        a, c = self.split(y)
        L = self.depth
        out: dict[str, float] = {}
        for i in range(1, L):
            ai, an = a[i - 1], a[i]
            if self.rule == "srbp":
                cn = 1.0 if i + 1 == L else c[i]
                label = f"a{i+1} - a{i}^2/(2*c{i})" if i + 1 == L else f"a{i+1} - c{i+1}*a{i}^2/(2*c{i})"
                out[label] = an - cn * ai**2 / (2.0 * c[i - 1])
            elif self.rule == "rbp":
                out[f"a{i+1} - a{i}^2/(2*c{i})"] = an - ai**2 / (2.0 * c[i - 1])
            elif self.rule == "arbp":
                out[f"c{i} - a{i+1}"] = c[i - 1] - an
                out[f"a{i}^2 - c{i}^2"] = ai**2 - c[i - 1] ** 2
            elif self.rule == "asrbp":
                out[f"c{i}^2 - a{i}^2"] = c[i - 1] ** 2 - ai**2
            else:
                out[f"a{i+1}^2 - a{i}^2"] = an**2 - ai**2
        if self.rule == "asrbp":
            out[f"c{L-1} - a{L}"] = c[L - 2] - a[L - 1]
            for i in range(2, L):  # paper 2 eq. 61-62, 85-86: (a_i ± c_i)e^{∓c_{i-1}} (inf past e^709)
                with np.errstate(over="ignore", invalid="ignore"):
                    out[f"(a{i} + c{i})*exp(-c{i-1})"] = float((a[i - 1] + c[i - 1]) * np.exp(-c[i - 2]))
                    out[f"(a{i} - c{i})*exp(c{i-1})"] = float((a[i - 1] - c[i - 1]) * np.exp(c[i - 2]))
        return out

    # ------------------------------------------------------------------ predictions
    def reduced_polynomials(self, y0: Sequence[float]) -> tuple[list[Polynomial], Polynomial]:
        """For RBP/SRBP: each a_i as a polynomial in a_1 along the trajectory from ``y0``, and Q.

        From c_i da_{i+1}/dt = c_{i+1} a_i da_i/dt (eq. 47, with the effective feedback b_i),
        a_{i+1} = (b_{i+1}/2b_i) a_i² + K_i (eq. 48), so a_i is even in a_1 of degree
        2^{i-1} (eq. 49) and da_1/dt = Q(a_1) = b_1(α − βP(a_1)) has odd degree 2^L − 1
        (eq. 51) with a negative leading coefficient: the cubic of eq. 31 for L = 2
        (a_1³ + (2c_1a_2(0) − a_1(0)²)a_1 − 2c_1α/β = 0 after scaling), the degree-seven
        polynomial of Theorem 3 for L = 3.
        """
        if not self.rule_spec.fixed_channel:
            raise ValueError(f"the polynomial reduction in a1 holds for rules 'rbp' and 'srbp'; this chain uses {self.rule!r}")
        y0 = self.as_state(y0)
        b = self.feedback(y0)
        if np.any(b == 0):
            raise ValueError("the reduction needs non-zero channel weights c (c_i = 0 is a trivial case, paper 1 §7.2)")
        polys = [Polynomial([0.0, 1.0])]
        for i in range(1, self.depth):
            ratio = b[i] / (2.0 * b[i - 1])
            k = y0[i] - ratio * y0[i - 1] ** 2
            polys.append(ratio * polys[-1] ** 2 + k)
        p = Polynomial([1.0])
        for q in polys:
            p = p * q
        return polys, b[0] * (self.alpha - self.beta * p)

    def fixed_point_polynomial(self, y0: Sequence[float]) -> Polynomial:
        """The polynomial in a_1 whose real roots are the critical points on the trajectory of ``y0``.

        Normalised to be monic: for L = 2 this is eq. 31, a_1³ + (2c_1a_2(0) − a_1(0)²)a_1 − 2c_1α/β.
        For the adaptive/GD chain of depth 2 it is the quartic in a_2 of :func:`adaptive_pair_limit`.
        """
        if self.rule_spec.fixed_channel:
            _, q = self.reduced_polynomials(y0)
            return q / q.coef[-1]
        if self.depth != 2:
            raise NotImplementedError(
                "adaptive/GD chains deeper than 2 have no fixed-point polynomial: their reduced Q (adaptive_reduction) "
                "involves square roots (ARBP) or exponentials (ASRBP), paper 2 Theorems 3-4 notwithstanding"
            )
        a1, a2, c1 = self._pair_state(self.as_state(y0))
        k1 = c1 - a2
        j1 = a1**2 - a2**2 - 2 * k1 * a2  # paper 2 eq. 31: a_1² = a_2² + 2K_1a_2 + J_1
        return Polynomial([-(self.alpha / self.beta) ** 2, 0.0, j1, 2 * k1, 1.0])

    def _nested(self, y0: np.ndarray, x):
        """(a_1..a_L, Q) at a_1 = x (scalar or array) along the trajectory of ``y0``.

        Evaluated through a_{i+1} = (b_{i+1}/2b_i)a_i² + K_i (eq. 48), never expanded.
        """
        b = self.feedback(y0)
        a = [np.asarray(x, dtype=np.result_type(np.asarray(x), float))]  # complex allowed (complex-step derivative)
        with np.errstate(over="ignore", invalid="ignore"):  # far from the roots values may overflow: inf is fine
            for i in range(1, self.depth):
                ratio = b[i] / (2.0 * b[i - 1])
                a.append(ratio * a[-1] ** 2 + (y0[i] - ratio * y0[i - 1] ** 2))
            q = b[0] * (self.alpha - self.beta * np.prod(a, axis=0))
        return np.array(a), q

    def _polish(self, y0: np.ndarray, x: float) -> float:
        """Newton steps on the unexpanded Q (complex-step derivative): the expanded coefficients lose digits."""
        for _ in range(6):
            q = float(np.real(self._nested(y0, x)[1]))
            dq = float(np.imag(self._nested(y0, complex(x, 1e-30))[1])) / 1e-30
            if dq == 0.0 or not math.isfinite(dq) or not math.isfinite(q):
                break
            step = q / dq
            if abs(step) > 1e-6 * max(1.0, abs(x)):  # only refine, never jump to another root
                break
            x -= step
        return x

    def adaptive_reduction(self, y0: Sequence[float]) -> Reduction:
        """The one-dimensional reduction of an adaptive chain of depth L >= 3 (paper 2 §5.3-5.4).

        **ASRBP** (eq. 57-70, 83-96): K = c_1² − a_1², μ_{i-1}, ν_{i-1} and J = a_L − c_{L-1}
        are constant, so every weight is a function of c_1; x = a_1 (K >= 0) or c_1 (K < 0)
        (:func:`~lchannel.theory.reductions.asrbp_reduction`).

        **ARBP** (eq. 51-53, 76-78): c_i = a_{i+1} + K_i and a_i² = c_i² + J_i; with
        J_1..J_{m-1} > 0 > J_m..J_{L-1} the state is a function of x = a_m, and any other
        sign pattern raises NotImplementedError
        (:func:`~lchannel.theory.reductions.arbp_reduction`).
        """
        if not self.adaptive or self.depth < 3:
            raise ValueError(f"adaptive_reduction is for ARBP/ASRBP chains of depth >= 3; this chain is {self.rule!r} of depth {self.depth}")
        y0 = self.as_state(y0)
        build = asrbp_reduction if self.rule_spec.skipped else arbp_reduction
        return build(y0, self.depth, self.alpha, self.beta)

    def _pair_state(self, y: np.ndarray) -> tuple[float, float, float]:
        # GD on A[1,1,1] is the adaptive system with c_1 ≡ a_2 (paper 2 Theorem 7, K = 0).
        return (float(y[0]), float(y[1]), float(y[2] if self.adaptive else y[1]))

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """The critical point reached from ``y0``, from the conserved quantities and Theorem 1.

        RBP/SRBP, any depth: roots of the degree 2^L − 1 polynomial Q(a_1)
        (:meth:`reduced_polynomials`) and Theorem 1 (for L > 6 the first sign change of Q
        in the direction of the flow, found by :func:`~lchannel.theory.onedim.march_to_root`).  ARBP/ASRBP and GD, depth 2: the
        quartic of :func:`adaptive_pair_limit` (paper 2 Theorem 2).
        """
        y0 = self.as_state(y0)
        if self.rule_spec.fixed_channel and self.depth == 2 and self.c[0] == 0:
            # paper 1 §7.2, trivial case 2: c_1 = 0 freezes a_1; a_2 then follows gradient descent to α/(βa_1)
            a1 = float(y0[0])
            return y0.copy() if a1 == 0 else np.array([a1, self.alpha / (self.beta * a1)])
        if self.rule_spec.fixed_channel:
            if self.depth <= MAX_EXPANDED_DEPTH:
                _, q = self.reduced_polynomials(y0)
                x = theorem1_limit(q, real_roots(q, polish=lambda r: self._polish(y0, r)), y0[0])
            else:
                # Degree 2^L − 1 > 63: companion-matrix roots are unreliable; evaluate Q
                # through the nested quadratics of eq. 48 and walk to the first sign change.
                x = march_to_root(lambda v: self._nested(y0, v)[1], y0[0])
            if not math.isfinite(x):
                raise ArithmeticError(f"Q has no root in the direction of the flow from a1(0) = {y0[0]}")
            # the other weights through the quadratics, not the expanded polynomials
            # (evaluating a degree-2^{i-1} expansion loses all digits for deep chains)
            return np.real(self._nested(y0, x)[0]).astype(float)
        if self.depth != 2:
            if not self.adaptive:
                raise NotImplementedError(f"the predicted fixed point of rule {self.rule!r} is implemented for depth 2 only; use integrate()")
            red = self.adaptive_reduction(y0)
            x = march_to_root(red.q, red.x0)
            if not math.isfinite(x):
                raise NoFixedPointError(
                    f"{red.parameter} -> {x}: Q has no root in the direction of the flow, so the trajectory diverges"
                    + (" (the exceptional set K_i = 0 of paper 2 Theorem 4', eq. 84)" if red.exceptional else "")
                )
            return red.state(x)
        a1, a2, c1 = adaptive_pair_limit(*self._pair_state(y0), self.alpha, self.beta)
        return np.array([a1, a2, c1]) if self.adaptive else np.array([a1, a2])
