"""Feedback sources: where a random channel's matrices come from, as composable pieces.

A random channel (RBP, SRBP, mixed, cascade) draws one matrix ``C^{h,k}`` per edge of its
topology.  *How* those matrices behave is a chain of small pieces, each wrapping the one
before it (like ``optax`` transformations), each refusing what it cannot be combined
with, with the reason:

- :class:`Fixed`: one set drawn from a :class:`~lchannel.channels.FeedbackInit` when the
  channel is bound, kept for the whole run (RBP eq. 6-8, SRBP paper 2 eq. 11);
- :class:`Averaged`: K independent sets; the signal of every layer is the mean of the K
  complete propagations (paper 1, section 6.1);
- :class:`Resampled`: new matrices before every minibatch, zero-mean or with the signs of
  the current forward weights (section 4.2 items 1-2);
- :class:`PerSynapseFeedback`: a different random feedback weight for every synapse
  (section 4.2 item 7); its signals carry the :class:`~lchannel.engine.plasticity.PerSynapse` rule;
- :class:`~lchannel.channels.adaptive.Adaptive` (its own module): the matrices learn under a rule, by default the forward weights' own
  :data:`~lchannel.engine.plasticity.HEBBIAN` (ARBP/ASRBP, section 3; paper 2 eq. 124),
  optionally modulated by the channel neuron's derivative (``adapt_derivative``);
  :class:`~lchannel.channels.stdp.STDPPhases` under the STDP-like rule (``rule="stdp"``,
  paper 2 section 3.6), which also makes the signals from two feedback phases.

The matrices themselves are state of the channel, registered as its buffers
(``C_h_k``, ``C{i}_h_k``, ``Cw_h_k``/``Cb_h_k``) and read through ``channel.samples``,
``channel.C`` and ``channel.synapse_C``:
they are drawn member by member from the channel's "feedback" stream in a fixed order
(sample, then h ascending, then k), which keeps a population member equal to a single run
with its seed.  :func:`lchannel.channels.compose.compose` builds the chain from the options of
:class:`~lchannel.channels.RandomFeedback`.
"""

from __future__ import annotations

import dataclasses

import torch

from ..engine.architecture import route_fan_in
from .feedback import FeedbackInit
from .synapse import SynapseSignal

RESAMPLE = ("zero_mean", "sign_concordant", "signs")
# The modes whose matrices take the signs of the current forward weights (congruent draws).
SIGN_RESAMPLES = ("sign_concordant", "signs")
PROJECTED = ("error", "target")


class FeedbackSource:
    """One piece of the chain.  Every hook defaults to the inner piece's."""

    def __init__(self, inner: "FeedbackSource | None" = None):
        self.inner = inner

    def pieces(self):
        """This piece and the ones it wraps, outermost first."""
        piece = self
        while piece is not None:
            yield piece
            piece = piece.inner

    def find(self, cls):
        """The piece of type ``cls`` in the chain, or None."""
        return next((p for p in self.pieces() if isinstance(p, cls)), None)

    @property
    def feedback(self) -> FeedbackInit:
        """The distribution the matrices are drawn from (the :class:`Fixed` root's)."""
        return self.inner.feedback

    # -- hooks --------------------------------------------------------------------------
    def check_channel(self, channel) -> None:
        """Refuse a channel this piece cannot serve (called at construction)."""
        self.inner.check_channel(channel)

    def check_route(self, channel, sizes, h: int, ks: list[int]) -> None:
        """Refuse a network (layer ``sizes``) or topology this piece cannot serve; layer h
        receives from the layers ``ks``."""
        self.inner.check_route(channel, sizes, h, ks)

    def draw(self, channel) -> None:
        """Draw the matrices when the channel is bound."""
        self.inner.draw(channel)

    def on_batch_start(self, channel) -> None:
        self.inner.on_batch_start(channel)

    def signals(self, channel, record, e) -> list:
        """``[None, I^1, ..., I^L]``."""
        return self.inner.signals(channel, record, e)

    def plasticity_terms(self, channel, record, signals) -> list:
        return self.inner.plasticity_terms(channel, record, signals)

    def route_cost(self, n: float, h: int, sizes, relays: set) -> float:
        """Multiplications per example on one route h ← k with ``n`` feedback weights."""
        return self.inner.route_cost(n, h, sizes, relays)

    def adaptation_cost(self, n: float) -> float:
        return self.inner.adaptation_cost(n)

    def state_dict(self, channel) -> dict:
        return self.inner.state_dict(channel)

    def load_state_dict(self, channel, state: dict) -> None:
        self.inner.load_state_dict(channel, state)

    def describe(self) -> str:
        return self.inner.describe()


