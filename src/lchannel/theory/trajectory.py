"""Integrating a learning system with SciPy, and the :class:`Trajectory` it yields.

The systems are the averaged (batch) learning equations dy/dt = F(y) of paper 1 §7 and
paper 2 §5; :func:`solve` integrates one with :func:`scipy.integrate.solve_ivp`, stops
at a fixed point or a blow-up, samples the dense output and records how it ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.integrate import solve_ivp

if TYPE_CHECKING:
    from .base import LearningSystem

__all__ = ["Trajectory", "solve"]


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


def solve(system: LearningSystem, y0: np.ndarray, t_max: float, *, n_points: int, t_eval: Sequence[float] | None,
          method: str, rtol: float, atol: float, stop_when_converged: bool, converge_tol: float,
          blowup: float) -> Trajectory:
    """Integrate ``system`` from the checked state ``y0`` (:meth:`LearningSystem.integrate` says how)."""
    events = _stop_events(system, stop_when_converged, converge_tol, blowup)
    sol = solve_ivp(system.rhs, (0.0, t_max), y0, method=method, rtol=rtol, atol=atol, events=events, dense_output=True)
    t, y = _sample(sol, y0, t_eval, n_points)
    status = _status(system, sol, y, stop_when_converged, converge_tol)
    bad = ~np.all(np.isfinite(y), axis=1)
    if np.any(bad):  # left the domain of F (e.g. a negative base of a fractional power)
        first = int(np.argmax(bad))
        t, y, status = t[:first], y[:first], "failed"
    return Trajectory(t=t, y=y, names=system.names, status=status, system=system)


def _stop_events(system: LearningSystem, stop_when_converged: bool, converge_tol: float, blowup: float) -> list:
    """The terminal events of solve_ivp: |dy/dt| falls below ``converge_tol`` (a fixed point is
    reached, so long horizons cost nothing), or |y| exceeds ``blowup`` (escape to infinity)."""
    events = []
    if stop_when_converged:
        def converged(t: float, y: np.ndarray) -> float:
            return system.speed(y) - converge_tol
        converged.terminal = True  # type: ignore[attr-defined]
        converged.direction = -1  # type: ignore[attr-defined]
        events.append(converged)

    def escaped(t: float, y: np.ndarray) -> float:
        return float(np.max(np.abs(y))) - blowup
    escaped.terminal = True  # type: ignore[attr-defined]
    escaped.direction = 1  # type: ignore[attr-defined]
    events.append(escaped)
    return events


def _sample(sol, y0: np.ndarray, t_eval: Sequence[float] | None, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(t, y) from the dense output, so that the curve is smooth even when the solver
    stopped early at a fixed point; ``t_eval`` beyond the stop is dropped."""
    t_end = float(sol.t[-1])
    if t_eval is None:
        t = np.linspace(0.0, t_end, n_points)
    else:
        t = np.asarray(t_eval, dtype=float)
        t = t[t <= t_end + 1e-12 * max(1.0, t_end)]
    y = sol.sol(t).T if (sol.sol is not None and t_end > 0) else np.tile(y0, (t.size, 1))
    if t_eval is None:
        y[-1] = sol.y[:, -1]  # the exact last state (the event state if one stopped the solver)
    return t, y


def _status(system: LearningSystem, sol, y: np.ndarray, stop_when_converged: bool, converge_tol: float) -> str:
    """How the integration ended (:class:`Trajectory`'s ``status``); which event fired tells
    a fixed point from a blow-up."""
    if not sol.success:
        return "failed"
    if sol.status == 1:
        hit_conv = stop_when_converged and sol.t_events[0].size > 0
        return "converged" if hit_conv else "diverged"
    if system.speed(y[-1]) < converge_tol:
        return "converged"
    return "t_max"
