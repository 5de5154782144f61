"""Discrete minibatch learning of the actual networks, to set beside the ODEs.

The learners here do not use the ODE right-hand sides.  They run the network forward
on a minibatch, send the output error back through the learning channel as the rule
prescribes, and apply Δw = η · (channel signal) · (presynaptic activity) averaged over
the minibatch (paper 1 eq. 21, 34, 43, 55, 64, 80; paper 2 eq. 22, 48, 54, 97, 119,
123-124, 127-128).  With a small η and time t = η · steps they follow the averaged
equations, which the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import LearningSystem, Trajectory
from .power import AdaptivePowerChain, PowerChain
from .rules import rule_spec
from .samples import Dataset

__all__ = ["LinearNetwork", "PowerNetwork", "STDPNetwork", "minibatch_learning"]


class LinearNetwork:
    """A linear network A[N_0, ..., N_L] trained by BP (``gd``), RBP, SRBP, ARBP or ASRBP.

    ``As`` are the forward matrices A_i (N_i × N_{i-1}); ``Cs`` the channel matrices
    C_i (N_i × N_{i+1} for RBP/ARBP, N_i × N_L for SRBP/ASRBP; empty for GD).
    """

    def __init__(self, As: Sequence[np.ndarray], Cs: Sequence[np.ndarray], rule: str) -> None:
        self.As = [np.array(a, dtype=float) for a in As]
        self.Cs = [np.array(c, dtype=float) for c in Cs]
        self.rule = rule
        self.spec = rule_spec(rule)
        if self.spec.stdp is not None:
            raise ValueError(f"rule {rule!r} learns in three phases: use STDPNetwork")

    def step(self, inputs: np.ndarray, targets: np.ndarray, eta: float) -> None:
        """One update on a minibatch (rows of ``inputs`` and ``targets``)."""
        L, n = len(self.As), len(inputs)
        acts = [inputs.T]  # O^0 .. O^L, columns are samples
        for a in self.As:
            acts.append(a @ acts[-1])
        err = targets.T - acts[-1]  # T − O: the error at the top (eq. 5, 8)
        # R^i: back through A_{i+1}ᵀ (GD, eq. 4), C_i layer by layer (RBP/ARBP, eq. 7) or C_i
        # straight from the output error (SRBP/ASRBP, paper 2 eq. 11)
        spec = self.spec
        signals = spec.signals(self.As, self.Cs, err)
        dAs = [eta * signals[i] @ acts[i - 1].T / n for i in range(1, L + 1)]
        dCs = []
        if spec.adaptive:  # Δc^l_rs = η R^{source(l)}_s O^l_r: ARBP paper 2 §3.4, ASRBP eq. 128
            dCs = [eta * acts[i] @ signals[spec.source(i, L)].T / n for i in range(1, L)]
        for a, d in zip(self.As, dAs):
            a += d
        for c, d in zip(self.Cs, dCs):
            c += d


class STDPNetwork:
    """A linear A[N_0, N_1, N_2] learning by the three phases of paper 2 eq. 15-18 (STDP-like rule).

    Per minibatch: phase 0 runs forward, O¹ = A_1I and O = A_2O¹; phase 1 feeds the output
    back through the channel, h₁ = A_1I + C_1O (eq. 16); phase 2 feeds the clamped target
    back, h₂ = A_1I + C_1T (eq. 17).  Each weight then moves by its postsynaptic *change*
    times its presynaptic activity (eq. 13-14): ΔA_1 = η(h₂ − h₁)Iᵀ,
    ΔA_2 = η(T − O)h₁ᵀ and ΔC_1 = η(h₂ − h₁)Oᵀ (``rule="stdp"``, eq. 32) or η(h₂ − h₁)Tᵀ
    (``rule="stdp-t"``, eq. 19).  No averaged equation is used.
    """

    def __init__(self, As: Sequence[np.ndarray], Cs: Sequence[np.ndarray], rule: str) -> None:
        self.spec = rule_spec(rule)
        if self.spec.stdp is None:
            raise ValueError(f"STDPNetwork needs an STDP rule ('stdp' or 'stdp-t'); got {rule!r}")
        if len(As) != 2 or len(Cs) != 1:
            raise ValueError(f"STDPNetwork is a single-hidden-layer network: As = [A1, A2], Cs = [C1]; got {len(As)} and {len(Cs)}")
        self.As = [np.array(a, dtype=float) for a in As]
        self.Cs = [np.array(c, dtype=float) for c in Cs]
        self.rule = rule

    def step(self, inputs: np.ndarray, targets: np.ndarray, eta: float) -> None:
        """The three phases on a minibatch (rows of ``inputs`` and ``targets``), then the updates."""
        (a1, a2), (c1,) = self.As, self.Cs
        x, t = inputs.T, targets.T
        n = x.shape[1]
        drive = a1 @ x
        out = a2 @ drive  # phase 0
        h1 = drive + c1 @ out  # phase 1: output fed back (eq. 16)
        h2 = drive + c1 @ t  # phase 2: target fed back (eq. 17)
        d_hidden, d_out = h2 - h1, t - out  # postsynaptic changes (eq. 18)
        pre_c = out if self.spec.stdp == "output" else t
        d_a1 = eta * d_hidden @ x.T / n
        d_a2 = eta * d_out @ h1.T / n
        d_c1 = eta * d_hidden @ pre_c.T / n
        a1 += d_a1
        a2 += d_a2
        c1 += d_c1


class PowerNetwork:
    """The non-linear A[1,1,1] of paper 1 §7.9: O = a_2 (a_1 I)^μ, channel weight c_1."""

    def __init__(self, a1: float, a2: float, c1: float | None, mu: float, derivative: bool | str, *, adaptive: bool = False) -> None:
        self.a1, self.a2, self.c1, self.mu, self.derivative = float(a1), float(a2), c1, float(mu), derivative
        #: the channel weight learns like a_2, Δc_1 = η(T − O)O¹ (paper 2 eq. 132)
        self.adaptive = adaptive

    def step(self, inputs: np.ndarray, targets: np.ndarray, eta: float) -> None:
        i, t = inputs.ravel(), targets.ravel()
        s1 = self.a1 * i
        o1 = np.power(s1, self.mu)  # hidden activity (S¹)^μ
        err = t - self.a2 * o1
        d_a2 = eta * np.mean(err * o1)  # top layer: gradient (eq. 113, first line)
        if self.derivative is False:
            d_a1 = eta * self.c1 * np.mean(err * i)  # random channel, no derivative
        else:
            gain = self.c1 if self.derivative is True else self.a2
            d_a1 = eta * gain * np.mean(err * self.mu * np.power(s1, self.mu - 1) * i)  # times f'(S¹)
        self.a1 += d_a1
        self.a2 += d_a2
        if self.adaptive:
            self.c1 += d_a2  # ΔC_1 = η(T − O)O¹, the same average as Δa_2


def minibatch_learning(
    system: LearningSystem,
    y0: Sequence[float],
    data: Dataset,
    *,
    eta: float,
    t_max: float,
    batch_size: int | None = 32,
    seed: int = 0,
    n_points: int = 200,
) -> Trajectory:
    """Train the actual network of ``system`` on ``data`` from the state ``y0``.

    Minibatches of ``batch_size`` samples are drawn with replacement from ``data`` with
    a generator seeded by ``seed`` (``batch_size=None``: the whole set every step, i.e.
    batch learning).  Runs ``round(t_max/eta)`` steps and records the state at about
    ``n_points`` times t = η·step.  ``system`` must be a :class:`PowerChain` or have
    ``to_matrices``/``from_matrices`` (all the linear systems).
    """
    y0 = system.as_state(y0)
    if not eta > 0:
        raise ValueError(f"eta must be > 0; got {eta}")
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0; got {t_max}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    steps = max(1, int(round(t_max / eta)))
    every = max(1, steps // max(1, n_points - 1))
    rng = np.random.default_rng(seed)
    m = len(data.inputs)

    net, state = _network(system, y0)
    ts, ys = [0.0], [state()]
    status = "t_max"
    for k in range(1, steps + 1):
        if batch_size is None:
            xb, tb = data.inputs, data.targets
        else:
            idx = rng.integers(0, m, size=batch_size)
            xb, tb = data.inputs[idx], data.targets[idx]
        net.step(xb, tb, eta)
        if k % every == 0 or k == steps:
            y = state()
            ts.append(k * eta)
            ys.append(y)
            if not np.all(np.isfinite(y)):
                status = "diverged"
                break
    return Trajectory(t=np.array(ts), y=np.array(ys), names=system.names, status=status, system=system)


def _network(system: LearningSystem, y0: np.ndarray):
    """(the network that ``system`` averages, started at ``y0``; a function giving its state as a flat vector)."""
    if isinstance(system, PowerChain):
        net = PowerNetwork(y0[0], y0[1], system.c1, system.mu, system.derivative)
        return net, lambda: np.array([net.a1, net.a2])
    if isinstance(system, AdaptivePowerChain):
        net = PowerNetwork(y0[0], y0[1], float(y0[2]), system.mu, True, adaptive=True)
        return net, lambda: np.array([net.a1, net.a2, net.c1])
    if hasattr(system, "to_matrices"):
        As, Cs = system.to_matrices(y0)
        net = (STDPNetwork if system.rule_spec.stdp is not None else LinearNetwork)(As, Cs, system.rule)
        return net, lambda: system.from_matrices(net.As, net.Cs)
    raise TypeError(f"no discrete network for {type(system).__name__}")