class Fixed(FeedbackSource):
    """One set of matrices drawn at bind time from ``feedback`` and kept (RBP, SRBP)."""

    def __init__(self, feedback: FeedbackInit):
        super().__init__(None)
        self._feedback = feedback

    @property
    def feedback(self):
        return self._feedback

    def check_channel(self, channel):
        pass

    def check_route(self, channel, sizes, h, ks):
        if ks and getattr(sizes, "is_conv", False):
            for k in ks:  # sparse density on each route's own fan-in (a conv kernel's C_in·K·K)
                self.feedback.check(route_fan_in(sizes, h, k))
        elif ks:
            self.feedback.check(sizes[h])

    def draw(self, channel):
        channel.add_sample(channel.draw_set())

    def on_batch_start(self, channel):
        pass

    def signals(self, channel, record, e):
        return channel.propagate(record, e)

    def plasticity_terms(self, channel, record, signals):
        return []

    def route_cost(self, n, h, sizes, relays):
        return n

    def adaptation_cost(self, n):
        return 0

    def state_dict(self, channel):
        return {}

    def load_state_dict(self, channel, state):
        pass

    def describe(self):
        return f"feedback={self.feedback}"


class Averaged(FeedbackSource):
    """K independent sets of matrices; I^h is the mean of the K channels' signals
    (section 6.1: BP is the ensemble average of the backward pass over noisy weights,
    RBP keeps one realization)."""

    def __init__(self, inner: FeedbackSource, K: int):
        if not _is_int(K) or K < 1:
            raise ValueError(f"feedback_samples must be an integer >= 1, got {K!r}")
        super().__init__(inner)
        self.K = int(K)

    def draw(self, channel):
        self.inner.draw(channel)
        for _ in range(self.K - 1):
            channel.add_sample(channel.draw_set())

    def signals(self, channel, record, e):
        """Each sample propagates its own signal (with its own transforms: dropout masks,
        quantization) through the whole chain, and I^h is the mean of the K signals.
        (Averaging the matrices instead would just be one matrix with a smaller spread.)"""
        L = record.L
        total = None
        try:
            for i in range(len(channel.samples)):
                channel.use_sample(i)
                I = self.inner.signals(channel, record, e)
                if total is None:
                    total = I
                else:
                    for h in range(1, L):
                        if I[h] is not None:
                            total[h] = total[h] + I[h]
        finally:
            channel.use_sample(0)
        for h in range(1, L):
            if total[h] is not None:
                total[h] = total[h] / self.K
        return total

    def route_cost(self, n, h, sizes, relays):
        return self.inner.route_cost(n, h, sizes, relays) * self.K

    def state_dict(self, channel):
        return {**self.inner.state_dict(channel), "samples": [pack(s) for s in channel.samples]}

    def describe(self):
        return f"{self.inner.describe()}, feedback_samples={self.K}"


class Resampled(FeedbackSource):
    """New matrices before every minibatch from the continuing "feedback" stream:
    ``zero_mean`` draws (section 4.2 item 1, fails like top-layer-only) or
    ``sign_concordant`` ones with the signs of the current forward weights (item 2; Liao
    et al.'s brSF); or ``signs``: the magnitudes drawn once are kept and take the signs of
    the current forward weights before every minibatch, C = |C_0| ⊙ sign(M) (frSF)."""

    def __init__(self, inner: FeedbackSource, mode: str):
        if mode not in RESAMPLE:
            raise ValueError(f"resample must be one of {RESAMPLE} or None, got {mode!r}")
        feedback = inner.feedback
        if mode == "zero_mean":
            if feedback.congruent:
                raise ValueError("resample='zero_mean' redraws the feedback without sign constraint, so it cannot "
                                 "be congruent; use resample='sign_concordant'")
            if not feedback.zero_mean:
                raise ValueError(f"resample='zero_mean' needs a zero-mean feedback distribution (normal or uniform "
                                 f"with mean 0, or sign), got {feedback}")
        else:
            # Sign-concordant draws take the forward signs: the root draws congruent ones.
            inner.find(Fixed)._feedback = dataclasses.replace(feedback, congruent=True)
        if mode == "signs" and getattr(feedback, "members", None) is not None:
            raise ValueError("resample='signs' keeps one set of magnitudes per member; it cannot take per-member "
                             "feedback distributions")
        super().__init__(inner)
        self.mode = mode

    def on_batch_start(self, channel):
        self.inner.on_batch_start(channel)
        for sample in channel.samples:
            for (h, k), C in sample.items():
                if self.mode == "signs":
                    ref = channel.congruence_reference(h, k).to(C.device)
                    C.copy_(C.abs() * torch.where(ref >= 0, 1.0, -1.0).to(C.dtype))
                else:
                    C.copy_(channel.draw_pair(h, k))  # into the buffer: routes and .to() see it

    def state_dict(self, channel):
        return {**self.inner.state_dict(channel), "feedback_rng": channel._streams.state()}

    def load_state_dict(self, channel, state):
        self.inner.load_state_dict(channel, state)
        if state.get("feedback_rng") is not None and channel._streams is not None:
            channel._streams.load_state(state["feedback_rng"])

    def describe(self):
        return f"{self.inner.describe()}, resample={self.mode!r}"


