"""The systems ``lchannel theory trajectory`` builds from its options: which systems and
rules exist, their defaults, and the checks that name a bad option (:class:`OptionError`)."""

from __future__ import annotations

import argparse
import math

import numpy as np

from .chain import LinearChain
from .compressive import CompressiveNet
from .expansive import ExpansiveNet
from .general import GeneralLinear
from .layout import _cut, channel_shapes
from .power import AdaptivePowerChain, PowerChain
from .samples import (
    correlated_teacher,
    linear_teacher,
    scalar_teacher,
    whitened_autoencoder,
)
from .stdp import STDPChain


SYSTEMS = ("chain", "adaptive-chain", "expansive", "compressive", "power")


# issue 14: STDP A[1,1,1] (paper 2 §5.2) and the adaptive chains of any depth (paper 2 §5.3-5.4)
SYSTEMS += ("stdp-a111", "arbp-chain", "asrbp-chain", "adaptive-power", "a222")


# issue 3: the matrix form A[N_0,...,N_L] of every rule with a given input covariance (paper 1 §7.7, paper 2 §5.7)
SYSTEMS += ("general",)


RULES_FOR = {
    "chain": ("srbp", "rbp", "gd"),
    "adaptive-chain": ("arbp", "asrbp"),
    "expansive": ("srbp", "rbp", "arbp", "asrbp", "gd"),
    "compressive": ("srbp", "rbp", "arbp", "asrbp", "gd"),
}


RULES_FOR.update({"stdp-a111": ("stdp", "stdp-t"), "arbp-chain": ("arbp",), "asrbp-chain": ("asrbp",)})


RULES_FOR["general"] = ("srbp", "rbp", "arbp", "asrbp", "gd")


# --depth left out: A[1,1,1] for the plain chains, A[1,1,1,1] (paper 2 Theorems 3, 3') for arbp-/asrbp-chain
DEFAULT_DEPTH = {"chain": 2, "adaptive-chain": 2, "arbp-chain": 3, "asrbp-chain": 3}


DEFAULT_WIDTH = 3


DEFAULT_SIZES = "3,4,2"


SIZES_FORM = "comma-separated layer sizes N0,N1,...,NL: 3 to 7 integers in 1..10, e.g. 3,4,2"


# --t-max left out (auto): the ODE is integrated up to AUTO_CAP; if it converges at t_c the horizon is
# AUTO_FACTOR * t_c rounded up, otherwise AUTO_FALLBACK (a system that never converges: STDP T-form,
# power without derivative, a closed ARBP orbit)
AUTO_CAP, AUTO_FACTOR, AUTO_FALLBACK = 500.0, 1.5, 30.0


DERIVATIVES = {"yes": True, "no": False, "gradient": "gradient"}


class OptionError(ValueError):
    """A bad command-line option; the message names the option and what it accepts."""


# ---------------------------------------------------------------------------- validation
def finite_option(option: str, value: float, *, positive: bool = False, nonzero: bool = False) -> float:
    if value is None or not math.isfinite(value):
        raise OptionError(f"{option}: must be a finite number; got {value}")
    if positive and value <= 0:
        raise OptionError(f"{option}: must be > 0; got {value}")
    if nonzero and value == 0:
        raise OptionError(f"{option}: must be non-zero; got {value}")
    return float(value)


def _random_channel(rng: np.random.Generator, n: int) -> list[float]:
    # magnitudes away from 0: c = 0 is a trivial case of every theorem
    return list(rng.uniform(0.4, 1.5, n) * rng.choice([-1.0, 1.0], n))


def build_system(args: argparse.Namespace):
    """(system, y0, dataset, title) from the options of ``trajectory``, validated."""
    name = args.system
    rng = np.random.default_rng(args.seed)
    if name != "general":
        for opt in ("sizes", "sigma"):
            if getattr(args, opt, None) is not None:
                raise OptionError(f"--{opt}: only --system general takes it (the layer sizes and input covariance of A[N0,...,NL]); got --system {name}")
    if name in _EXTRA_BUILDERS:  # systems added for issue 14
        return _EXTRA_BUILDERS[name](args, rng)
    if name == "power":
        return _build_power(args, rng)
    return _build_linear(args, rng)


