"""The learning channels of paper 1 (sections 2-3, 4.2, 6.1) and paper 2 (eq. 11).

=========================  =======  ==========================  ===================  ==========
class                      name     feedback to layer h          derivative default   also known as
=========================  =======  ==========================  ===================  ==========
Backprop                   bp       (W^{h+1})ᵀ from h+1          all (eq. 3-5)        gradient descent
SkippedBackprop            sbp      (W^{h+1})ᵀ…(W^L)ᵀ from L     local                 —
RandomBackprop             rbp      fixed random C^h from h+1    all (eq. 6-8)        feedback alignment (FA)
SkippedRandomBackprop      srbp     fixed random C^h from L      local (paper 2 eq.11) direct feedback alignment (DFA)
TopLayerOnly               top      none: only W^L learns        —                     —
RandomFeedback             mixed,   SRBP to skip_layers, RBP to  all                   —
                           cascade  the others; all pairs k > h
=========================  =======  ==========================  ===================  ==========

Each accepts ``derivative="none"`` for the papers' "no-f'" variant and signal transforms
(:mod:`lchannel.channels.transforms`).  The random channels also take

- ``feedback``: the distribution of the matrices (:class:`FeedbackInit`: normal, uniform,
  ±1, sparse (0,1) "Sparse-n", non-zero mean, congruent signs);
- ``adaptive=True`` for ARBP/ASRBP (section 3): the feedback matrices learn by
  ΔC^{h,k} = η·adapt_rate·(O^h)ᵀ I^k, the product of the forward activity of the receiving
  layer and the signal of the sending layer — for k = h+1 exactly the transpose of
  ΔW^{h+1} = η I^{h+1} (O^h)ᵀ (paper 2, Theorem 7: dC_i/dt = dA_{i+1}ᵀ/dt);
- ``resample``: draw the matrices again before every minibatch, ``zero_mean`` (section
  4.2 item 1, fails like top-layer-only) or ``sign_concordant`` with the signs of the
  current forward weights (item 2, Liao et al.'s sign-concordance);
- ``feedback_samples=K``: K independent channels whose signals are averaged (section 6.1);
- ``per_synapse=True``: a different random feedback weight for every synapse (section
  4.2 item 7, fails), see :mod:`lchannel.channels.synapse`.
"""

from __future__ import annotations

import dataclasses

import torch

from ..plasticity import HEBBIAN
from ..rng import MemberStreams
from .base import LearningChannel
from .feedback import FeedbackInit
from .routes import Adjoint, RandomMap, draw_route
from .synapse import SynapseSignal


class Backprop(LearningChannel):
    """Standard backpropagation (BP), eq. 3-5: B^h = f'(S^h) ⊙ (W^{h+1})ᵀ B^{h+1}."""

    name = "bp"
    default_derivative = "all"

    def sources(self, h):
        return [h + 1]

    def route(self, h, k):
        # J^h = G^{h+1} W^{h+1}: the forward block's adjoint.
        return self._adjoints[k]

    def init_state(self):
        self._adjoints = {k: Adjoint(self.net.block(k)) for k in range(2, self.net.L + 1)}


class SkippedBackprop(Backprop):
    """Skipped BP (SBP, paper 1 section 3): the signal of layer h is
    f'(S^h) ⊙ (W^{h+1})ᵀ…(W^L)ᵀ (T − O): the product of the transposed forward matrices
    above h, without the upper derivatives; the local derivative is kept.

    Computed as BP's chain with the derivative applied only where the signal is used,
    which is the same product, evaluated right to left.
    """

    name = "sbp"
    default_derivative = "local"

    def __init__(self, derivative=None, transforms=None):
        if derivative == "all":
            raise ValueError("SkippedBackprop with derivative='all' is Backprop; use Backprop instead")
        super().__init__(derivative, transforms)


class TopLayerOnly(LearningChannel):
    """Only the top layer learns (its update is BP's, Fact 1); deeper layers stay fixed."""

    name = "top"
    default_derivative = "none"

    def routes(self, L):
        return {}

    def sources(self, h):
        return []


TOPOLOGIES = ("chain", "skip", "cascade", "mixed")
RESAMPLE = ("zero_mean", "sign_concordant")


