"""``lchannel theory``: draw the learning dynamics and print predicted and reached fixed points.

The main ``lchannel`` command calls :func:`register` on its sub-parsers and dispatches
with ``args.func(args)``; ``python -m lchannel.theory ...`` runs the same commands alone.

    lchannel theory vector-field --c1 1 --alpha 1 --beta 1 --out field.png
    lchannel theory trajectory --system chain --depth 3 --c 0.8 -0.5 --y0 0.5 -1 0.3 --out chain.png
    lchannel theory trajectory --system general --sizes 3,4,2 --sigma random --rule arbp --out general.png

Left out, ``--t-max`` is fitted to the system: 1.5 times the time its ODE takes to converge
(:func:`_horizon`), so that every default converges and its panel shows the dynamics.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import numpy as np

from ..run.cliutil import DefaultsHelpFormatter, PathError, writable_file
from .build import (AUTO_CAP, AUTO_FACTOR, AUTO_FALLBACK, DEFAULT_SIZES, DEFAULT_WIDTH, DERIVATIVES, SIZES_FORM,
                    SYSTEMS, OptionError, build_system, finite_option)


__all__ = ["register", "run", "main", "build_parser"]


# ---------------------------------------------------------------------------- parser
# vector-field's axes when not given (theory.plots.DEFAULT_WINDOW): widened to show every
# trajectory.  Identity tells a range left out from the same range typed.
DEFAULT_RANGE = (-3.0, 3.0)


def _or_auto(convert, what: str):
    """An argparse type: ``convert(text)``, or None for ``auto`` (the system's default:
    ``--depth`` its default depth, ``--t-max`` fitted to the convergence time, :func:`_horizon`)."""
    def parse(text: str):
        if text == "auto":
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or auto; got {text!r}") from None
    return parse


_int_or_auto = _or_auto(int, "an integer")
_float_or_auto = _or_auto(float, "a number")


def _add_theory_arguments(theory: argparse.ArgumentParser) -> None:
    sub = theory.add_subparsers(dest="theory_command", metavar="{vector-field,trajectory}")

    vf = sub.add_parser(
        "vector-field",
        formatter_class=DefaultsHelpFormatter,
        help="the (a1, a2) plane of A[1,1,1] with trajectories (paper 1 Figure 11)",
        description="Draw the vector field of A[1,1,1] under RBP/SRBP (paper 1 eq. 23, Figure 11): arrows coloured by dP/dt, "
        "the critical hyperbolas a1*a2 = alpha/beta, the parabola a2 = -a1^2/c1 and sample trajectories; print, for each "
        "trajectory, the fixed point predicted by the cubic of eq. 31 and the one reached by integration.",
    )
    vf.add_argument("--c1", type=float, default=1.0, help="learning-channel weight c1 (non-zero)")
    vf.add_argument("--alpha", type=float, default=1.0, help="alpha = E(IT)")
    vf.add_argument("--beta", type=float, default=1.0, help="beta = E(I^2) > 0")
    vf.add_argument("--a1-range", type=float, nargs=2, default=DEFAULT_RANGE, metavar=("LO", "HI"),
                    help="a1 axis; left out, the default widened to show every start, end and predicted fixed point")
    vf.add_argument("--a2-range", type=float, nargs=2, default=DEFAULT_RANGE, metavar=("LO", "HI"),
                    help="a2 axis; left out, the default widened to show every start, end and predicted fixed point")
    vf.add_argument("--grid", type=int, default=25, help="arrows per axis, 2..200")
    vf.add_argument("--start", type=float, nargs=2, action="append", metavar=("A1", "A2"), help="a trajectory start; repeat for more")
    vf.add_argument("--n-random", type=int, default=None, help="random starts inside the axes (default 6 when no --start)")
    vf.add_argument("--t-max", type=float, default=200.0, help="integration horizon")
    vf.add_argument("--seed", type=int, default=0, help="seed of the random starts, >= 0")
    vf.add_argument("--out", default="theory-vector-field.png", help="PNG to write")

    tr = sub.add_parser(
        "trajectory",
        formatter_class=DefaultsHelpFormatter,
        help="integrate one system beside its discrete minibatch learning",
        description="Integrate the averaged learning equations of one system, run the discrete minibatch learning of the "
        "actual network on seeded samples with the same statistics, plot weights and error against time t = eta*steps, and "
        "print the predicted and the reached fixed point.",
    )
    tr.add_argument("--system", choices=SYSTEMS, default="chain", help="network: chain A[1,...,1], adaptive-chain, expansive A[1,N,1], compressive A[N,1,N], power A[1,1,1] with O=S^mu, general A[N0,...,NL] (--sizes, --sigma)")
    tr.add_argument("--rule", default=None, help="chain: srbp|rbp|gd; adaptive-chain: arbp|asrbp; expansive, compressive, general: srbp|rbp|arbp|asrbp|gd (default srbp, arbp for adaptive-chain)")
    tr.add_argument("--depth", type=_int_or_auto, default="auto", help="chains: number of weight layers L, 2..12; auto: 2, and 3 for arbp-chain and asrbp-chain")
    tr.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="expansive/compressive: N, 1..50")
    tr.add_argument("--c", type=float, nargs="+", default=None, help="channel weights (fixed, or initial values when adaptive): L-1 for chains, N for expansive/compressive, 1 for power, the entries of C1..C(L-1) row by row for general (default: seeded random)")
    tr.add_argument("--y0", type=float, nargs="+", default=None, help="initial forward weights: a1..aL (chains), a1..aN b1..bN (expansive/compressive), a1 a2 (power), the entries of A1..AL row by row (general) (default: seeded random)")
    tr.add_argument("--alpha", type=float, default=None, help="alpha = E(IT) for chains and expansive (default 1)")
    tr.add_argument("--beta", type=float, default=None, help="beta = E(I^2) > 0 for chains and expansive (default 1)")
    tr.add_argument("--mu", type=float, default=2.0, help="power: exponent mu > 0")
    tr.add_argument("--derivative", choices=tuple(DERIVATIVES), default="yes", help="power: include f'(S) in the channel (yes, eq. 114), omit it (no, eq. 113) or gradient descent (gradient, eq. 119)")
    tr.add_argument("--teacher", type=float, default=1.0, help="power: targets T = teacher*I + noise on inputs uniform in [0.5, 1.5]")
    tr.add_argument("--t-max", type=_float_or_auto, default="auto", help=f"time horizon; auto: {AUTO_FACTOR:g} x the time the ODE takes to converge, rounded up, or {AUTO_FALLBACK:g} if it does not converge by t = {AUTO_CAP:g}")
    tr.add_argument("--eta", type=float, default=0.005, help="learning rate of the discrete learning, t = eta*steps")
    tr.add_argument("--batch-size", type=int, default=32, help="minibatch size of the discrete learning")
    tr.add_argument("--no-discrete", action="store_true", help="skip the discrete learning")
    tr.add_argument("--seed", type=int, default=0, help="seed of the samples, minibatches and default weights, >= 0")
    tr.add_argument("--out", default="theory-trajectory.png", help="PNG to write")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``theory`` command to the sub-parsers of the main ``lchannel`` parser."""
    theory = subparsers.add_parser(
        "theory",
        help="learning dynamics of linear networks (ODEs, fixed points, figures)",
        description="The averaged learning dynamics of RBP/SRBP/ARBP/ASRBP in linear networks (docs/theory.md).",
    )
    _add_theory_arguments(theory)
    _add_phase_arguments(_command_parser(theory, "trajectory"))  # issue 14
    _add_general_arguments(_command_parser(theory, "trajectory"))  # issue 3
    theory.set_defaults(func=run, _theory_parser=theory)
    return theory


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser whose only command is ``theory`` (used by :func:`main`)."""
    parser = argparse.ArgumentParser(prog="lchannel")
    register(parser.add_subparsers(dest="command"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lchannel.theory ARGS`` is ``lchannel theory ARGS``."""
    args = build_parser().parse_args(["theory", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


def _check_out(out: str) -> str:
    """A .png path that can be written, checked before integrating (a typo must not cost the run)."""
    if not out.lower().endswith(".png"):
        raise OptionError(f"--out: must be a .png path; got {out!r}")
    try:
        writable_file(out, "--out", "a .png file")
    except PathError as exc:
        raise OptionError(str(exc)) from None
    return out


def _check_seed(seed: int) -> int:
    # numpy's default_rng refuses negative seeds with a bare ValueError
    if seed < 0:
        raise OptionError(f"--seed: must be an integer >= 0; got {seed}")
    return seed


def _fmt(names: Sequence[str], y: np.ndarray, limit: int = 12) -> str:
    items = [f"{n}={v:.6g}" for n, v in zip(names, y)]
    return ", ".join(items[:limit]) + (f", ... ({len(items)} values)" if len(items) > limit else "")


# ---------------------------------------------------------------------------- commands
def run(args: argparse.Namespace) -> int:
    """Run ``lchannel theory`` with parsed ``args``; return the exit status (2 on bad options)."""
    command = getattr(args, "theory_command", None)
    if command is None:
        parser = getattr(args, "_theory_parser", None)
        if parser is not None:
            parser.print_help(sys.stderr)
        print("lchannel theory: error: choose a command: vector-field or trajectory", file=sys.stderr)
        return 2
    try:
        if command == "vector-field":
            return _vector_field(args)
        return _trajectory(args)
    except OptionError as exc:
        print(f"lchannel theory {command}: error: {exc}", file=sys.stderr)
        return 2


def _vector_field(args: argparse.Namespace) -> int:
    c1 = finite_option("--c1", args.c1, nonzero=True)
    alpha = finite_option("--alpha", args.alpha)
    beta = finite_option("--beta", args.beta, positive=True)
    ranges = {}
    for opt, rng_ in (("--a1-range", args.a1_range), ("--a2-range", args.a2_range)):
        if rng_ is DEFAULT_RANGE:  # not given: fitted to the trajectories (theory.plots.fit_window)
            ranges[opt] = None
            continue
        lo, hi = (finite_option(opt, v) for v in rng_)
        if not lo < hi:
            raise OptionError(f"{opt}: needs LO < HI; got {lo} {hi}")
        ranges[opt] = (lo, hi)
    if not 2 <= args.grid <= 200:
        raise OptionError(f"--grid: must be an integer in 2..200; got {args.grid}")
    t_max = finite_option("--t-max", args.t_max, positive=True)
    out = _check_out(args.out)
    _check_seed(args.seed)
    n_random = args.n_random if args.n_random is not None else (0 if args.start else 6)
    if not 0 <= n_random <= 100:
        raise OptionError(f"--n-random: must be an integer in 0..100; got {n_random}")
    starts = [tuple(finite_option("--start", v) for v in s) for s in (args.start or [])]
    from .chain import LinearChain
    from .plots import DEFAULT_WINDOW, fit_window, landmarks, outside, plot_vector_field, save, trajectory_points

    rng = np.random.default_rng(args.seed)
    (x0, x1), (y0, y1) = ranges["--a1-range"] or DEFAULT_WINDOW, ranges["--a2-range"] or DEFAULT_WINDOW
    starts += [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(n_random)]

    system = LinearChain(alpha, beta, [c1], rule="srbp")
    print(f"A[1,1,1] SRBP (eq. 23): c1 = {c1:g}, alpha = {alpha:g}, beta = {beta:g}; critical hyperbola a1*a2 = {alpha / beta:.6g}")
    gaps = []
    for s in starts:
        traj = system.integrate(s, t_max)
        try:
            point = system.predicted_fixed_point(s)
            pred = _fmt(system.names, point)
        except (ArithmeticError, ValueError) as exc:
            point, pred = None, f"none ({exc})"
        print(f"start {_fmt(system.names, np.array(s))}")
        print(f"  predicted fixed point (cubic, eq. 31): {pred}")
        print(f"  reached fixed point (t = {traj.t[-1]:.4g}, {traj.status}): {_fmt(system.names, traj.final)}")
        if point is not None:
            gaps.append(float(np.max(np.abs(traj.final - point))))
            print(f"  |reached - predicted| = {gaps[-1]:.3e}")
    if gaps:
        print(f"largest |reached - predicted| over the {len(gaps)} trajectories: {max(gaps):.3e}")
    points = landmarks(trajectory_points(system, starts, t_max))
    fitted = fit_window(points)
    a1_range = ranges["--a1-range"] or fitted[0]
    a2_range = ranges["--a2-range"] or fitted[1]
    missing = outside(points, a1_range, a2_range)
    if missing:  # only with a range given: a fitted window holds them all
        print(f"note: {missing} of the starts, ends and predicted fixed points lie outside the window "
              f"a1 {a1_range[0]:g}..{a1_range[1]:g}, a2 {a2_range[0]:g}..{a2_range[1]:g}; leave out --a1-range/"
              f"--a2-range to fit the window to them")
    fig = plot_vector_field(system, a1_range=a1_range, a2_range=a2_range, grid=args.grid, starts=starts, t_max=t_max)
    print(f"wrote {save(fig, out)} (a1 {a1_range[0]:g}..{a1_range[1]:g}, a2 {a2_range[0]:g}..{a2_range[1]:g})")
    return 0


def _command_parser(theory: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of the ``theory`` sub-command ``name``."""
    (sub,) = [a for a in theory._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _add_phase_arguments(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--phase", nargs=2, metavar=("X", "Y"), default=None, help="draw the phase portrait in the plane of two state components (e.g. a1 a2) instead of weights against time")
    tr.add_argument("--phase-starts", type=int, default=6, help="with --phase: trajectories drawn, --y0 and random neighbours, 1..50")


def _phase(args: argparse.Namespace) -> int:
    """``trajectory --phase X Y``: several trajectories of one system projected on (X, Y), with start,
    reached point and predicted point (where the theory gives one), for every system.  Without
    ``--t-max`` each trajectory runs until it converges, at most to twice the automatic horizon of
    the first (:func:`_horizon`)."""
    t_max = None if args.t_max is None else finite_option("--t-max", args.t_max, positive=True)
    out = _check_out(args.out)
    if not 1 <= args.phase_starts <= 50:
        raise OptionError(f"--phase-starts: must be an integer in 1..50; got {args.phase_starts}")
    if args.seed < 0:
        raise OptionError(f"--seed: must be an integer >= 0; got {args.seed}")
    system, y0, _, title = build_system(args)
    for name in args.phase:
        if name not in system.names:
            raise OptionError(f"--phase: {name!r} is not a component of this system ({', '.join(system.names)})")
    from .plots import plot_phase, save

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
            text = _fmt(system.names, pred)
        except (NotImplementedError, ArithmeticError, ValueError) as exc:
            pred, text = None, f"not available ({exc})"
        trajectories.append(traj)
        predicted.append(pred)
        print(f"start {_fmt(system.names, start)}")
        print(f"  predicted fixed point: {text}")
        print(f"  reached (t = {traj.t[-1]:.4g}, {traj.status}, |dy/dt| = {system.speed(traj.final):.2e}): {_fmt(system.names, traj.final)}")
        if pred is not None:
            print(f"  |reached - predicted| = {np.max(np.abs(traj.final - pred)):.3e}")
    fig = plot_phase(trajectories, *args.phase, predicted=predicted, title=title)
    print(f"wrote {save(fig, out)}")
    return 0


# ---------------------------------------------------------------------------- the general system (issue 3)
def _add_general_arguments(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--sizes", default=None, help=f"general: the architecture A[N0,...,NL] as {SIZES_FORM} (default {DEFAULT_SIZES})")
    tr.add_argument("--sigma", default=None, help="general: the input covariance Sigma_II = E(I I^T): random (seeded, eigenvalues 0.5..2 in a random basis; the default), identity, N0 comma-separated values (a diagonal) or N0*N0 values (a symmetric positive definite matrix, row by row)")


# ---------------------------------------------------------------------------- trajectory
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
    from .power import NoFixedPointError

    try:
        predicted = system.predicted_fixed_point(y0)
    except NoFixedPointError as exc:
        print(f"predicted fixed point: none ({exc})")
        return None
    except (NotImplementedError, ArithmeticError, ValueError) as exc:
        print(f"predicted fixed point: not available ({exc})")
        return None
    print(f"predicted fixed point: {_fmt(system.names, predicted)}")
    return predicted


def _report_product(system, traj) -> np.ndarray | None:
    """For the matrix form: P at the end against P* = Σ_TIΣ_II⁻¹; for three layers with a fixed channel
    also paper 1 Theorem 8's C_1P against C_1P* and the monotone matrix V (:meth:`GeneralLinear.lyapunov_matrix`);
    with a bottleneck, the best rank-r error.  Returns P* (None for other systems)."""
    from .general import GeneralLinear

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
    print(f"discrete minibatch learning (eta = {args.eta:g}, batch {args.batch_size}, {n_samples} samples, t = {discrete.t[-1]:.4g}, {discrete.status}): {_fmt(system.names, discrete.final)}")
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


def _trajectory(args: argparse.Namespace) -> int:
    if getattr(args, "phase", None) is not None:  # issue 14: a phase portrait instead of weights against time
        return _phase(args)
    t_max = None if args.t_max is None else finite_option("--t-max", args.t_max, positive=True)
    out = _check_out(args.out)
    _check_seed(args.seed)
    _check_discrete_options(args)
    if t_max is not None and not args.no_discrete:
        _check_steps(t_max, args.eta)
    system, y0, data, title = build_system(args)

    from .discrete import minibatch_learning
    from .plots import plot_summary, save

    print(title)
    print(f"initial state: {_fmt(system.names, y0)}")
    predicted = _report_prediction(system, y0)
    horizon = _horizon(system, y0, t_max)
    traj = system.integrate(y0, horizon)
    reached = "reached fixed point" if traj.status == "converged" else "state reached (not converged)"
    print(f"{reached} (ODE, t = {traj.t[-1]:.4g}, {traj.status}, |dy/dt| = {system.speed(traj.final):.2e}): {_fmt(system.names, traj.final)}")
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
