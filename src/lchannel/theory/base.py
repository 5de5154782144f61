"""Common machinery of the learning systems: integration, trajectories, stability.

Every system of this package is an autonomous ODE dy/dt = F(y) for the averaged
(batch) learning dynamics of a small network (paper 1 section 7, paper 2 section 5).
A system only has to say what F is; this module integrates it with SciPy, linearises
it around critical points (paper 1 eq. 32-33) and stores the result as a
:class:`Trajectory`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

from .rules import ADAPTIVE_RULES, NON_ADAPTIVE_RULES, RULE_TABLE, RULES, Rule, check_rule, rule_spec

__all__ = [
    "LearningSystem",
    "Trajectory",
    "Stability",
    "check_rule",
    "check_finite",
    "NON_ADAPTIVE_RULES",
    "ADAPTIVE_RULES",
    "RULES",
    "Rule",
    "RULE_TABLE",
    "rule_spec",
    "channel_shapes",
    "channel_weights",
    "fixed_channel",
    "MatrixLayout",
    "PairedLayers",
    "ScalarData",
]


def check_statistics(alpha: float, beta: float, beta_name: str = "E(I^2)") -> tuple[float, float]:
    """Validate the data statistics α = E(IT) (finite) and β (finite, > 0)."""
    a, b = check_finite("alpha", alpha), check_finite("beta", beta)
    if b <= 0:
        raise ValueError(f"beta = {beta_name} must be > 0; got {beta}")
    return a, b


def check_finite(name: str, value: float) -> float:
    """Return ``value`` as a float, raising a ValueError naming ``name`` unless finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number; got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return v