def _build_power(args: argparse.Namespace, rng: np.random.Generator):
    """``--system power``: A[1,1,1] with O¹ = (S¹)^μ (paper 1 §7.9, eq. 113-114, 119), its
    statistics E(TI^μ), E(I^2μ), ... taken from seeded samples with positive inputs."""

    for opt in ("rule", "alpha", "beta"):
        if getattr(args, opt) is not None:
            raise OptionError(f"--{opt}: does not apply to --system power (its statistics E(TI^mu), E(I^2mu), ... come from the samples; set --teacher, --mu, --derivative)")
    mu = finite_option("--mu", args.mu, positive=True)
    teacher = finite_option("--teacher", args.teacher)
    derivative = DERIVATIVES[args.derivative]
    if derivative == "gradient":
        if args.c is not None:
            raise OptionError("--c: gradient descent (--derivative gradient) has no channel weight")
        c1 = None
    else:
        c = args.c if args.c is not None else [1.0]
        if len(c) != 1:
            raise OptionError(f"--c: --system power takes 1 value (c1); got {len(c)}")
        c1 = finite_option("--c", c[0], nonzero=True)
    y0 = args.y0 if args.y0 is not None else list(rng.uniform(0.2, 1.5, 2))
    if len(y0) != 2:
        raise OptionError(f"--y0: --system power takes 2 values (a1 a2); got {len(y0)}")
    y0 = [finite_option("--y0", v) for v in y0]
    if y0[0] <= 0:
        raise OptionError(f"--y0: a1 must be > 0 for the power non-linearity (domain of Theorem 12); got {y0[0]}")
    data = linear_teacher(5000, teacher, noise=0.1, positive_inputs=True, seed=args.seed)
    system = PowerChain.from_data(data.inputs, data.targets, mu, c1, derivative=derivative)
    title = f"A[1,1,1], O = S^{mu:g}, derivative = {args.derivative}" + ("" if c1 is None else f", c1 = {c1:g}")
    return system, np.array(y0), data, title


def _build_linear(args: argparse.Namespace, rng: np.random.Generator):
    """``--system chain|adaptive-chain|expansive|compressive``: the chains A[1,...,1] and A[1,N,1]
    (paper 1 §7.2-7.5, paper 2 §5.2-5.5) and the autoencoder A[N,1,N] (paper 1 §7.6, Theorem 6)."""
    name = args.system
    rule = _check_rule_option(args)
    adaptive = rule in ("arbp", "asrbp")
    if name == "compressive":
        for opt in ("alpha", "beta"):
            if getattr(args, opt) is not None:
                raise OptionError(f"--{opt}: does not apply to --system compressive (an autoencoder with sigma_TI = sigma_II = Id, Theorem 6)")
    alpha = finite_option("--alpha", args.alpha if args.alpha is not None else 1.0)
    beta = finite_option("--beta", args.beta if args.beta is not None else 1.0, positive=True)
    depth = args.depth if args.depth is not None else DEFAULT_DEPTH.get(name, 2)
    n_fwd, n_c, fwd_names = _linear_counts(name, depth, args.width)
    c = _linear_channel(args, rng, rule, n_c)
    y0 = args.y0 if args.y0 is not None else list(rng.uniform(-1.5, 1.5, n_fwd))
    if len(y0) != n_fwd:
        raise OptionError(f"--y0: --system {name} needs {n_fwd} initial forward weights ({fwd_names}); got {len(y0)}")
    y0 = [finite_option("--y0", v) for v in y0]
    system, data, title = _linear_system(name, rule, alpha, beta, None if adaptive else c, depth, args.width, args.seed)
    if c is not None:
        title += (", c(0) = " if adaptive else ", c = ") + "[" + ", ".join(f"{v:.3g}" for v in c) + "]"
    if name != "compressive":
        title += f", α = {alpha:g}, β = {beta:g}"
    return system, np.array(y0 + (c if adaptive else [])), data, title


