"""``lchannel theory trajectory``: one system's ODE beside its discrete minibatch learning.

Prints the predicted and the reached fixed point, the conserved quantities and, for the
matrix form, P against P* = Σ_TIΣ_II⁻¹ (paper 1 Theorem 8); ``--phase X Y`` draws several
trajectories in one plane instead (:func:`phase`).  Left out, ``--t-max`` is fitted to the
system (:func:`_horizon`), so that every default converges and its panel shows the dynamics.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from .build import (
    AUTO_CAP,
    AUTO_FACTOR,
    AUTO_FALLBACK,
    OptionError,
    build_system,
    finite_option,
)
from .cli_common import check_out, check_seed, fmt
from .discrete import minibatch_learning
from .general import GeneralLinear
from .power import NoFixedPointError

__all__ = ["trajectory", "phase"]


def trajectory(args: argparse.Namespace) -> int:
    """Run ``trajectory``: the ODE to its limit, the reports, the discrete learning beside it, the figure."""
    if getattr(args, "phase", None) is not None:  # issue 14: a phase portrait instead of weights against time
        return phase(args)
    t_max = None if args.t_max is None else finite_option("--t-max", args.t_max, positive=True)
    out = check_out(args.out)
    check_seed(args.seed)
    _check_discrete_options(args)
    if t_max is not None and not args.no_discrete:
        _check_steps(t_max, args.eta)
    system, y0, data, title = build_system(args)

    from .plots import plot_summary, save  # lazy: theory.plots loads matplotlib

    print(title)
    print(f"initial state: {fmt(system.names, y0)}")
    predicted = _report_prediction(system, y0)
    horizon = _horizon(system, y0, t_max)
    traj = system.integrate(y0, horizon)
    reached = "reached fixed point" if traj.status == "converged" else "state reached (not converged)"
    print(f"{reached} (ODE, t = {traj.t[-1]:.4g}, {traj.status}, |dy/dt| = {system.speed(traj.final):.2e}): {fmt(system.names, traj.final)}")
    if predicted is not None:
        print(f"|reached - predicted| = {np.max(np.abs(traj.final - predicted)):.3e}")
    p_star = _report_product(system, traj)
    print(f"excess error E(P) - E(P*) at the end (P* the least-squares map): {system.error(traj.final):.3e}")
    _report_conserved(traj)
    reference = _error_reference(system, traj, predicted)
    discrete, traj_plot = None, traj
    if not args.no_discrete:
        _check_steps(horizon, args.eta)
        # The discrete run covers the whole horizon, so the ODE is drawn over it too.
        if traj.t[-1] < horizon:
            traj_plot = system.integrate(y0, horizon, stop_when_converged=False)
        discrete = minibatch_learning(system, y0, data, eta=args.eta, t_max=horizon, batch_size=args.batch_size, seed=args.seed)
        _report_discrete(system, y0, discrete, args, len(data.inputs))
    fig = plot_summary(traj_plot, discrete=discrete, predicted=predicted, title=title, reference=reference,
                       product_target=p_star if args.system == "general" else None)
    print(f"wrote {save(fig, out)}")
    return 0


def phase(args: argparse.Namespace) -> int:
    """``trajectory --phase X Y``: several trajectories of one system projected on (X, Y), with start,
    reached point and predicted point (where the theory gives one), for every system.  Without
    ``--t-max`` each trajectory runs until it converges, at most to twice the automatic horizon of
    the first (:func:`_horizon`)."""
    t_max = None if args.t_max is None else finite_option("--t-max", args.t_max, positive=True)
    out = check_out(args.out)
    if not 1 <= args.phase_starts <= 50:
        raise OptionError(f"--phase-starts: must be an integer in 1..50; got {args.phase_starts}")
    check_seed(args.seed)
    system, y0, _, title = build_system(args)
    for name in args.phase:
        if name not in system.names:
            raise OptionError(f"--phase: {name!r} is not a component of this system ({', '.join(system.names)})")
    from .plots import plot_phase, save  # lazy: theory.plots loads matplotlib

    rng = np.random.default_rng(args.seed + 1)
    starts = [y0] + [y0 * np.exp(rng.normal(0.0, 0.4, y0.size)) for _ in range(args.phase_starts - 1)]  # signs kept (a1 > 0 stays)
    print(title)
    if t_max is None:
        t_max = 2 * _horizon(system, y0, None)
    trajectories, predicted = [], []
    for start in starts:
        traj = system.integrate(start, t_max)
        try:
            pred = system.predicted_fixed_point(start)
            text = fmt(system.names, pred)
        except (NotImplementedError, ArithmeticError, ValueError) as exc:
            pred, text = None, f"not available ({exc})"
        trajectories.append(traj)
        predicted.append(pred)
        print(f"start {fmt(system.names, start)}")
        print(f"  predicted fixed point: {text}")
        print(f"  reached (t = {traj.t[-1]:.4g}, {traj.status}, |dy/dt| = {system.speed(traj.final):.2e}): {fmt(system.names, traj.final)}")
        if pred is not None:
            print(f"  |reached - predicted| = {np.max(np.abs(traj.final - pred)):.3e}")
    fig = plot_phase(trajectories, *args.phase, predicted=predicted, title=title)
    print(f"wrote {save(fig, out)}")
    return 0


def _round_up(x: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 4, 5, 6, 8 times a power of ten that is >= x."""
    scale = 10.0 ** math.floor(math.log10(x))
    return next(m * scale for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10) if m * scale >= x * (1 - 1e-12))