class PerSynapseFeedback(FeedbackSource):
    """A different random feedback weight for every synapse (section 4.2 item 7): the
    per-neuron signals still travel down the chain (a chained source needs them), but
    every synapse of layer h gets its own random weights onto the source signal; its
    signal is a :class:`SynapseSignal`, which carries the per-synapse rule."""

    def __init__(self, inner: FeedbackSource):
        if inner.find(Resampled) or inner.find(Averaged):
            raise ValueError("per_synapse feedback cannot be combined with resample or feedback_samples > 1")
        super().__init__(inner)

    def check_channel(self, channel):
        self.inner.check_channel(channel)
        if channel.transform is not None:
            raise ValueError("per_synapse feedback cannot be combined with signal transforms (sign_only, "
                             "magnitude_only, quantize_bits, lc_dropout): they act on per-neuron signals")

    def check_route(self, channel, sizes, h, ks):
        self.inner.check_route(channel, sizes, h, ks)
        if getattr(sizes, "is_conv", False):
            raise ValueError("per_synapse feedback is not defined on block (conv) networks: a conv weight is "
                             "shared by every position, so it has no single synapse to give its own feedback")
        if channel.derivative == "local" and any(k < len(sizes) - 1 for k in ks):
            raise ValueError(
                "per_synapse with derivative='local' needs every source to be the output layer (skip "
                "topology): a chained source's signal would have to travel without its derivative; "
                "use derivative 'all' or 'none'")

    def draw(self, channel):
        self.inner.draw(channel)
        mats = {}
        for h, k in channel._pairs:
            C = channel.draw_pair(h, k, synapses=channel.net.sizes[h - 1] + 1)  # (E, N_h, N_k, N_{h-1} + 1)
            mats[(h, k)] = (C[..., :-1].contiguous(), C[..., -1].contiguous())
        channel.set_synapse_feedback(mats)

    def signals(self, channel, record, e):
        I = self.inner.signals(channel, record, e)
        out = list(I)
        for h in range(1, record.L):
            parts = [(I[k], *channel.synapse_C[(h, k)]) for k in channel.sources(h) if I[k] is not None]
            if parts:
                out[h] = SynapseSignal(parts, None if channel.derivative == "none" else record.fprime(h))
        return out

    def route_cost(self, n, h, sizes, relays):
        # N_h·N_k weights for each of the N_{h-1} synapses, plus the per-neuron matrix of a
        # layer that relays the signal further down.
        return n * sizes[h - 1] + (n if h in relays else 0)

    def state_dict(self, channel):
        return {**self.inner.state_dict(channel),
                "synapse_C": {f"{h},{k}": (w.clone(), b.clone()) for (h, k), (w, b) in channel.synapse_C.items()}}

    def load_state_dict(self, channel, state):
        self.inner.load_state_dict(channel, state)
        for key, (w, b) in state.get("synapse_C", {}).items():
            h, k = (int(x) for x in key.split(","))
            if (h, k) not in channel.synapse_C or channel.synapse_C[(h, k)][0].shape != w.shape:
                raise ValueError(f"checkpoint per-synapse feedback {key} does not fit this channel")
            channel.synapse_C[(h, k)][0].copy_(w)
            channel.synapse_C[(h, k)][1].copy_(b)

    def describe(self):
        return f"{self.inner.describe()}, per_synapse"


class TargetProjection(FeedbackSource):
    """DRTP (Frenkel, Lefebvre & Bol 2021): every hidden layer receives a fixed random image
    of the *target*, in the place of SRBP's image of the error.  Their rule gives layer h
    the gradient estimate T·B_h; as a descent signal (the engine's I, ΔW = η I Oᵀ) that is
    I^h = f'(S^h) ⊙ C^{h,L}(−T).  The output layer still learns from e = T − O, so T = e + O
    (the engine's output pairs all have e = T − O, eq. 5).  Skip topology only: every
    hidden layer hears from the output layer."""

    def check_channel(self, channel):
        self.inner.check_channel(channel)
        if channel.topology != "skip" or channel.skip_layers is not None:
            raise ValueError("projected='target' (DRTP) sends the target straight to every hidden layer: it needs the "
                             "skip topology (srbp or drtp)")

    def signals(self, channel, record, e):
        I = self.inner.signals(channel, record, -(e + record.output))
        I[record.L] = e
        return I

    def describe(self):
        return f"{self.inner.describe()}, projected='target'"


def pack(mats: dict) -> dict:
    return {f"{h},{k}": C.clone() for (h, k), C in mats.items()}


def unpack(mats: dict, saved: dict) -> None:
    for key, C in saved.items():
        h, k = (int(x) for x in key.split(","))
        if (h, k) not in mats or mats[(h, k)].shape != C.shape:
            raise ValueError(f"checkpoint feedback matrix {key} does not fit this channel")
        mats[(h, k)].copy_(C)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