def _linear_counts(name: str, depth: int, width: int) -> tuple[int, int, str]:
    """(forward weights, channel weights, the forward weights' names) of the system, its
    ``--depth`` (chains) or ``--width`` (expansive, compressive) checked."""
    if name in ("chain", "adaptive-chain"):
        if not 2 <= depth <= 12:
            raise OptionError(f"--depth: must be an integer in 2..12 (number of weight layers); got {depth}")
        return depth, depth - 1, " ".join(f"a{i}" for i in range(1, depth + 1))
    if not 1 <= width <= 50:
        raise OptionError(f"--width: must be an integer in 1..50; got {width}")
    return 2 * width, width, f"a1..a{width} b1..b{width}"


def _linear_channel(args: argparse.Namespace, rng: np.random.Generator, rule: str, n_c: int) -> list[float] | None:
    """``--c``, or ``n_c`` seeded random weights; None for gradient descent (no channel)."""
    if rule == "gd":
        if args.c is not None:
            raise OptionError("--c: gradient descent (--rule gd) has no channel weights")
        return None
    c = args.c if args.c is not None else _random_channel(rng, n_c)
    if len(c) != n_c:
        raise OptionError(f"--c: --system {args.system} needs {n_c} channel weights here; got {len(c)}")
    return [finite_option("--c", v) for v in c]


def _linear_system(name: str, rule: str, alpha: float, beta: float, fixed_c, depth: int, width: int, seed: int):
    """(system, samples with its statistics, title before the channel and statistics)."""

    if name in ("chain", "adaptive-chain"):
        system = LinearChain(alpha, beta, fixed_c, depth=depth, rule=rule)
        return system, scalar_teacher(alpha, beta, 5000, seed=seed), f"A[{','.join(['1'] * (depth + 1))}] {rule.upper()}"
    if name == "expansive":
        system = ExpansiveNet(alpha, beta, fixed_c, width=width, rule=rule)
        return system, scalar_teacher(alpha, beta, 5000, seed=seed), f"A[1,{width},1] {rule.upper()}"
    eye = np.eye(width)
    system = CompressiveNet(eye, eye, fixed_c, rule=rule)
    return system, whitened_autoencoder(5000, width, seed=seed), f"A[{width},1,{width}] {rule.upper()} autoencoder"


def _check_rule_option(args: argparse.Namespace) -> str:
    accepted = RULES_FOR[args.system]
    rule = args.rule if args.rule is not None else accepted[0]
    if rule not in accepted:
        raise OptionError(f"--rule: --system {args.system} accepts {', '.join(accepted)}; got {rule!r}")
    return rule


def _values_option(option: str, given, default: list[float], count: int, what: str) -> list[float]:
    values = given if given is not None else default
    if len(values) != count:
        raise OptionError(f"{option}: --system needs {count} value(s) here ({what}); got {len(values)}")
    return [finite_option(option, v) for v in values]


def _build_stdp(args: argparse.Namespace, rng: np.random.Generator):
    """``--system stdp-a111``: A[1,1,1] under the STDP-like rule (paper 2 eq. 32-33; ``--rule stdp-t``: eq. 19)."""

    rule = _check_rule_option(args)
    alpha = finite_option("--alpha", args.alpha if args.alpha is not None else 1.0)
    beta = finite_option("--beta", args.beta if args.beta is not None else 1.0, positive=True)
    y0 = _values_option("--y0", args.y0, list(rng.uniform(-1.5, 1.5, 2)), 2, "a1 a2")
    c = _values_option("--c", args.c, _random_channel(rng, 1), 1, "the initial c1")
    data = scalar_teacher(alpha, beta, 5000, noise=0.3, seed=args.seed)
    system = STDPChain.from_data(data, rule=rule)
    form = "O-form, eq. 32" if rule == "stdp" else f"T-form, eq. 19, gamma = E(T^2) = {system.gamma:.4g}"
    title = f"A[1,1,1] STDP ({form}), c1(0) = {c[0]:.3g}, α = {alpha:g}, β = {beta:g}"
    return system, np.array(y0 + c), data, title