def _horizon(system, y0: np.ndarray, t_max: float | None) -> float:
    """``--t-max`` or, left out, AUTO_FACTOR times the time the ODE takes to converge (rounded up),
    so that the panel shows the whole approach and its end; AUTO_FALLBACK when it does not converge."""
    if t_max is not None:
        return t_max
    probe = system.integrate(y0, AUTO_CAP, n_points=2)
    if probe.status == "converged":
        horizon = _round_up(max(AUTO_FACTOR * float(probe.t[-1]), 1.0))
        print(f"t_max = {horizon:g} (auto: {AUTO_FACTOR:g} x the time {probe.t[-1]:.4g} at which the ODE converges)")
        return horizon
    print(f"t_max = {AUTO_FALLBACK:g} (auto: the ODE does not converge by t = {probe.t[-1]:.4g}, status {probe.status}; set --t-max to look further)")
    return AUTO_FALLBACK


def _report_prediction(system, y0: np.ndarray):
    """Print and return the predicted fixed point (None where the theory gives none)."""

    try:
        predicted = system.predicted_fixed_point(y0)
    except NoFixedPointError as exc:
        print(f"predicted fixed point: none ({exc})")
        return None
    except (NotImplementedError, ArithmeticError, ValueError) as exc:
        print(f"predicted fixed point: not available ({exc})")
        return None
    print(f"predicted fixed point: {fmt(system.names, predicted)}")
    return predicted


