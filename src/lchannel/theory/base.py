"""The learning system every analysis shares: dy/dt = F(y), its linearisation, its data.

Every system of this package is an autonomous ODE dy/dt = F(y) for the averaged
(batch) learning dynamics of a small network (paper 1 section 7, paper 2 section 5).
A system only has to say what F is; :class:`LearningSystem` integrates it
(:mod:`~lchannel.theory.trajectory`), linearises it around critical points (paper 1
eq. 32-33) and checks its states.  The argument checks live in
:mod:`~lchannel.theory.checks`, the matrix layout of the state in
:mod:`~lchannel.theory.layout`; their names stay importable from here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .checks import channel_weights, check_finite, check_statistics, fixed_channel
from .layout import MatrixLayout, PairedLayers, channel_shapes
from .rules import ADAPTIVE_RULES, NON_ADAPTIVE_RULES, RULE_TABLE, RULES, Rule, check_rule, rule_spec
from .trajectory import Trajectory, solve

__all__ = [
    "LearningSystem",
    "Trajectory",
    "Stability",
    "check_rule",
    "check_finite",
    "check_statistics",
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
        return solve(self, y0, t_max, n_points=n_points, t_eval=t_eval, method=method, rtol=rtol, atol=atol,
                     stop_when_converged=stop_when_converged, converge_tol=converge_tol, blowup=blowup)

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