def _build_adaptive_chain(args: argparse.Namespace, rng: np.random.Generator):
    """``--system arbp-chain|asrbp-chain``: the adaptive chain of ``--depth`` layers (paper 2 §5.3-5.4)."""
    rule = _check_rule_option(args)
    depth = args.depth if args.depth is not None else DEFAULT_DEPTH[args.system]
    return build_system(argparse.Namespace(**{**vars(args), "system": "adaptive-chain", "rule": rule, "depth": depth}))


def _build_adaptive_power(args: argparse.Namespace, rng: np.random.Generator):
    """``--system adaptive-power``: A[1,1,1] with O¹ = (S¹)^μ and an adaptive channel (paper 2 eq. 132)."""

    for opt in ("rule", "alpha", "beta"):
        if getattr(args, opt) is not None:
            raise OptionError(f"--{opt}: does not apply to --system adaptive-power (its statistics come from the samples; set --teacher, --mu)")
    mu = finite_option("--mu", args.mu, positive=True)
    teacher = finite_option("--teacher", args.teacher)
    y0 = _values_option("--y0", args.y0, list(rng.uniform(0.2, 1.5, 2)), 2, "a1 a2")
    if y0[0] <= 0:
        raise OptionError(f"--y0: a1 must be > 0 for the power non-linearity; got {y0[0]}")
    c = _values_option("--c", args.c, [1.0], 1, "the initial c1")
    data = linear_teacher(5000, teacher, noise=0.1, positive_inputs=True, seed=args.seed)
    system = AdaptivePowerChain.from_data(data.inputs, data.targets, mu)
    title = f"A[1,1,1], O = S^{mu:g}, adaptive c1 (eq. 132), c1(0) = {c[0]:.3g}"
    return system, np.array(y0 + c), data, title


def _build_a222(args: argparse.Namespace, rng: np.random.Generator):
    """``--system a222``: paper 1 eq. 111, A[2,2,2] with Sigma_II = Sigma_TI = C1 = I (Theorem 10)."""

    for opt in ("rule", "alpha", "beta", "c"):
        if getattr(args, opt) is not None:
            raise OptionError(f"--{opt}: does not apply to --system a222 (Theorem 10 fixes Sigma_II = Sigma_TI = C1 = I, rule srbp)")
    y0 = _values_option("--y0", args.y0, list(rng.normal(size=8)), 8, "A row by row, then B")
    eye = np.eye(2)
    system = GeneralLinear((2, 2, 2), eye, eye, [eye])
    return system, np.array(y0), whitened_autoencoder(5000, 2, seed=args.seed), "A[2,2,2], Σ_II = Σ_TI = C1 = I (paper 1 eq. 111, Theorem 10)"


def _parse_sizes(text: str) -> tuple[int, ...]:
    """``--sizes 3,4,2`` as (N_0, ..., N_L)."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"--sizes: expected {SIZES_FORM}; got {text!r}") from None
    if not 3 <= len(sizes) <= 7 or not all(1 <= n <= 10 for n in sizes):
        raise OptionError(f"--sizes: expected {SIZES_FORM}; got {text!r}")
    return sizes


def _random_covariance(rng: np.random.Generator, n: int) -> np.ndarray:
    """A seeded Σ_II that is not the identity: eigenvalues 0.5..2 (geometric) in a random orthonormal basis."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.geomspace(0.5, 2.0, n)) @ q.T


