"""Signal transforms applied inside the learning channel.

A transform maps the signal ``J^h`` that the hidden neurons of layer h receive (before
the local derivative is applied, eq. 18) to a new signal.  Transforms are small pieces
with one interface, composed in order (like ``optax.chain``): a channel built with
``transforms=[Quantize(2**-3, 3), ChannelDropout(0.1)]`` applies both, at every hidden
layer, *before* the signal is propagated further, so that in chained channels (BP, RBP)
their effect accumulates layer after layer (paper 1, section 5.1).

Transforms that draw random numbers take one generator per member from the channel's
``"channel"`` stream, so results are reproducible and member e of a population equals a
single run with its seed.
"""

from __future__ import annotations

import torch

from ..engine.activations import ACTIVATIONS, get_activation
from ..engine.rng import dropout_mask
from ..engine.quantize import SIGNAL_ALPHA, quantize, quantize_  # noqa: F401  (eq. 19, re-exported here)


class SignalTransform:
    """Maps the signal received by a hidden layer, shape ``(E, B, N_h)``, to a new one."""

    needs_rng = False

    def __call__(self, J: torch.Tensor, h: int, generators=None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Quantize(SignalTransform):
    """Quantized error signal, eq. 16-19 (the paper uses α = 2⁻³ and bits in 1..10):
    I^h = Quantize_{α,bits}(J^h) ⊙ f'(S^h) (eq. 17), applied to the signal J^h each hidden
    neuron receives before it travels further, so in BP and RBP the quantization errors
    accumulate down the chain (section 5.1)."""

    def __init__(self, alpha: float = SIGNAL_ALPHA, bits: int = 8):
        if isinstance(bits, bool) or not isinstance(bits, (int, float)) or int(bits) != bits or bits < 1:
            raise ValueError(f"quantize bits must be an integer >= 1, got {bits!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"quantize alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.bits: int | list[int] = int(bits)

    def set_member_bits(self, bits: list[int]) -> None:
        """One number of bits per member (populations across variants): each contiguous
        group of members with one ``bits`` is quantized on its slice of the population."""
        for b in bits:
            Quantize(self.alpha, b)  # validates
        self.bits = [int(b) for b in bits] if len(set(bits)) > 1 else int(bits[0])

    def __call__(self, J, h, generators=None):
        if isinstance(self.bits, int):
            return quantize(J, self.alpha, self.bits)
        if len(self.bits) != J.shape[0]:
            raise ValueError(f"quantize bits: {len(self.bits)} per-member values for {J.shape[0]} members")
        out, a = J.clone(), 0
        for e in range(1, len(self.bits) + 1):
            if e == len(self.bits) or self.bits[e] != self.bits[a]:
                quantize_(out[a:e], self.alpha, self.bits[a])
                a = e
        return out


class ChannelDropout(SignalTransform):
    """Dropout of learning-channel neurons with probability p; survivors scaled by
    1/(1 − p) so the expected signal is unchanged (paper 1, section 6.1, Figure 9)."""

    needs_rng = True

    def __init__(self, p: float | list[float]):
        """``p``: the probability, or one per member (populations across variants)."""
        ps = [p] if isinstance(p, (int, float)) else list(p)
        if not ps or any(isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q < 1.0 for q in ps):
            raise ValueError(f"channel dropout p must be in [0, 1) (or a list of such, one per member), got {p!r}")
        self.p = float(p) if isinstance(p, (int, float)) else [float(q) for q in ps]

    def __call__(self, J, h, generators=None):
        if self.p == 0.0:
            return J
        return J * dropout_mask(generators, J.shape[1:], self.p, J.dtype, J.device)


class SignOnly(SignalTransform):
    """Keep only the sign of the signal J^h a hidden neuron receives (paper 1, section 4.2
    item 5: better than top-layer-only, worse than SRBP); the local derivative still
    multiplies it (I^h = sign(J^h) ⊙ f'), like 1-bit quantization (eq. 19) up to α."""

    def __call__(self, J, h, generators=None):
        return torch.sign(J)


class MagnitudeOnly(SignalTransform):
    """Keep only the magnitude |J^h| of the signal (paper 1, section 4.2 item 6: "things do
    not work at all": every hidden neuron is always told to move the same way)."""

    def __call__(self, J, h, generators=None):
        return J.abs()


class ChannelActivation(SignalTransform):
    """A transfer function g in the learning channel (paper 2, section 4.1.1, Figure 7,
    "lc-tanh"): the summed signal J^h each hidden neuron of the channel receives goes
    through g *before* the local derivative multiplies it, I^h = f'(S^h) ⊙ g(J^h), and in
    chained channels (BP, RBP) g(J^h) is what travels on.  ``tanh`` is the paper's choice;
    ``logistic`` and ``relu`` have a non-negative range, which the paper says learns poorly
    (every signal, hence every update direction, has one sign).  ``identity`` is the
    linear channel of paper 1."""

    def __init__(self, name: str = "tanh"):
        if name not in ACTIVATIONS:
            raise ValueError(f"lc_activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
        self.name = name
        self._g = get_activation(name)

    def __call__(self, J, h, generators=None):
        return self._g(J)

    def __repr__(self) -> str:
        return f"ChannelActivation({self.name!r})"


class Chain(SignalTransform):
    """Apply several transforms in order (optax-style composition)."""

    def __init__(self, *transforms: SignalTransform):
        self.transforms = list(transforms)
        self.needs_rng = any(t.needs_rng for t in self.transforms)

    def __call__(self, J, h, generators=None):
        for t in self.transforms:
            J = t(J, h, generators)
        return J