def topology_sources(topology, L: int) -> dict[int, list[int]]:
    """Sources of every hidden layer for a named topology or an explicit mapping.

    chain: h ← h+1 (RBP); skip: h ← L (SRBP); cascade: h ← every k > h (section 3,
    "cascading": feedback matrices between all pairs of layers); a dict ``{h: [k, ...]}``
    names them explicitly (each k > h, k ≤ L; keys may be strings, as in JSON/TOML).
    """
    if isinstance(topology, str):
        if topology == "chain":
            return {h: [h + 1] for h in range(1, L)}
        if topology == "skip":
            return {h: [L] for h in range(1, L)}
        if topology == "cascade":
            return {h: list(range(h + 1, L + 1)) for h in range(1, L)}
        if topology == "mixed":
            raise ValueError("topology 'mixed' needs skip_layers: the hidden layers that receive the "
                             "output error directly (SRBP); the others receive it through the chain (RBP)")
        raise ValueError(f"topology must be one of {TOPOLOGIES} or a mapping {{h: [k, ...]}}, got {topology!r}")
    if not isinstance(topology, dict):
        raise ValueError(f"topology must be one of {TOPOLOGIES} or a mapping {{h: [k, ...]}}, got {topology!r}")
    out: dict[int, list[int]] = {h: [] for h in range(1, L)}
    for h, ks in topology.items():
        h = int(h)
        if not 1 <= h < L:
            raise ValueError(f"topology layer {h} is not a hidden layer (1..{L - 1})")
        ks = [int(k) for k in (ks if isinstance(ks, (list, tuple)) else [ks])]
        for k in ks:
            if not h < k <= L:
                raise ValueError(f"topology: layer {h} can receive only from layers {h + 1}..{L}, got {k}")
        out[h] = sorted(set(ks))
    return out


def mixed_topology(skip_layers, L: int) -> dict[int, list[int]]:
    """SRBP to ``skip_layers`` (long-range connections from the output), chained RBP to the
    others (paper 1, section 3: "a combination of RBP and SRBP")."""
    skip = {int(h) for h in skip_layers}
    bad = [h for h in skip if not 1 <= h < L]
    if bad:
        raise ValueError(f"skip_layers must be hidden layers 1..{L - 1}, got {sorted(bad)}")
    return {h: [L] if h in skip else [h + 1] for h in range(1, L)}