def _parse_sigma(text: str, n0: int, rng: np.random.Generator) -> np.ndarray:
    """``--sigma``: Σ_II = E(IIᵀ) (N0 × N0), symmetric positive definite."""
    forms = f"random, identity, {n0} comma-separated values (a diagonal Sigma_II) or {n0 * n0} (a full Sigma_II, row by row)"
    if text == "random":
        return _random_covariance(rng, n0)
    if text == "identity":
        return np.eye(n0)
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise OptionError(f"--sigma: expected {forms}; got {text!r}") from None
    if not np.all(np.isfinite(values)):
        raise OptionError(f"--sigma: the values must be finite; got {text!r}")
    if values.size == n0:
        sigma = np.diag(values)
    elif values.size == n0 * n0:
        sigma = values.reshape(n0, n0)
    else:
        raise OptionError(f"--sigma: N0 = {n0} here, so expected {forms}; got {values.size} values")
    if not np.allclose(sigma, sigma.T, rtol=0, atol=1e-12 * max(1.0, np.abs(sigma).max())):
        raise OptionError(f"--sigma: Sigma_II = E(I I^T) must be symmetric; got {text!r}")
    smallest = float(np.linalg.eigvalsh(sigma).min())
    if smallest <= 0:
        raise OptionError(f"--sigma: Sigma_II = E(I I^T) must be positive definite; its smallest eigenvalue is {smallest:.4g}")
    return sigma


def _random_matrices(rng: np.random.Generator, shapes) -> list[float]:
    """Seeded entries of matrices of ``shapes`` (row by row), each N(0, 1/columns)."""
    return [float(v) for r, c in shapes for v in rng.normal(0.0, 1.0 / np.sqrt(c), r * c)]


def _shapes_text(shapes, name: str) -> str:
    """``"A1 4x3, A2 2x4"`` for the error messages of ``--y0`` and ``--c``."""
    return ", ".join(f"{name}{i} {r}x{c}" for i, (r, c) in enumerate(shapes, 1))


def _build_general(args: argparse.Namespace, rng: np.random.Generator):
    """``--system general``: A[N_0,...,N_L] in matrix form, any rule (paper 1 eq. 81, 84, 87; paper 2 eq. 125-126, 129-130).

    The data are T = WI + noise with a seeded teacher W and inputs of covariance Σ_II
    (``--sigma``), both exact over the set, so P* = Σ_TIΣ_II⁻¹ = W.
    """

    rule = _check_rule_option(args)
    for opt in ("depth", "alpha", "beta"):
        if getattr(args, opt) is not None:
            raise OptionError(f"--{opt}: does not apply to --system general (set --sizes N0,...,NL and --sigma)")
    sizes = _parse_sizes(args.sizes if args.sizes is not None else DEFAULT_SIZES)
    sigma = _parse_sigma(args.sigma if args.sigma is not None else "random", sizes[0], rng)
    teacher = rng.normal(size=(sizes[-1], sizes[0])) / np.sqrt(sizes[0])
    a_shapes = [(sizes[i], sizes[i - 1]) for i in range(1, len(sizes))]
    c_shapes = channel_shapes(sizes, rule)
    y0 = _values_option("--y0", args.y0, _random_matrices(rng, a_shapes), sum(r * c for r, c in a_shapes), f"the entries of {_shapes_text(a_shapes, 'A')}, row by row")
    if rule == "gd":
        if args.c is not None:
            raise OptionError("--c: gradient descent (--rule gd) has no channel matrices")
        c = []
    else:
        c = _values_option("--c", args.c, _random_matrices(rng, c_shapes), sum(r * k for r, k in c_shapes), f"the entries of {_shapes_text(c_shapes, 'C')}, row by row")
    data = correlated_teacher(5000, teacher, sigma, noise=0.1, seed=args.seed)
    adaptive = rule in ("arbp", "asrbp")
    fixed = None if adaptive or rule == "gd" else _cut(np.array(c), c_shapes)[0]
    system = GeneralLinear(sizes, data.sigma_TI, data.sigma_II, fixed, rule=rule)
    eig = ", ".join(f"{v:.3g}" for v in np.linalg.eigvalsh(data.sigma_II))
    title = f"A[{','.join(map(str, sizes))}] {rule.upper()} (matrix form), Σ_II eigenvalues {eig}"
    return system, np.array(y0 + (c if adaptive else [])), data, title


_EXTRA_BUILDERS = {
    "a222": _build_a222,
    "stdp-a111": _build_stdp,
    "arbp-chain": _build_adaptive_chain,
    "asrbp-chain": _build_adaptive_chain,
    "adaptive-power": _build_adaptive_power,
    "general": _build_general,
}
