"""Adaptive feedback (paper 1 section 3; paper 2 sections 3-4): the matrices of a random
channel learn, by default under the forward weights' own Hebbian rule (ARBP/ASRBP, paper 2
eq. 124), optionally modulated by the derivative of the channel's own transfer function
(``adapt_derivative``, paper 2 section 4.1.3); :mod:`lchannel.channels.stdp` adds the
STDP-like rule (section 3.6) on top of :class:`Adaptive`.

A piece of the feedback-source chain of :mod:`lchannel.channels.sources`.
"""

from __future__ import annotations

from ..engine.activations import get_activation
from ..engine.plasticity import HEBBIAN, KernelRule
from .sources import FeedbackSource, Fixed
from .transforms import Chain, ChannelActivation, SignalTransform


class SlopeTap(SignalTransform):
    """The learning channel's transfer function g (a
    :class:`~lchannel.channels.transforms.ChannelActivation`) that also keeps its slope
    g'(J^h) at the signal J^h each layer received, for the derivative-modulated
    adaptation (``adapt_derivative``)."""

    def __init__(self, activation):
        self.activation = activation
        self._g = get_activation(activation.name)
        self.slopes: dict = {}

    def __call__(self, J, h, generators=None):
        out = self.activation(J, h, generators)
        self.slopes[h] = self._g.derivative(J, out)  # g'(J^h), (E, B, N_h)
        return out

    def __repr__(self) -> str:
        return repr(self.activation)


def tap_activation(channel) -> SlopeTap:
    """Replace the channel's :class:`ChannelActivation` by a :class:`SlopeTap` around it
    (ValueError if the channel has none: a linear channel's slope is 1)."""
    t = channel.transform
    parts = list(t.transforms) if isinstance(t, Chain) else [] if t is None else [t]
    at = [i for i, p in enumerate(parts) if isinstance(p, ChannelActivation)]
    if not at:
        raise ValueError("adapt_derivative=true modulates the feedback's update by the derivative of the learning "
                         "channel's own transfer function (paper 2, sections 3.4 and 4.1.3); this channel is linear "
                         "(derivative 1): give it one with lc_activation (e.g. 'tanh')")
    tap = SlopeTap(parts[at[0]])
    parts[at[0]] = tap
    channel.transform = tap if len(parts) == 1 else Chain(*parts)  # a new chain: the caller's is left as it was
    return tap


class Adaptive(FeedbackSource):
    """The matrices learn under ``rule`` at ``rate`` times the forward learning rate:
    ΔC^{h,k} = η·rate·(O^h)ᵀ I^k / B with the Hebbian rule (ARBP/ASRBP, paper 1 section
    3, paper 2 eq. 124); with k = h+1 and rate 1 this is exactly (ΔW^{h+1})ᵀ, hence
    C − Wᵀ stays constant (paper 2, Theorem 7).

    ``derivative=True`` (``adapt_derivative``) modulates the postsynaptic term by the
    derivative of the learning channel's own neuron, ΔC^{h,k} = η·rate·(g'(J^h) ⊙ O^h)ᵀ I^k / B,
    where g is the channel's transfer function (``lc_activation``) and J^h the signal it
    received: eq. 12's (f^post)' for the channel's weights, the variant of section 4.1.3
    ("modulated by the derivative of that transfer function", not shown in the paper).
    """

    def __init__(self, inner: FeedbackSource, rate: float = 1.0, rule=HEBBIAN, derivative: bool = False):
        if not isinstance(inner, Fixed):
            raise ValueError("adaptive feedback cannot be combined with resample, feedback_samples > 1 or "
                             "per_synapse (the papers define adaptation for one fixed set of matrices)")
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not rate >= 0:
            raise ValueError(f"adapt_rate must be a number >= 0, got {rate!r}")
        if not isinstance(derivative, bool):
            raise ValueError(f"adapt_derivative must be true or false, got {derivative!r}")
        super().__init__(inner)
        self.rate = float(rate)
        self.member_rates: list[float] | None = None  # one rate per member (populations across variants)
        self.rule = rule
        self.derivative = derivative
        self._tap: SlopeTap | None = None

    def set_member_rates(self, rates) -> None:
        """One adaptation rate per member (populations across variants, lchannel.population.packing):
        the optimizer applies each contiguous run of members with one rate on its slice,
        the arithmetic of a population whose members all have that rate."""
        rates = [float(r) for r in rates]
        if not rates or any(not r >= 0 for r in rates):
            raise ValueError(f"adapt_rate: per-member rates must be numbers >= 0, got {rates!r}")
        self.member_rates = None if all(r == rates[0] for r in rates) else rates
        self.rate = rates[0] if self.member_rates is None else self.rate

    def check_channel(self, channel):
        self.inner.check_channel(channel)
        if self.derivative:
            self._tap = tap_activation(channel)

    def plasticity_terms(self, channel, record, signals):
        rate = self.rate
        if self.member_rates is not None:
            if len(self.member_rates) != channel.net.E:
                raise ValueError(f"adapt_rate: {len(self.member_rates)} per-member rates for {channel.net.E} members")
            if hasattr(record, "arrive") or self.derivative:
                raise ValueError("adapt_rate: per-member rates serve dense nets with plain Hebbian adaptation")
            rate = self.member_rates
        elif rate == 0.0:
            return []
        E = channel.net.E
        if hasattr(record, "arrive"):
            return self._block_terms(channel, record, signals)
        slopes = self._tap.slopes if self._tap is not None else None
        # post = O^h (the receiving layer's activity, times g'(J^h) when modulated),
        # pre = I^k (the sending layer's signal).
        return [(C, self.rule, _times(record.presynaptic(h + 1, E), slopes, h), signals[k], rate)
                for (h, k), C in channel.C.items() if signals[k] is not None]

    def _block_terms(self, channel, record, signals) -> list:
        """On a block (conv) network: a chained route's matrix learns from O^h, the input of
        block h+1 (for a conv kernel C in W's layout, ΔC = η·rate·(conv weight-gradient of
        I^{h+1} and O^h)/B = (ΔW^{h+1}) itself: the transposed convolution with C stays at a
        constant distance from the one with W, Theorem 7's analogue); a dense map from
        the output (ASRBP) learns from A^h = f(S^h), the units it reaches."""
        E = channel.net.E
        terms = []
        for (h, k), C in channel.C.items():
            if signals[k] is None:
                continue
            if k == h + 1:
                rule = self.rule if C.dim() == 3 else KernelRule(self.rule, channel.net.block(k))
                terms.append((C, rule, record.presynaptic(k, E), signals[k], self.rate))
            else:
                terms.append((C, self.rule, record.activity(h), signals[k], self.rate))
        return terms

    def adaptation_cost(self, n):
        return n  # one product O^h_r I^k_s per feedback weight and example

    def describe(self):
        extra = ", adapt_derivative" if self.derivative else ""
        return f"{self.inner.describe()}, adaptive, adapt_rate={self.rate}{extra}"


def _times(O, slopes, h):
    return O if slopes is None else O * slopes[h]


RULE_NAMES = ("hebbian", "stdp")
# The STDP rule's default feedback strength ε during the phases (docs/channels.md): small,
# as eq. 18 needs; with ε = 1 the adapted feedback leaves the phases' linear range (measured:
# chained STDP on MNIST then loses accuracy).
STDP_SCALE = 0.1
