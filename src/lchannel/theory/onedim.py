"""One-dimensional reductions and Theorem 1 (paper 1 section 7.1, paper 2 Theorem 1).

Several of the learning systems reduce, along the conserved quantities, to a single
autonomous equation dx/dt = Q(x).  Theorem 1 then says where a trajectory goes:
between two consecutive roots of Q it moves monotonically towards the adjacent root in
the direction of the sign of Q, and it diverges only when no root lies in that
direction.  The functions here implement exactly that argument; the systems supply Q
and the candidate roots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.polynomial import Polynomial
from scipy.integrate import quad
from scipy.optimize import brentq

__all__ = ["real_roots", "theorem1_limit", "monotone_roots", "march_to_root", "classify_root", "blowup_time", "always_converges"]


def real_roots(poly: Polynomial, *, imag_tol: float = 1e-7, polish: Callable[[float], float] | None = None) -> np.ndarray:
    """Sorted distinct real roots of ``poly``.

    Roots are taken from the companion matrix, kept when their imaginary part is small
    relative to their modulus, then polished by Newton steps on ``poly`` itself (the
    companion-matrix roots of high degree polynomials lose a few digits).
    """
    poly = poly.trim(tol=0.0)
    if poly.degree() < 1:
        return np.empty(0)
    raw = poly.roots()
    scale = np.maximum(1.0, np.abs(raw))
    candidates = np.sort(raw[np.abs(raw.imag) <= imag_tol * scale].real)
    deriv = poly.deriv()
    out: list[float] = []
    for x in candidates:
        # Newton polishing; stops if the derivative vanishes (double root).
        for _ in range(8):
            d = deriv(x)
            if d == 0.0 or not math.isfinite(d):
                break
            step = poly(x) / d
            if not math.isfinite(step) or abs(step) > 1e-3 * max(1.0, abs(x)):
                break
            x -= step
            if abs(step) <= 1e-15 * max(1.0, abs(x)):
                break
        if polish is not None:
            x = polish(x)
        if not out or abs(x - out[-1]) > 1e-9 * max(1.0, abs(x)):
            out.append(float(x))
    return np.asarray(out)


def theorem1_limit(q: Callable[[float], float], roots: Sequence[float], x0: float, *, lower: float = -math.inf, upper: float = math.inf) -> float:
    """Limit of dx/dt = q(x) started at ``x0`` (Theorem 1).

    ``roots`` are the fixed points of ``q`` inside the domain ``(lower, upper)``.  If
    ``q(x0) > 0`` the trajectory increases to the smallest root above ``x0``; if
    ``q(x0) < 0`` it decreases to the largest root below ``x0``; with no root in that
    direction it reaches the domain boundary (``±inf`` means divergence).  A start at
    a root stays there.
    """
    rs = np.sort(np.asarray([r for r in roots if lower < r < upper], dtype=float))
    for r in rs:
        if abs(r - x0) <= 1e-12 * max(1.0, abs(x0)):
            return float(r)
    qx = q(x0)
    if qx == 0.0:
        return float(x0)
    if qx > 0:
        above = rs[rs > x0]
        return float(above[0]) if above.size else float(upper)
    below = rs[rs < x0]
    return float(below[-1]) if below.size else float(lower)


def monotone_roots(h: Callable[[float], float], target: float, pieces: Sequence[tuple[float, float]]) -> list[float]:
    """Roots of ``h(x) = target`` on intervals where ``h`` is monotone.

    Each piece ``(lo, hi)`` may have ``hi = inf``; the bracket is then expanded
    geometrically.  Used for the power non-linearity (eq. 117), whose left-hand side
    has at most one critical point on the positive half-line.
    """

    found: list[float] = []
    for lo, hi in pieces:
        f = lambda x: h(x) - target  # noqa: E731
        a = lo
        b = hi
        if math.isinf(b):
            b = max(1.0, 2.0 * a)
            for _ in range(200):
                if np.sign(f(b)) != np.sign(f(a)) or f(b) == 0.0:
                    break
                b *= 2.0
        fa, fb = f(a), f(b)
        if fa == 0.0:
            found.append(a)
        elif fb == 0.0:
            found.append(b)
        elif np.sign(fa) != np.sign(fb):
            found.append(brentq(f, a, b, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))
    return sorted(found)


def march_to_root(q: Callable[[np.ndarray], np.ndarray], x0: float, *, step: float = 1e-5, chunk: int = 20_000, max_chunks: int = 60) -> float:
    """Theorem 1 without the roots listed: walk from ``x0`` in the direction of the sign of
    ``q`` until ``q`` changes sign, then refine the crossing with Brent's method.

    For polynomials too high in degree for reliable companion-matrix roots (the chain
    of depth L > 6 has degree 2^L − 1).  ``q`` must accept arrays.  The walk evaluates
    ``q`` on grids of ``chunk`` points with spacing ``step``·max(1, |x0|), doubling the
    spacing after each chunk without a sign change; two roots closer than the spacing
    would be missed, hence the fine default.  Returns ±inf if no sign change is found.
    """

    q0 = float(q(np.array([x0]))[0])
    if q0 == 0.0:
        return float(x0)
    direction = 1.0 if q0 > 0 else -1.0
    h = step * max(1.0, abs(x0))
    start = x0
    scalar = lambda v: float(q(np.array([v]))[0])  # noqa: E731
    for _ in range(max_chunks):
        xs = start + direction * h * np.arange(1, chunk + 1)
        qs = q(xs)
        bad = ~np.isfinite(qs)
        if bad.any():
            xs, qs = xs[: int(np.argmax(bad))], qs[: int(np.argmax(bad))]
        crossed = np.flatnonzero(np.sign(qs) != np.sign(q0))
        if crossed.size:
            k = int(crossed[0])
            if qs[k] == 0.0:
                return float(xs[k])
            prev = start if k == 0 else xs[k - 1]
            lo, hi = sorted((prev, xs[k]))
            return float(brentq(scalar, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))
        if bad.any() or xs.size == 0:
            break
        start, h = xs[-1], 2.0 * h
    return direction * math.inf


#: Paper 2 Theorem 1: the stability of a root from the signs of f just left and right of it.
SIGN_PATTERNS = {
    (1, -1): "attractor",
    (-1, 1): "unstable",
    (1, 1): "attractor on the left, unstable on the right",
    (-1, -1): "unstable on the left, attractor on the right",
}


def classify_root(q: Callable[[float], float], root: float, *, offset: float = 1e-6) -> str:
    """The stability of the root ``root`` of dx/dt = q(x) by the sign pattern of paper 2 Theorem 1.

    ``+−``: attractor; ``−+``: unstable; ``++``: attractor from the left, unstable to the right;
    ``−−``: unstable on the left, attractor on the right.  The signs are read at
    ``root ± offset·max(1, |root|)``, which must lie closer to ``root`` than any other root.
    """
    h = offset * max(1.0, abs(root))
    left, right = float(np.sign(q(root - h))), float(np.sign(q(root + h)))
    if left == 0 or right == 0:
        raise ValueError(f"q vanishes at root ± offset ({root} ± {h}): choose a smaller offset or an isolated root")
    return SIGN_PATTERNS[(int(left), int(right))]


def blowup_time(q: Callable[[float], float], x0: float, roots: Sequence[float]) -> float:
    """The time dx/dt = q(x) from ``x0`` takes to reach ±∞, or ``inf`` if it does not (paper 1 Theorem 1).

    With no root of ``q`` in the direction of the flow, x runs off; it does so in finite time
    T = ∫ dx/q(x) from x0 to ±∞ when that integral converges (degree >= 2 at infinity).
    """

    target = theorem1_limit(q, roots, x0)
    if math.isfinite(target):
        return math.inf
    value, _ = quad(lambda x: 1.0 / q(x), x0, target, limit=200)
    return float(value)


def always_converges(poly: Polynomial) -> bool:
    """Paper 1 Theorem 1's "iff": every start of dx/dt = poly(x) converges exactly when the degree is odd
    and the leading coefficient negative."""
    poly = poly.trim(tol=0.0)
    return poly.degree() % 2 == 1 and poly.coef[-1] < 0