class RandomFeedback(LearningChannel):
    """Random feedback matrices on any topology (the general random channel).

    Parameters
    ----------
    topology: ``chain`` (RBP), ``skip`` (SRBP), ``cascade`` (all pairs of layers),
        ``mixed`` (with ``skip_layers``), or a mapping ``{h: [k, ...]}``; one of topology
        and skip_layers is required.
    skip_layers: hidden layers that receive the output error directly (SRBP); the others
        receive the signal of the layer above (RBP) — the mixed channel of section 3.
    feedback: a :class:`FeedbackInit`, a dict of its fields, or a distribution name.
    adaptive: adapt the matrices with ΔC^{h,k} = η·adapt_rate·(O^h)ᵀ I^k / B (ARBP/ASRBP).
    adapt_rate: the adaptation's learning-rate factor relative to the forward one
        (1 = the equal rates of paper 2, Theorem 7; paper 1 used 0.1 for ARBP, Figure 2).
    resample: None, ``"zero_mean"`` or ``"sign_concordant"``: redraw the matrices from
        ``feedback`` before every minibatch (section 4.2 items 1-2); sign-concordant draws
        take the signs of the current forward weights (congruence, see :mod:`.feedback`).
    feedback_samples: K >= 1 independent sets of matrices; the signal of every layer is
        the mean of the K channels' signals (section 6.1).
    per_synapse: a different random feedback weight for every synapse (section 4.2 item 7).
    """

    name = "random"
    default_derivative = "all"

    def __init__(self, topology=None, derivative=None, feedback: FeedbackInit | dict | str | None = None,
                 adaptive: bool = False, adapt_rate: float = 1.0, skip_layers=None, transforms=None,
                 resample: str | None = None, feedback_samples: int = 1, per_synapse: bool = False):
        super().__init__(derivative, transforms)
        if skip_layers is not None:
            if topology not in ("chain", "mixed", None):
                raise ValueError(f"skip_layers builds the mixed RBP/SRBP channel; it cannot be combined with "
                                 f"topology={topology!r}")
            if isinstance(skip_layers, (int, str)) or not all(_is_int(h) for h in skip_layers):
                raise ValueError(f"skip_layers must be a list of hidden-layer numbers, got {skip_layers!r}")
            topology = "mixed"
        elif topology in ("mixed", None):
            raise ValueError("the mixed channel needs skip_layers (hidden layers that receive the output error "
                             "directly, SRBP; the others receive the signal of the layer above, RBP) or a "
                             f"topology: one of {TOPOLOGIES[:3]} or a mapping {{h: [k, ...]}}")
        if isinstance(topology, str) and topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {TOPOLOGIES} or a mapping {{h: [k, ...]}}, got {topology!r}")
        feedback = FeedbackInit.from_options(feedback)
        if resample in ("none", False):
            resample = None
        if resample is not None and resample not in RESAMPLE:
            raise ValueError(f"resample must be one of {RESAMPLE} or None, got {resample!r}")
        if not _is_int(feedback_samples) or feedback_samples < 1:
            raise ValueError(f"feedback_samples must be an integer >= 1, got {feedback_samples!r}")
        if not isinstance(adaptive, bool) or not isinstance(per_synapse, bool):
            raise ValueError("adaptive and per_synapse must be true or false")
        if not isinstance(adapt_rate, (int, float)) or isinstance(adapt_rate, bool) or not adapt_rate >= 0:
            raise ValueError(f"adapt_rate must be a number >= 0, got {adapt_rate!r}")
        if resample == "zero_mean":
            if feedback.congruent:
                raise ValueError("resample='zero_mean' redraws the feedback without sign constraint, so it cannot "
                                 "be congruent; use resample='sign_concordant'")
            if not feedback.zero_mean:
                raise ValueError(f"resample='zero_mean' needs a zero-mean feedback distribution (normal or uniform "
                                 f"with mean 0, or sign), got {feedback}")
        if resample == "sign_concordant":
            feedback = dataclasses.replace(feedback, congruent=True)
        if adaptive and (resample is not None or feedback_samples > 1 or per_synapse):
            raise ValueError("adaptive feedback cannot be combined with resample, feedback_samples > 1 or "
                             "per_synapse (the papers define adaptation for one fixed set of matrices)")
        if per_synapse and (resample is not None or feedback_samples > 1):
            raise ValueError("per_synapse feedback cannot be combined with resample or feedback_samples > 1")
        if per_synapse and self.transform is not None:
            raise ValueError("per_synapse feedback cannot be combined with signal transforms (sign_only, "
                             "magnitude_only, quantize_bits, lc_dropout): they act on per-neuron signals")
        self.feedback = feedback
        self.topology = topology
        self.skip_layers = None if skip_layers is None else sorted({int(h) for h in skip_layers})
        self.adaptive = adaptive
        self.adapt_rate = float(adapt_rate)
        self.rule = HEBBIAN  # adaptation: the same rule object as the forward weights
        self.resample = resample
        self.feedback_samples = int(feedback_samples)
        self.per_synapse = per_synapse
        self.samples: list[dict[tuple[int, int], torch.Tensor]] = []
        self.C: dict[tuple[int, int], torch.Tensor] = {}
        self.synapse_C: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._sources: dict[int, list[int]] = {}
        self._streams: MemberStreams | None = None

    # -- topology and validation -----------------------------------------------------
    def routes(self, L):
        if self.skip_layers is not None:
            return mixed_topology(self.skip_layers, L)
        return topology_sources(self.topology, L)

    def check(self, sizes):
        L = len(sizes) - 1
        routes = self.routes(L)
        for h, ks in routes.items():
            if ks:
                self.feedback.check(sizes[h])
            if self.per_synapse and self.derivative == "local" and any(k < L for k in ks):
                raise ValueError(
                    "per_synapse with derivative='local' needs every source to be the output layer (skip "
                    "topology): a chained source's signal would have to travel without its derivative; "
                    "use derivative 'all' or 'none'")

    def sources(self, h):
        return self._sources.get(h, [])

    def route(self, h, k):
        return self._routes[(h, k)]

    # -- drawing the matrices ------------------------------------------------------------
    def init_state(self):
        net = self.net
        self._sources = self.routes(net.L)
        # A fixed draw order (sample, then h ascending, then k; member by member from its
        # own "feedback" stream) keeps every matrix tied to the seed: sample 0 is the
        # ordinary single channel, and a population member equals a single run.
        self._pairs = [(h, k) for h in sorted(self._sources) for k in self._sources[h]]
        self._streams = MemberStreams(net.seeds, "feedback")
        self.samples = [self._draw() for _ in range(self.feedback_samples)]
        self._sample_routes = [{key: RandomMap(C) for key, C in sample.items()} for sample in self.samples]
        self.C = self.samples[0]
        self._routes = self._sample_routes[0]
        self.synapse_C = {}
        if self.per_synapse:
            for h, k in self._pairs:
                C = self._draw_pair(h, k, synapses=net.sizes[h - 1] + 1)  # (E, N_h, N_k, N_{h-1} + 1)
                self.synapse_C[(h, k)] = (C[..., :-1].contiguous(), C[..., -1].contiguous())

    def congruence_reference(self, h: int, k: int) -> torch.Tensor:
        """The forward matrix whose signs congruent feedback to h from k takes, shape
        ``(E, N_h, N_k)``: ``(W^{h+1})ᵀ`` for k = h+1, and for a skip connection the
        product ``(W^{h+1})ᵀ ⋯ (W^k)ᵀ`` (the matrix SBP uses, section 3)."""
        P = self.net.W(h + 1).transpose(1, 2)
        for m in range(h + 2, k + 1):
            P = torch.bmm(P, self.net.W(m).transpose(1, 2))
        return P

    def _draw_pair(self, h, k, synapses=None) -> torch.Tensor:
        ref = self.congruence_reference(h, k) if self.feedback.congruent else None
        return draw_route(self.net, h, k, self.feedback, self._streams.generators, ref, synapses)

    def _draw(self) -> dict:
        return {(h, k): self._draw_pair(h, k) for h, k in self._pairs}

    def on_batch_start(self):
        """Resampled feedback (section 4.2 items 1-2): new matrices before every minibatch,
        drawn from the continuing "feedback" stream; sign-concordant ones take the signs
        of the forward weights as they are now."""
        if self.resample is None:
            return
        for sample in self.samples:
            for (h, k), C in sample.items():
                C.copy_(self._draw_pair(h, k))

    # -- signals ---------------------------------------------------------------------------
    def signals(self, record, e):
        if self.feedback_samples == 1 and not self.per_synapse:
            return super().signals(record, e)
        if self.per_synapse:
            return self._synapse_signals(record, super().signals(record, e))
        return self._averaged_signals(record, e)

    def _averaged_signals(self, record, e):
        """Section 6.1: BP is the ensemble average of the backward pass over noisy weights;
        RBP keeps one realization.  K samples average K complete realizations of the
        channel: each propagates its own signal (with its own transforms: dropout masks,
        quantization) through the whole chain, and I^h is the mean of the K signals.
        (Averaging the matrices instead would just be one matrix with a smaller spread.)"""
        L = record.L
        total = None
        try:
            for C, routes in zip(self.samples, self._sample_routes):
                self.C, self._routes = C, routes
                I = super().signals(record, e)
                if total is None:
                    total = I
                else:
                    for h in range(1, L):
                        if I[h] is not None:
                            total[h] = total[h] + I[h]
        finally:
            self.C, self._routes = self.samples[0], self._sample_routes[0]
        for h in range(1, L):
            if total[h] is not None:
                total[h] = total[h] / self.feedback_samples
        return total

    def _synapse_signals(self, record, I):
        """Per-synapse feedback (section 4.2 item 7): the per-neuron signals still travel
        down the chain (a chained source needs them), but every synapse of layer h gets its
        own random weights onto the source signal instead of its neuron's signal."""
        out = list(I)
        for h in range(1, record.L):
            parts = [(I[k], *self.synapse_C[(h, k)]) for k in self.sources(h) if I[k] is not None]
            if parts:
                out[h] = SynapseSignal(parts, None if self.derivative == "none" else record.fprime(h))
        return out

    # -- adaptation ----------------------------------------------------------------------
    def plasticity_terms(self, record, signals):
        """ARBP/ASRBP (paper 1 section 3, paper 2 eq. 124): ΔC^{h,k} = η_c (O^h)ᵀ I^k,
        averaged over the minibatch, η_c = η·adapt_rate: the Hebbian rule of the forward
        weights with post = O^h, pre = I^k.  With k = h+1 and adapt_rate 1 this is exactly
        (ΔW^{h+1})ᵀ, hence C − Wᵀ stays constant (paper 2, Theorem 7)."""
        if not self.adaptive or self.adapt_rate == 0.0:
            return []
        E = self.net.E
        return [(C, self.rule, record.presynaptic(h + 1, E), signals[k], self.adapt_rate)
                for (h, k), C in self.C.items() if signals[k] is not None]

    # -- accounting --------------------------------------------------------------------------
    def feedback_multiplications(self, sizes):
        """Per example: one multiplication per non-zero feedback weight on every route
        (expected count for sparse matrices), times K samples.  Per-synapse feedback has
        N_h·N_k weights for each of the N_{h-1} synapses of a neuron, plus the per-neuron
        matrices of the layers that relay a signal further down."""
        routes = self.routes(len(sizes) - 1)
        relays = {k for ks in routes.values() for k in ks}
        total = 0.0
        for h, ks in routes.items():
            for k in ks:
                n = self.feedback.density(sizes[h]) * sizes[h] * sizes[k]
                if self.per_synapse:
                    total += n * sizes[h - 1] + (n if h in relays else 0)
                else:
                    total += n * self.feedback_samples
        return total

    def adaptation_multiplications(self, sizes):
        """ARBP/ASRBP: one product O^h_r I^k_s per feedback weight and example."""
        if not self.adaptive:
            return 0
        return sum(sizes[h] * sizes[k] for h, ks in self.routes(len(sizes) - 1).items() for k in ks)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self):
        state = {**super().state_dict(), "C": _pack(self.C)}
        if self.feedback_samples > 1:
            state["samples"] = [_pack(s) for s in self.samples]
        if self.per_synapse:
            state["synapse_C"] = {f"{h},{k}": (w.clone(), b.clone()) for (h, k), (w, b) in self.synapse_C.items()}
        if self.resample is not None:
            state["feedback_rng"] = self._streams.state()
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        saved = state.get("samples", [state.get("C", {})])
        if "samples" in state and len(saved) != len(self.samples):
            raise ValueError(f"checkpoint has {len(saved)} feedback samples, this channel {len(self.samples)}")
        for mine, theirs in zip(self.samples, saved):
            _unpack(mine, theirs)
        for key, (w, b) in state.get("synapse_C", {}).items():
            h, k = (int(x) for x in key.split(","))
            if (h, k) not in self.synapse_C or self.synapse_C[(h, k)][0].shape != w.shape:
                raise ValueError(f"checkpoint per-synapse feedback {key} does not fit this channel")
            self.synapse_C[(h, k)][0].copy_(w)
            self.synapse_C[(h, k)][1].copy_(b)
        if state.get("feedback_rng") is not None and self._streams is not None:
            self._streams.load_state(state["feedback_rng"])

    def describe(self):
        topo = f"skip_layers={self.skip_layers}" if self.skip_layers is not None else f"topology={self.topology!r}"
        extra = f", adaptive, adapt_rate={self.adapt_rate}" if self.adaptive else ""
        if self.resample:
            extra += f", resample={self.resample!r}"
        if self.feedback_samples > 1:
            extra += f", feedback_samples={self.feedback_samples}"
        if self.per_synapse:
            extra += ", per_synapse"
        tr = f", transforms={self.transform!r}" if self.transform is not None else ""
        return f"{self.name}({topo}, derivative={self.derivative}, feedback={self.feedback}{extra}{tr})"

    __repr__ = describe


