"""One-dimensional reductions of the adaptive chains (paper 2 §5.2-5.4).

Along a trajectory of ARBP/ASRBP on A[1, ..., 1] the conserved quantities tie every
weight to one of them, x, so the dynamics become dx/dt = Q(x) and Theorem 1 (paper 2)
says which root of Q the trajectory reaches.  :class:`Reduction` holds such a Q;
:func:`asrbp_reduction` and :func:`arbp_reduction` build it for depth L >= 3,
:func:`adaptive_pair_limit` solves the depth-2 case (paper 2 Theorem 2) outright.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
from numpy.polynomial import Polynomial

from .onedim import real_roots, theorem1_limit

__all__ = ["Reduction", "asrbp_reduction", "arbp_reduction", "adaptive_pair_limit"]


@dataclass(frozen=True)
class Reduction:
    """A one-dimensional reduction dx/dt = Q(x) of a trajectory along its conserved quantities.

    ``parameter`` names x (a state component), ``x0`` is its initial value, ``state(x)``
    gives the whole state on the trajectory's invariant curve (arrays of x give columns)
    and ``q(x)`` is dx/dt there.  ``exceptional``: the start lies in the exceptional set of
    paper 2 Theorem 4′ (some K_i = c_i² − a_i² = 0, eq. 84).
    """

    parameter: str
    x0: float
    state: Callable[[Any], np.ndarray]
    q: Callable[[Any], Any]
    exceptional: bool = False


def _product(factors: Sequence[Any]) -> Any:
    return reduce(np.multiply, factors, 1.0)


def asrbp_reduction(y0: np.ndarray, depth: int, alpha: float, beta: float) -> Reduction:
    """The reduction of the ASRBP chain of ``depth`` L >= 3 from the state ``y0`` (paper 2 eq. 57-70, 83-96).

    K = c_1² − a_1² is constant, and so are μ_{i-1} = (a_i + c_i)e^{−c_{i-1}},
    ν_{i-1} = (a_i − c_i)e^{c_{i-1}} (2 <= i <= L-1) and J = a_L − c_{L-1}; so every weight
    is a function of c_1 (:func:`_asrbp_upper`).  K > 0: c_1 = ±√(a_1² + K) never vanishes
    and x = a_1, Q = c_1(α − βP) (eq. 65-67, 91-92); K < 0: a_1 = ±√(c_1² − K) and x = c_1,
    Q = a_1(α − βP) (eq. 96); K = 0: c_1 = ±a_1 and x = a_1.  Q contains exponentials (of
    exponentials), so it is no polynomial.
    """
    L = depth
    a0, c0 = y0[:L], y0[L:]
    k = c0[0] ** 2 - a0[0] ** 2
    mu = (a0[1 : L - 1] + c0[1:]) * np.exp(-c0[:-1])
    nu = (a0[1 : L - 1] - c0[1:]) * np.exp(c0[:-1])
    upper = _asrbp_upper(mu, nu, a0[L - 1] - c0[L - 2], L)
    zero_k = abs(k) <= 1e-12 * max(1.0, a0[0] ** 2)
    exceptional = bool(zero_k or np.any(mu * nu == 0.0))
    if zero_k or k > 0:
        r = math.copysign(1.0, c0[0] * a0[0]) if zero_k else None
        sigma = math.copysign(1.0, c0[0])

        def state(x):
            return upper(x, r * x if zero_k else sigma * np.sqrt(x * x + k))

        name, x0, speed = "a1", a0[0], L  # da_1/dt = c_1(α − βP): c_1 is component L
    else:
        s_a = math.copysign(1.0, a0[0])

        def state(x):
            return upper(s_a * np.sqrt(x * x - k), x)

        name, x0, speed = "c1", c0[0], 0  # dc_1/dt = a_1(α − βP)

    def q(x):
        st = state(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return st[speed] * (alpha - beta * _product(st[:L]))

    return Reduction(name, float(x0), state, q, exceptional)


def _asrbp_upper(mu: np.ndarray, nu: np.ndarray, jj: float, L: int) -> Callable[[Any, Any], np.ndarray]:
    """The ASRBP state from (a_1, c_1): a_i = ½(μ_{i-1}e^{c_{i-1}} + ν_{i-1}e^{−c_{i-1}}),
    c_i = ½(μ_{i-1}e^{c_{i-1}} − ν_{i-1}e^{−c_{i-1}}) (paper 2 eq. 63, 87) and a_L = c_{L-1} + J."""
    def upper(a1, c1):
        a, c = [a1], [c1]
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(L - 2):
                up, down = mu[i] * np.exp(c[-1]), nu[i] * np.exp(-c[-1])
                a.append(0.5 * (up + down))
                c.append(0.5 * (up - down))
        a.append(c[-1] + jj)
        return np.array(a + c)

    return upper


def arbp_reduction(y0: np.ndarray, depth: int, alpha: float, beta: float) -> Reduction:
    """The reduction of the ARBP chain of ``depth`` L >= 3 from the state ``y0`` (paper 2 eq. 51-53, 76-78).

    c_i = a_{i+1} + K_i and a_i² = c_i² + J_i.  Where J_i > 0, a_i = ±√(c_i² + J_i) keeps its
    sign; where J_i < 0, c_i = ±√(a_i² − J_i) does.  If J_1..J_{m-1} > 0 > J_m..J_{L-1} the
    state is a function of x = a_m (:func:`_arbp_state`), and Q = c_m⋯c_{L-1}a_1⋯a_{m-1}(α − βP)
    (eq. 74) has no zero but α = βP.  All J_i > 0 gives m = L, the reduction in a_L of
    Theorems 3-4, where Q(a_L) ~ −βa_L^{2L−1} — not 2^L − 1 (Theorem 3) nor 2^{L−1} − 1
    (Theorem 4) — and contains square roots.  Any other sign pattern of the J_i raises
    NotImplementedError: then no state variable parametrises the invariant curve.
    """
    L = depth
    a0, c0 = y0[:L], y0[L:]
    kk = c0 - a0[1:]  # K_i = c_i − a_{i+1}
    jj = a0[:-1] ** 2 - c0**2  # J_i = a_i² − c_i²
    neg = jj < 0
    m = int(np.argmax(neg)) + 1 if neg.any() else L  # first J_m < 0 (1-based), else L
    if np.any(jj == 0) or not np.all(neg[m - 1 :]):
        raise NotImplementedError(
            f"ARBP chain with J_i = a_i^2 - c_i^2 = {np.array2string(jj, precision=4)}: the one-dimensional reduction needs "
            "J_1..J_(m-1) > 0 > J_m..J_(L-1); with any other sign pattern no weight parametrises the invariant curve (use integrate())"
        )
    state = _arbp_state(kk, jj, np.sign(a0[:-1]), np.sign(c0), m, L)

    def q(x):
        st = state(x)
        a, c = st[:L], st[L:]
        with np.errstate(over="ignore", invalid="ignore"):
            return _product(c[m - 1 :]) * _product(a[: m - 1]) * (alpha - beta * _product(a))

    return Reduction(f"a{m}", float(a0[m - 1]), state, q)


def _arbp_state(kk: np.ndarray, jj: np.ndarray, s_a: np.ndarray, s_c: np.ndarray, m: int, L: int) -> Callable[[Any], np.ndarray]:
    """The ARBP state as a function of x = a_m: down by c_i = a_{i+1} + K_i, a_i = ±√(c_i² + J_i),
    up by c_i = ±√(a_i² − J_i), a_{i+1} = c_i − K_i (the signs ``s_a``, ``s_c`` of the start)."""
    def state(x):
        x = np.asarray(x, dtype=float)
        a: list[Any] = [None] * L
        c: list[Any] = [None] * (L - 1)
        a[m - 1] = x
        for i in range(m - 1, 0, -1):  # down: c_i = a_{i+1} + K_i, a_i = ±√(c_i² + J_i)
            c[i - 1] = a[i] + kk[i - 1]
            a[i - 1] = s_a[i - 1] * np.sqrt(c[i - 1] ** 2 + jj[i - 1])
        for i in range(m, L):  # up: c_i = ±√(a_i² − J_i), a_{i+1} = c_i − K_i
            c[i - 1] = s_c[i - 1] * np.sqrt(a[i - 1] ** 2 - jj[i - 1])
            a[i] = c[i - 1] - kk[i - 1]
        return np.array(a + c)

    return state


def adaptive_pair_limit(a1: float, a2: float, c1: float, alpha: float, beta: float) -> tuple[float, float, float]:
    """Limit of the adaptive A[1,1,1] system (paper 2 eq. 24, Theorem 2) started at (a1, a2, c1).

    Conserved: K_1 = c_1 − a_2 (eq. 29) and H = a_1² − c_1² (eq. 30-31, where
    J_1 = H + K_1² in the paper's notation a_1² = a_2² + 2K_1a_2 + J_1).  Substituting
    a_1² = a_2² + 2K_1a_2 + J_1 into (a_1a_2)² = (α/β)² gives the **quartic**

        a_2⁴ + 2K_1 a_2³ + J_1 a_2² − (α/β)² = 0,

    not a cubic: the one-dimensional equation da_2/dt = Q(a_2) of Theorem 2 has the cubic
    leading term −βa_2³ but contains a square root, a_1 = ±√(a_2² + 2K_1a_2 + J_1).
    Only the roots on the branch of the trajectory count:

    * H > 0: a_1 keeps its sign; a_2 parametrises the branch, roots with sign(α/(βa_2)) = sign(a_1);
    * H < 0: c_1 keeps its sign; a_1 parametrises the branch, roots with sign(a_2 + K_1) = sign(c_1).

    Theorem 1 on that parameter picks the reached root.  Gradient descent is the case c_1 ≡ a_2.
    """
    if alpha == 0:
        raise ValueError("the prediction needs alpha = E(IT) != 0 (alpha = 0 is a trivial case)")
    r = alpha / beta
    k1 = c1 - a2
    h = a1**2 - c1**2
    if abs(h) <= 1e-13 * max(1.0, a1**2, c1**2):
        raise ValueError(
            f"degenerate initial condition |a1(0)| = |c1(0)| ({a1}, {c1}): the invariant hyperbola "
            "a1^2 - c1^2 = 0 is two lines through the trivial fixed point a1 = c1 = 0"
        )
    quartic = Polynomial([-(r**2), 0.0, h + k1**2, 2 * k1, 1.0])
    roots = real_roots(quartic)
    roots = roots[roots != 0]
    if h > 0:
        s = math.copysign(1.0, a1)
        valid = [x for x in roots if s * r / x > 0]

        def q(x: float) -> float:  # da2/dt along the branch
            a = s * math.sqrt(max((x + k1) ** 2 + h, 0.0))
            return a * (alpha - beta * a * x)

        x = theorem1_limit(q, valid, a2)
        if not math.isfinite(x):
            raise ArithmeticError("no critical point in the direction of the flow")
        return r / x, x, x + k1
    sigma = math.copysign(1.0, c1)
    valid_u = [r / x for x in roots if sigma * (x + k1) > 0]

    def q_u(u: float) -> float:  # da1/dt along the branch
        cc = sigma * math.sqrt(max(u * u - h, 0.0))
        return cc * (alpha - beta * u * (cc - k1))

    u = theorem1_limit(q_u, valid_u, a1)
    if not math.isfinite(u):
        raise ArithmeticError("no critical point in the direction of the flow")
    cc = sigma * math.sqrt(u * u - h)
    return u, cc - k1, cc
