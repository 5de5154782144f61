"""``lchannel theory vector-field``: the (a1, a2) plane of A[1,1,1] under SRBP (paper 1 eq. 23,
Figure 11), with the fixed point each trajectory reaches beside the one the cubic of eq. 31
predicts."""

from __future__ import annotations

import argparse

import numpy as np

from .build import OptionError, finite_option
from .chain import LinearChain
from .cli_common import check_out, check_seed, fmt

__all__ = ["DEFAULT_RANGE", "vector_field"]

# vector-field's axes when not given (theory.plots.DEFAULT_WINDOW): widened to show every
# trajectory.  Identity tells a range left out from the same range typed.
DEFAULT_RANGE = (-3.0, 3.0)


def vector_field(args: argparse.Namespace) -> int:
    """Run ``vector-field``: print predicted and reached fixed points, then draw the plane."""
    c1 = finite_option("--c1", args.c1, nonzero=True)
    alpha = finite_option("--alpha", args.alpha)
    beta = finite_option("--beta", args.beta, positive=True)
    ranges = _ranges(args)
    if not 2 <= args.grid <= 200:
        raise OptionError(f"--grid: must be an integer in 2..200; got {args.grid}")
    t_max = finite_option("--t-max", args.t_max, positive=True)
    out = check_out(args.out)
    check_seed(args.seed)
    n_random = args.n_random if args.n_random is not None else (0 if args.start else 6)
    if not 0 <= n_random <= 100:
        raise OptionError(f"--n-random: must be an integer in 0..100; got {n_random}")
    starts = [tuple(finite_option("--start", v) for v in s) for s in (args.start or [])]
    from .plots import DEFAULT_WINDOW, plot_vector_field, save  # lazy: theory.plots loads matplotlib

    rng = np.random.default_rng(args.seed)
    (x0, x1), (y0, y1) = ranges["--a1-range"] or DEFAULT_WINDOW, ranges["--a2-range"] or DEFAULT_WINDOW
    starts += [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(n_random)]

    system = LinearChain(alpha, beta, [c1], rule="srbp")
    print(f"A[1,1,1] SRBP (eq. 23): c1 = {c1:g}, alpha = {alpha:g}, beta = {beta:g}; critical hyperbola a1*a2 = {alpha / beta:.6g}")
    _report_starts(system, starts, t_max)
    a1_range, a2_range = _window(system, starts, t_max, ranges)
    fig = plot_vector_field(system, a1_range=a1_range, a2_range=a2_range, grid=args.grid, starts=starts, t_max=t_max)
    print(f"wrote {save(fig, out)} (a1 {a1_range[0]:g}..{a1_range[1]:g}, a2 {a2_range[0]:g}..{a2_range[1]:g})")
    return 0


def _ranges(args: argparse.Namespace) -> dict[str, tuple[float, float] | None]:
    """``--a1-range`` and ``--a2-range`` checked; None where left out (fitted to the trajectories)."""
    ranges = {}
    for opt, rng_ in (("--a1-range", args.a1_range), ("--a2-range", args.a2_range)):
        if rng_ is DEFAULT_RANGE:  # not given: fitted to the trajectories (theory.plots.fit_window)
            ranges[opt] = None
            continue
        lo, hi = (finite_option(opt, v) for v in rng_)
        if not lo < hi:
            raise OptionError(f"{opt}: needs LO < HI; got {lo} {hi}")
        ranges[opt] = (lo, hi)
    return ranges


def _report_starts(system, starts, t_max: float) -> None:
    """For each start: the fixed point the cubic of eq. 31 predicts, the one integration reaches,
    and the gap between them; then the largest gap."""
    gaps = []
    for s in starts:
        traj = system.integrate(s, t_max)
        try:
            point = system.predicted_fixed_point(s)
            pred = fmt(system.names, point)
        except (ArithmeticError, ValueError) as exc:
            point, pred = None, f"none ({exc})"
        print(f"start {fmt(system.names, np.array(s))}")
        print(f"  predicted fixed point (cubic, eq. 31): {pred}")
        print(f"  reached fixed point (t = {traj.t[-1]:.4g}, {traj.status}): {fmt(system.names, traj.final)}")
        if point is not None:
            gaps.append(float(np.max(np.abs(traj.final - point))))
            print(f"  |reached - predicted| = {gaps[-1]:.3e}")
    if gaps:
        print(f"largest |reached - predicted| over the {len(gaps)} trajectories: {max(gaps):.3e}")


def _window(system, starts, t_max: float, ranges) -> tuple[tuple[float, float], tuple[float, float]]:
    """The axes: each range given, or fitted to every start, end and predicted fixed point;
    a note when a given range leaves some of them out."""
    # lazy: theory.plots loads matplotlib
    from .plots import fit_window, landmarks, outside, trajectory_points

    points = landmarks(trajectory_points(system, starts, t_max))
    fitted = fit_window(points)
    a1_range = ranges["--a1-range"] or fitted[0]
    a2_range = ranges["--a2-range"] or fitted[1]
    missing = outside(points, a1_range, a2_range)
    if missing:  # only with a range given: a fitted window holds them all
        print(f"note: {missing} of the starts, ends and predicted fixed points lie outside the window "
              f"a1 {a1_range[0]:g}..{a1_range[1]:g}, a2 {a2_range[0]:g}..{a2_range[1]:g}; leave out --a1-range/"
              f"--a2-range to fit the window to them")
    return a1_range, a2_range