def _pack(mats: dict) -> dict:
    return {f"{h},{k}": C.clone() for (h, k), C in mats.items()}


def _unpack(mats: dict, saved: dict) -> None:
    for key, C in saved.items():
        h, k = (int(x) for x in key.split(","))
        if (h, k) not in mats or mats[(h, k)].shape != C.shape:
            raise ValueError(f"checkpoint feedback matrix {key} does not fit this channel")
        mats[(h, k)].copy_(C)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class RandomBackprop(RandomFeedback):
    """Random backpropagation (RBP, eq. 6-8), a.k.a. feedback alignment (FA):
    R^h = f'(S^h) ⊙ C^h R^{h+1} with fixed random C^h of the shape of (W^{h+1})ᵀ.
    ``adaptive=True`` gives ARBP.  See :class:`RandomFeedback` for the other options."""

    name = "rbp"
    default_derivative = "all"

    def __init__(self, derivative=None, feedback=None, adaptive=False, adapt_rate=1.0, transforms=None,
                 resample=None, feedback_samples=1, per_synapse=False):
        super().__init__("chain", derivative, feedback, adaptive, adapt_rate, transforms=transforms,
                         resample=resample, feedback_samples=feedback_samples, per_synapse=per_synapse)


class SkippedRandomBackprop(RandomFeedback):
    """Skipped random backpropagation (SRBP, paper 2 eq. 11), a.k.a. direct feedback
    alignment (DFA): R^h = f'(S^h) ⊙ C^h (T − O^L), C^h random of shape N_h × N_L.
    ``adaptive=True`` gives ASRBP.  See :class:`RandomFeedback` for the other options."""

    name = "srbp"
    default_derivative = "local"

    def __init__(self, derivative=None, feedback=None, adaptive=False, adapt_rate=1.0, transforms=None,
                 resample=None, feedback_samples=1, per_synapse=False):
        super().__init__("skip", derivative, feedback, adaptive, adapt_rate, transforms=transforms,
                         resample=resample, feedback_samples=feedback_samples, per_synapse=per_synapse)