def _report_product(system, traj) -> np.ndarray | None:
    """For the matrix form: P at the end against P* = Σ_TIΣ_II⁻¹; for three layers with a fixed channel
    also paper 1 Theorem 8's C_1P against C_1P* and the monotone matrix V (:meth:`GeneralLinear.lyapunov_matrix`);
    with a bottleneck, the best rank-r error.  Returns P* (None for other systems)."""

    if not isinstance(system, GeneralLinear):
        return None
    p_star, p = system.optimal_product(), system.product(traj.final)
    print(f"product P = A_L...A_1 at the end against P* = Σ_TI Σ_II^-1 (least squares): max |P - P*| = {np.max(np.abs(p - p_star)):.3e}")
    if system.depth == 2 and system.rule_spec.fixed_channel:
        c1 = system.C[0]
        print(f"paper 1 Theorem 8: max |C1 P - C1 P*| = {np.max(np.abs(c1 @ (p - p_star))):.3e}")
        v = [system.lyapunov_matrix(y) for y in traj.y]
        rise = max(float(np.linalg.eigvalsh(b - a).max()) for a, b in zip(v, v[1:])) if len(v) > 1 else 0.0
        print(f"paper 1 Theorem 8: its matrix V never increases; largest eigenvalue of V(t') - V(t) between samples along the ODE: {rise:.1e}")
    rank = min(system.sizes[1:-1])
    if rank < np.linalg.matrix_rank(p_star):
        s = np.linalg.svd(p_star @ _sqrtm(system.sigma_II), compute_uv=False)
        print(f"a hidden layer of {rank} unit(s) limits the rank of P: the best rank-{rank} map has excess error "
              f"{0.5 * float(np.sum(s[rank:] ** 2)):.4g} (reduced-rank regression); reached {system.error(traj.final):.4g}")
    return p_star


def _sqrtm(m: np.ndarray) -> np.ndarray:
    evals, evecs = np.linalg.eigh(m)
    return (evecs * np.sqrt(np.maximum(evals, 0.0))) @ evecs.T


def _report_conserved(traj) -> None:
    """The largest change of each conserved quantity along the ODE (their constancy is what the theorems use)."""
    values = traj.conserved()
    if values:
        parts = [f"{name}: {float(np.max(np.abs(v - v[0]))):.1e}" for name, v in values.items()]
        print("conserved quantities, largest change along the ODE: " + "; ".join(parts))


def _error_reference(system, traj, predicted) -> float | None:
    """E(limit) − min E when the limit (predicted, or reached) is not a global minimum, else None."""
    limit = predicted if predicted is not None else (traj.final if traj.status == "converged" else None)
    if limit is None:
        return None
    excess = float(system.error(limit))
    if excess <= 1e-9 * max(1.0, float(system.error(traj.y[0]))):
        return None
    sizes = getattr(system, "sizes", None)
    why = f" (a hidden layer of {min(sizes[1:-1])} unit(s) limits the rank of P)" if sizes and min(sizes[1:-1]) < min(sizes[0], sizes[-1]) else ""
    print(f"E(limit) - min E = {excess:.4g}: the limit is not a global minimum of E{why}; the lower panel shows |E - E(limit)|")
    return excess


def _report_discrete(system, y0: np.ndarray, discrete, args: argparse.Namespace, n_samples: int) -> None:
    """The end of the discrete learning and its largest distance from the ODE at the same times t = eta*steps."""
    print(f"discrete minibatch learning (eta = {args.eta:g}, batch {args.batch_size}, {n_samples} samples, t = {discrete.t[-1]:.4g}, {discrete.status}): {fmt(system.names, discrete.final)}")
    ode = system.integrate(y0, float(discrete.t[-1]), t_eval=discrete.t, stop_when_converged=False)
    n = min(len(ode.t), len(discrete.t))
    gap = np.max(np.abs(ode.y[:n] - discrete.y[:n]), axis=1)
    if not np.all(np.isfinite(gap)):
        print("discrete vs ODE: the discrete learning left the finite numbers")
        return
    k = int(np.argmax(gap))
    print(f"discrete vs ODE at the same t = eta*steps: largest |difference| {gap[k]:.3e} (t = {discrete.t[k]:.4g}), at the end {gap[n - 1]:.3e}")


def _check_discrete_options(args: argparse.Namespace) -> None:
    if args.no_discrete:
        return
    finite_option("--eta", args.eta, positive=True)
    if not 1 <= args.batch_size <= 100_000:
        raise OptionError(f"--batch-size: must be an integer in 1..100000; got {args.batch_size}")


def _check_steps(t_max: float, eta: float) -> None:
    if t_max / eta > 2_000_000:
        raise OptionError(f"--eta: t_max/eta = {t_max / eta:.3g} steps is too many (at most 2e6); raise --eta or lower --t-max")
