"""The expansive network A[1, N, 1] (paper 1 §7.5, paper 2 §5.5).

Lower weights a_1..a_N, upper weights b_1..b_N, channel weights c_1..c_N,
P = Σ a_i b_i, α = E(IT), β = E(I²).  With one hidden layer RBP = SRBP and ARBP = ASRBP:

* RBP/SRBP (paper 1 eq. 57): da_i/dt = c_i(α − βP), db_i/dt = a_i(α − βP);
* ARBP/ASRBP (paper 2 eq. 99): the same with dc_i/dt = a_i(α − βP);
* GD: da_i/dt = b_i(α − βP), db_i/dt = a_i(α − βP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.polynomial import Polynomial

from .base import RULES, LearningSystem, PairedLayers, ScalarData, channel_weights, check_rule, check_statistics, fixed_channel
from .onedim import real_roots, theorem1_limit

__all__ = ["ExpansiveNet"]


class ExpansiveNet(PairedLayers, ScalarData, LearningSystem):
    """Averaged learning dynamics of A[1, N, 1].

    ``c`` (N fixed channel weights) is required for ``rbp``/``srbp`` and must be omitted for
    ``arbp``/``asrbp`` (then the c_i are state variables) and ``gd``; ``width`` gives N
    when ``c`` is omitted.  State: ``(a_1..a_N, b_1..b_N)`` then ``(c_1..c_N)`` if adaptive.
    """

    def __init__(self, alpha: float, beta: float, c: Sequence[float] | None = None, *, width: int | None = None, rule: str = "srbp") -> None:
        self.rule = check_rule(rule, RULES)
        self.alpha, self.beta = check_statistics(alpha, beta)
        c_arr = channel_weights(c)
        if c_arr is not None and width is None:
            width = c_arr.size
        if not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(f"width must be an integer >= 1 (or give c); got {width!r}")
        self.width = int(width)
        self.c = fixed_channel(self.rule, c, self.width, f"width = {self.width}")
        n = self.width
        self.names = self._pair_names()
        self.sizes = (1, n, 1)

    def product(self, y: np.ndarray) -> float:
        """P = Σ a_i b_i."""
        a, b, _ = self.split(y)
        return float(a @ b)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Paper 1 eq. 57 / paper 2 eq. 99."""
        a, b, c = self.split(y)
        err = self.alpha - self.beta * float(a @ b)
        parts = [c * err, a * err]
        if self.adaptive:
            parts.append(a * err)
        return np.concatenate(parts)

    def dP_factor(self, y: np.ndarray) -> float:
        """g = Σ (b_i c_i + a_i²), with dP/dt = g(α − βP) (eq. 58, paper 2 eq. 100)."""
        a, b, c = self.split(y)
        return float(b @ c + a @ a)

    def conserved(self, y: np.ndarray) -> dict[str, float]:
        """Constants of motion.

        * RBP/SRBP: b_i − a_i²/(2c_i) (eq. 59) and a_i − (c_i/c_1)a_1 (eq. 60-61);
        * ARBP/ASRBP: c_i − b_i (paper 2 eq. 101) and a_i² − c_i² (eq. 103: J_i = a_i² − c_i² + K_i²);
        * GD: b_i² − a_i².
        """
        a, b, c = self.split(y)
        out: dict[str, float] = {}
        for i in range(self.width):
            k = i + 1
            if self.rule_spec.fixed_channel:
                out[f"b{k} - a{k}^2/(2*c{k})"] = b[i] - a[i] ** 2 / (2 * c[i])
                if i:
                    out[f"a{k} - (c{k}/c1)*a1"] = a[i] - c[i] / c[0] * a[0]
            elif self.adaptive:
                out[f"c{k} - b{k}"] = c[i] - b[i]
                out[f"a{k}^2 - c{k}^2"] = a[i] ** 2 - c[i] ** 2
            else:
                out[f"b{k}^2 - a{k}^2"] = b[i] ** 2 - a[i] ** 2
        return out

    # ------------------------------------------------------------------ predictions
    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """The critical point reached from ``y0``.

        RBP/SRBP (Theorem 5): a_i = (c_i/c_1)a_1 + K'_i and b_i = a_i²/(2c_i) + C_i, so
        da_1/dt = c_1(α − βP(a_1)) with P cubic (eq. 61-63); Theorem 1 on its roots.

        ARBP/ASRBP and GD (paper 2 proof of Theorem 5, eq. 112-118, corrected): with
        R = (A + C)/2, S = (A − C)/2 and D = C − B constant, R' = (α − βP)R and
        S' = −(α − βP)S, so R = fR_0, S = S_0/f with f(0) = 1 and
        P(f) = f²|R_0|² − |S_0|²/f² − D·(fR_0 + S_0/f); the fixed points are the positive
        roots of the quartic f²(α − βP(f)) and Theorem 1 applies to f' = f(α − βP(f)).
        (GD is this system with C ≡ B.)
        """
        y0 = self.as_state(y0)
        a0, b0, c = self.split(y0)
        if self.rule_spec.fixed_channel:
            if np.any(c == 0):
                raise ValueError("the reduction needs non-zero channel weights c")
            slope = c / c[0]
            a_of = [Polynomial([a0[i] - slope[i] * a0[0], slope[i]]) for i in range(self.width)]
            b_of = [a_of[i] ** 2 / (2 * c[i]) + (b0[i] - a0[i] ** 2 / (2 * c[i])) for i in range(self.width)]
            p = sum((a_of[i] * b_of[i] for i in range(self.width)), Polynomial([0.0]))
            q = c[0] * (self.alpha - self.beta * p)
            x = theorem1_limit(q, real_roots(q), a0[0])
            if not math.isfinite(x):
                raise ArithmeticError("no critical point in the direction of the flow")
            return np.concatenate([[ai(x) for ai in a_of], [bi(x) for bi in b_of]])
        r0, s0, d = (a0 + c) / 2, (a0 - c) / 2, c - b0
        rr, ss, dr, ds = r0 @ r0, s0 @ s0, d @ r0, d @ s0
        alpha, beta = self.alpha, self.beta
        tiny = 1e-15 * max(1.0, float(a0 @ a0 + c @ c))
        if rr <= tiny or ss <= tiny:
            # R_0 = 0 (A = −C) or S_0 = 0 (A = C): one of R = fR_0, S = S_0/f vanishes for good and the
            # remaining factor h (g = 1/f if R_0 = 0, f if S_0 = 0) obeys h' = ∓h(α − βP(h)); it
            # converges either to a root or to h = 0, the trivial fixed point A = C = 0, B = −D
            # (Theorem 5's a_i = c_i = 0).  The paper's "NOT convergent" (after eq. 118) is wrong.
            if rr <= tiny and ss <= tiny:
                return y0.copy()  # A = C = 0: every right-hand side vanishes
            sign, (k2, k1) = (-1.0, (ss, ds)) if rr <= tiny else (1.0, (-rr, dr))
            # P(h) = −k2 h² − k1 h with h = g (R_0 = 0: P = −|S_0|²g² − D·S_0 g) or h = f (S_0 = 0: P = |R_0|²f² − D·R_0 f)
            quad = Polynomial([alpha, beta * k1, beta * k2])  # α − βP(h)
            h = theorem1_limit(lambda x: sign * x * quad(x), real_roots(quad), 1.0, lower=0.0)
            if not math.isfinite(h):
                raise ArithmeticError(f"the factor of the surviving combination tends to {h}: the trajectory diverges")
            vec = s0 if rr <= tiny else r0
            a, cc = h * vec, (-h if rr <= tiny else h) * vec
        else:
            quartic = Polynomial([beta * ss, beta * ds, alpha, beta * dr, -beta * rr])

            def q(f: float) -> float:
                return f * (alpha - beta * (f * f * rr - ss / (f * f) - f * dr - ds / f))

            f = theorem1_limit(q, real_roots(quartic), 1.0, lower=0.0)
            if not (0 < f < math.inf):
                raise ArithmeticError(f"f(t) tends to {f}: no root of the quartic in the direction of the flow")
            a, cc = f * r0 + s0 / f, f * r0 - s0 / f
        b = cc - d
        return np.concatenate([a, b, cc]) if self.adaptive else np.concatenate([a, b])

    # ------------------------------------------------------------------ paper 2 eq. 104-111
    def aggregates(self, y: np.ndarray) -> dict[str, float]:
        """P, S_a = |a|², S_b = |b|², U_a = K·a, U_b = K·b and |K|², with K_i = c_i − b_i (paper 2 eq. 104-108).

        (The paper defines U_a as Σ K_ib_i, a slip for Σ K_ia_i: only the latter gives eq. 107-108.)
        For gradient descent K = 0.
        """
        if not (self.adaptive or self.rule == "gd"):
            raise ValueError(f"the aggregates of eq. 104-108 belong to the adaptive (or GD) A[1,N,1]; this one is {self.rule!r}")
        a, b, c = self.split(y)
        k = c - b
        return {"P": float(a @ b), "Sa": float(a @ a), "Sb": float(b @ b), "Ua": float(k @ a), "Ub": float(k @ b), "K": float(k @ k)}

    def aggregate_rhs(self, z: np.ndarray, k_norm2: float) -> np.ndarray:
        """The closed five-variable system of paper 2 eq. 104-108 in z = (P, S_a, S_b, U_a, U_b):

        P' = ξ(S_a + S_b + U_b), S_a' = 2ξ(P + U_a) (eq. 105 prints 2(α − β)(P + U_a)),
        S_b' = 2ξP, U_a' = ξ(U_b + |K|²), U_b' = ξU_a, with ξ = α − βP.
        """
        p, sa, sb, ua, ub = (float(v) for v in z)
        xi = self.alpha - self.beta * p
        return xi * np.array([sa + sb + ub, 2 * (p + ua), 2 * p, ub + k_norm2, ua])