def channel_weights(c: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
    """The channel weights ``c`` as a flat float vector (None stays None), raising a ValueError unless finite."""
    if c is None:
        return None
    arr = np.asarray(c, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"c must be finite; got {arr}")
    return arr


def fixed_channel(rule: str, c: Sequence[float] | np.ndarray | None, n: int, count: str) -> np.ndarray | None:
    """The fixed channel of RBP/SRBP as ``n`` flat weights (``count`` says where n comes from, e.g. ``"width = 3"``).

    The other rules take none: ARBP/ASRBP carry the channel in the state, GD has no channel.
    """
    arr = channel_weights(c)
    if rule_spec(rule).fixed_channel:
        if arr is None or arr.size != n:
            raise ValueError(f"rule {rule!r} needs c with {count} channel weights; got {c!r}")
        return arr
    if arr is not None:
        kind = "state variables: put their initial values in y0" if rule in ADAPTIVE_RULES else "not used by gradient descent"
        raise ValueError(f"c must be None for rule {rule!r} (the channel weights are {kind})")
    return None


def channel_shapes(sizes: Sequence[int], rule: str) -> list[tuple[int, int]]:
    """Shapes of C_1..C_{L-1} in A[N_0, ..., N_L]: N_i × N_{source(i)}, that is (N_i, N_{i+1})
    for RBP/ARBP, (N_i, N_L) for SRBP/ASRBP, none for GD (:meth:`Rule.source`)."""
    spec = rule_spec(rule)
    L = len(sizes) - 1
    if not spec.has_channel:
        return []
    return [(sizes[i], sizes[spec.source(i, L)]) for i in range(1, L)]


@dataclass(frozen=True)
class Trajectory:
    """A solution of a learning system sampled at times ``t``.

    ``y[k]`` is the state at time ``t[k]`` (rows), ``names`` the state components in
    the system's order.  ``status`` is ``"converged"`` (the speed |dy/dt| fell below the
    tolerance), ``"t_max"`` (the horizon was reached first), ``"diverged"`` (|y| grew
    beyond the blow-up bound) or ``"failed"`` (the solver gave up).
    """

    t: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    status: str
    system: "LearningSystem" = field(repr=False, compare=False)

    @property
    def final(self) -> np.ndarray:
        """The last state reached."""
        return self.y[-1]

    def __getitem__(self, name: str) -> np.ndarray:
        """The time series of one named component, e.g. ``traj["a1"]``."""
        try:
            return self.y[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no component {name!r}; components are {', '.join(self.names)}") from None

    def error(self) -> np.ndarray:
        """Excess error E(y(t)) − min E along the trajectory (paper 1 eq. 25)."""
        return np.array([self.system.error(y) for y in self.y])

    def product(self) -> np.ndarray:
        """The input-output map P(y(t)) along the trajectory (flattened if a matrix)."""
        return np.array([np.ravel(self.system.product(y)) for y in self.y])

    def conserved(self) -> dict[str, np.ndarray]:
        """Each conserved quantity of the system evaluated along the trajectory."""
        rows = [self.system.conserved(y) for y in self.y]
        return {k: np.array([np.asarray(r[k], dtype=float) for r in rows]) for k in rows[0]} if rows else {}


@dataclass(frozen=True)
class Stability:
    """Linearisation of a system around a critical point (paper 1 eq. 32-33).

    ``kind`` is ``"attractor"`` when every eigenvalue of the Jacobian that is not zero
    has negative real part (the zero eigenvalues belong to directions along the manifold
    of critical points, which is why the critical points are not isolated),
    ``"unstable"`` when some eigenvalue has positive real part, ``"degenerate"`` when all
    eigenvalues vanish, and ``"not a critical point"`` when F(point) is not zero.
    """

    point: np.ndarray
    jacobian: np.ndarray
    eigenvalues: np.ndarray
    kind: str

    @property
    def is_attractor(self) -> bool:
        return self.kind == "attractor"

    @property
    def is_unstable(self) -> bool:
        return self.kind == "unstable"


class LearningSystem(ABC):
    """An averaged learning dynamics dy/dt = F(y) with a flat state vector ``y``."""

    #: Names of the state components, in order (e.g. ``("a1", "a2", "c1")``).
    names: tuple[str, ...]
    #: The learning rule (one of :data:`RULES`); systems without one leave it None.
    rule: str | None = None

    @property
    def adaptive(self) -> bool:
        """Whether the channel weights are state variables (ARBP/ASRBP, paper 2)."""
        return self.rule is not None and RULE_TABLE[self.rule].adaptive

    @property
    def rule_spec(self) -> Rule:
        """The :class:`~lchannel.theory.rules.Rule` named by :attr:`rule`."""
        return RULE_TABLE[self.rule]

    @property
    def dim(self) -> int:
        """Number of state variables."""
        return len(self.names)

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """dy/dt at state ``y`` (``t`` is unused: the systems are autonomous)."""

    @abstractmethod
    def product(self, y: np.ndarray) -> np.ndarray | float:
        """The overall input-output map P of the network at state ``y``."""

    @abstractmethod
    def error(self, y: np.ndarray) -> float:
        """Excess quadratic error E(y) − min E; zero exactly at the global minima."""

    @abstractmethod
    def conserved(self, y: np.ndarray) -> dict[str, float | np.ndarray]:
        """The quantities the paper proves constant along trajectories, by name."""

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """The fixed point that the trajectory from ``y0`` reaches, without integrating."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form prediction of the reached fixed point; use integrate()")

    # ------------------------------------------------------------------ shared
    def as_state(self, y: Sequence[float] | np.ndarray, name: str = "y0") -> np.ndarray:
        """Validate and convert a state vector."""
        arr = np.asarray(y, dtype=float)
        if arr.shape != (self.dim,):
            raise ValueError(f"{name} must have {self.dim} components ({', '.join(self.names)}); got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite; got {arr}")
        return arr

    def speed(self, y: np.ndarray) -> float:
        """|dy/dt| at ``y``: zero exactly at critical points."""
        return float(np.linalg.norm(self.rhs(0.0, y)))

    def integrate(
        self,
        y0: Sequence[float] | np.ndarray,
        t_max: float,
        *,
        n_points: int = 400,
        t_eval: Sequence[float] | None = None,
        method: str = "LSODA",
        rtol: float = 1e-10,
        atol: float = 1e-12,
        stop_when_converged: bool = True,
        converge_tol: float = 1e-11,
        blowup: float = 1e8,
    ) -> Trajectory:
        """Integrate dy/dt = F(y) from ``y0`` with :func:`scipy.integrate.solve_ivp`.

        Tight default tolerances because the tests compare the end point with the
        polynomial predictions.  Integration stops early when |dy/dt| falls below
        ``converge_tol`` (a fixed point is reached, so long horizons cost nothing) or when
        |y| exceeds ``blowup`` (a trajectory escaping to infinity).
        """
        y0 = self.as_state(y0)
        t_max = check_finite("t_max", t_max)
        if t_max <= 0:
            raise ValueError(f"t_max must be > 0; got {t_max}")
        if n_points < 2:
            raise ValueError(f"n_points must be >= 2; got {n_points}")

        events = []
        if stop_when_converged:
            def converged(t: float, y: np.ndarray) -> float:
                return self.speed(y) - converge_tol
            converged.terminal = True  # type: ignore[attr-defined]
            converged.direction = -1  # type: ignore[attr-defined]
            events.append(converged)

        def escaped(t: float, y: np.ndarray) -> float:
            return float(np.max(np.abs(y))) - blowup
        escaped.terminal = True  # type: ignore[attr-defined]
        escaped.direction = 1  # type: ignore[attr-defined]
        events.append(escaped)

        sol = solve_ivp(self.rhs, (0.0, t_max), y0, method=method, rtol=rtol, atol=atol, events=events, dense_output=True)
        t_end = float(sol.t[-1])
        # Sample the dense output, so that the curve is smooth even when the solver
        # stopped early at a fixed point.
        if t_eval is None:
            t = np.linspace(0.0, t_end, n_points)
        else:
            t = np.asarray(t_eval, dtype=float)
            t = t[t <= t_end + 1e-12 * max(1.0, t_end)]
        y = sol.sol(t).T if (sol.sol is not None and t_end > 0) else np.tile(y0, (t.size, 1))
        if t_eval is None:
            y[-1] = sol.y[:, -1]  # the exact last state (the event state if one stopped the solver)
        status = "t_max"
        if not sol.success:
            status = "failed"
        elif sol.status == 1:
            hit_conv = stop_when_converged and sol.t_events[0].size > 0
            status = "converged" if hit_conv else "diverged"
        elif self.speed(y[-1]) < converge_tol:
            status = "converged"
        bad = ~np.all(np.isfinite(y), axis=1)
        if np.any(bad):  # left the domain of F (e.g. a negative base of a fractional power)
            first = int(np.argmax(bad))
            t, y, status = t[:first], y[:first], "failed"
        return Trajectory(t=t, y=y, names=self.names, status=status, system=self)

    def jacobian(self, y: Sequence[float] | np.ndarray, *, rel_step: float = 1e-6) -> np.ndarray:
        """Jacobian dF/dy at ``y`` by central differences (exact for polynomial F up to ~1e-10)."""
        y = self.as_state(y, "y")
        jac = np.empty((self.dim, self.dim))
        for j in range(self.dim):
            h = rel_step * max(1.0, abs(y[j]))
            yp, ym = y.copy(), y.copy()
            yp[j] += h
            ym[j] -= h
            jac[:, j] = (self.rhs(0.0, yp) - self.rhs(0.0, ym)) / (2 * h)
        return jac

    def stability(self, point: Sequence[float] | np.ndarray, *, tol: float = 1e-6) -> Stability:
        """Classify a critical point by the eigenvalues of the Jacobian (paper 1 eq. 32-33).

        ``tol`` is relative to the largest entry of the Jacobian: eigenvalues smaller
        than that are counted as zero (directions along the manifold of critical points).
        """
        point = self.as_state(point, "point")
        jac = self.jacobian(point)
        eig = np.linalg.eigvals(jac)
        scale = max(1.0, float(np.max(np.abs(jac))))
        residual = self.speed(point) / max(1.0, float(np.max(np.abs(point))))
        if residual > 1e-8:
            kind = "not a critical point"
        elif np.any(eig.real > tol * scale):
            kind = "unstable"
        elif np.any(np.abs(eig) > tol * scale):
            kind = "attractor" if np.all((eig.real < -tol * scale) | (np.abs(eig) <= tol * scale)) else "degenerate"
        else:
            kind = "degenerate"
        return Stability(point=point, jacobian=jac, eigenvalues=eig, kind=kind)


class ScalarData:
    """Mixed into the systems fed one input and one target (chain, A[1,N,1], power chain).

    They see the data through α = E(IT) and β = E(I²) (the power chain: α = E(TI^μ),
    β = E(I^{2μ})), and their right-hand side is (α − βP)·v(y).
    """

    alpha: float
    beta: float

    def error(self, y: np.ndarray) -> float:
        """Excess error E − min E = (α − βP)²/(2β) (paper 1 eq. 25)."""
        return (self.alpha - self.beta * self.product(y)) ** 2 / (2.0 * self.beta)

    def dP_factor(self, y: np.ndarray) -> float:
        """The factor g(y) in dP/dt = g(y)(α − βP)."""
        raise NotImplementedError(f"{type(self).__name__} has no factor g(y) in dP/dt = g(y)(alpha - beta P)")

    def transverse_eigenvalue(self, point: Sequence[float]) -> float:
        """The only non-zero eigenvalue −β g(point) of the Jacobian at a critical point (eq. 33).

        The right-hand side is (α − βP) v(y), so at a critical point the Jacobian is
        −β v ∇Pᵀ, of rank one, with eigenvalue −β ∇P·v = −β g.  Negative: attractor.
        """
        return -self.beta * self.dP_factor(self.as_state(point, "point"))


class MatrixLayout:
    """The state layout every linear system shares, seen as A[N_0, ..., N_L] (``sizes``).

    The state is A_1, ..., A_L (A_i of shape N_i × N_{i-1}, each flattened row-major),
    then C_1..C_{L-1} (shapes :func:`channel_shapes`) if the channel adapts: the chain
    A[1,...,1], A[1,N,1], A[N,1,N] and the general matrix form all store their weights so.
    A fixed channel (RBP/SRBP) is not state: :meth:`fixed_channels` gives it, from the
    flat vector ``c`` unless a system overrides it.  Mixed into a :class:`LearningSystem`
    (for ``adaptive`` and ``rule``).
    """

    sizes: tuple[int, ...]
    rule: str
    c: np.ndarray | None = None

    @property
    def a_shapes(self) -> list[tuple[int, int]]:
        """Shapes of A_1..A_L."""
        n = self.sizes
        return [(n[i], n[i - 1]) for i in range(1, len(n))]

    @property
    def c_shapes(self) -> list[tuple[int, int]]:
        """Shapes of C_1..C_{L-1} (none for GD)."""
        return channel_shapes(self.sizes, self.rule)

    def fixed_channels(self) -> list[np.ndarray]:
        """The fixed channel matrices C_1..C_{L-1} (RBP/SRBP), cut from ``c``; none otherwise."""
        return [] if self.c is None else _cut(self.c, self.c_shapes)[0]

    def pack(self, As: Sequence[np.ndarray], Cs: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """State vector from the matrices (Cs only for adaptive rules)."""
        L = len(self.sizes) - 1
        if len(As) != L:
            raise ValueError(f"As must hold {L} matrices; got {len(As)}")
        for i, (a, shape) in enumerate(zip(As, self.a_shapes), 1):
            if np.shape(a) != shape:
                raise ValueError(f"A{i} must have shape {shape}; got {np.shape(a)}")
        parts = [np.ravel(a) for a in As]
        if self.adaptive:
            if Cs is None or len(Cs) != L - 1:
                raise ValueError(f"adaptive rule {self.rule!r} needs Cs, {L - 1} matrices with shapes {self.c_shapes}")
            for i, (c, shape) in enumerate(zip(Cs, self.c_shapes), 1):
                if np.shape(c) != shape:
                    raise ValueError(f"C{i} must have shape {shape}; got {np.shape(c)}")
            parts += [np.ravel(c) for c in Cs]
        return np.concatenate(parts).astype(float)

    def unpack(self, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(As, Cs): the forward matrices and the channel matrices in use (fixed or state), as views of ``y``."""
        y = np.asarray(y, dtype=float)
        As, k = _cut(y, self.a_shapes)
        if not self.adaptive:
            return As, self.fixed_channels()
        return As, _cut(y[k:], self.c_shapes)[0]

    def to_matrices(self, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Copies of (As, Cs) for the discrete learner (Cs empty for GD)."""
        As, Cs = self.unpack(y)
        return [a.copy() for a in As], [c.copy() for c in Cs]

    def from_matrices(self, As: Sequence[np.ndarray], Cs: Sequence[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`to_matrices` (the fixed channel of RBP/SRBP is dropped)."""
        return self.pack(As, Cs if self.adaptive else None)


def _cut(flat: np.ndarray, shapes: Sequence[tuple[int, int]]) -> tuple[list[np.ndarray], int]:
    """Consecutive row-major matrices of ``shapes`` read from ``flat``, and how many entries they took."""
    mats, k = [], 0
    for r, s in shapes:
        mats.append(flat[k : k + r * s].reshape(r, s))
        k += r * s
    return mats, k


class PairedLayers(MatrixLayout):
    """Shared by A[1,N,1] and A[N,1,N]: state (a_1..a_N, b_1..b_N[, c_1..c_N])."""

    width: int

    def _pair_names(self) -> tuple[str, ...]:
        n = self.width
        return tuple(f"{p}{i}" for p in ("a", "b") + (("c",) if self.adaptive else ()) for i in range(1, n + 1))

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, c) as flat vectors; c is the channel used by the rule (b itself for GD)."""
        n = self.width
        a, b = y[:n], y[n : 2 * n]
        if self.adaptive:
            return a, b, y[2 * n :]
        return a, b, (self.c if self.rule_spec.has_channel else b)
