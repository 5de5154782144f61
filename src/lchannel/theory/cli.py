"""``lchannel theory``: draw the learning dynamics and print predicted and reached fixed points.

The main ``lchannel`` command calls :func:`register` on its sub-parsers and dispatches
with ``args.func(args)``; ``python -m lchannel.theory ...`` runs the same commands alone.

    lchannel theory vector-field --c1 1 --alpha 1 --beta 1 --out field.png
    lchannel theory trajectory --system chain --depth 3 --c 0.8 -0.5 --y0 0.5 -1 0.3 --out chain.png
    lchannel theory trajectory --system general --sizes 3,4,2 --sigma random --rule arbp --out general.png

Left out, ``--t-max`` is fitted to the system: 1.5 times the time its ODE takes to converge
(:func:`~lchannel.theory.cli_trajectory._horizon`), so that every default converges and its
panel shows the dynamics.  This module is the parser and the dispatch; the commands live in
:mod:`~lchannel.theory.cli_field` and :mod:`~lchannel.theory.cli_trajectory`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..run.cliutil import DefaultsHelpFormatter
from .build import AUTO_CAP, AUTO_FACTOR, AUTO_FALLBACK, DEFAULT_SIZES, DEFAULT_WIDTH, DERIVATIVES, SIZES_FORM, SYSTEMS, OptionError
from .cli_field import DEFAULT_RANGE, vector_field
from .cli_trajectory import trajectory

__all__ = ["register", "run", "main", "build_parser"]


# ---------------------------------------------------------------------------- parser
def _or_auto(convert, what: str):
    """An argparse type: ``convert(text)``, or None for ``auto`` (the system's default:
    ``--depth`` its default depth, ``--t-max`` fitted to the convergence time,
    :func:`~lchannel.theory.cli_trajectory._horizon`)."""
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


# ---------------------------------------------------------------------------- dispatch
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
            return vector_field(args)
        return trajectory(args)
    except OptionError as exc:
        print(f"lchannel theory {command}: error: {exc}", file=sys.stderr)
        return 2


def _command_parser(theory: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of the ``theory`` sub-command ``name``."""
    (sub,) = [a for a in theory._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _add_phase_arguments(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--phase", nargs=2, metavar=("X", "Y"), default=None, help="draw the phase portrait in the plane of two state components (e.g. a1 a2) instead of weights against time")
    tr.add_argument("--phase-starts", type=int, default=6, help="with --phase: trajectories drawn, --y0 and random neighbours, 1..50")


# ---------------------------------------------------------------------------- the general system (issue 3)
def _add_general_arguments(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--sizes", default=None, help=f"general: the architecture A[N0,...,NL] as {SIZES_FORM} (default {DEFAULT_SIZES})")
    tr.add_argument("--sigma", default=None, help="general: the input covariance Sigma_II = E(I I^T): random (seeded, eigenvalues 0.5..2 in a random basis; the default), identity, N0 comma-separated values (a diagonal) or N0*N0 values (a symmetric positive definite matrix, row by row)")
