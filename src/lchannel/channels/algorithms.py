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
  4.2 item 7, fails), see :mod:`lchannel.channels.synapse`;
- ``rule="stdp"`` (adaptive only): the STDP-like rule of paper 2 section 3.6, with
  ``stdp_form`` and ``stdp_scale`` (:mod:`lchannel.channels.stdp`); ``adapt_derivative=True``
  modulates Hebbian adaptation by the channel neuron's derivative (paper 2 section 4.1.3).

These options compose into a chain of small pieces (:mod:`lchannel.channels.sources`, :mod:`lchannel.channels.adaptive`:
Fixed, Resampled, Averaged, PerSynapseFeedback, Adaptive), ``RandomFeedback.source``;
each piece refuses what it cannot be combined with.  Each edge of the topology is a route
operator (:mod:`lchannel.channels.routes`).
"""

from __future__ import annotations

import inspect

import torch

from ..engine.architecture import route_fan_in, route_multiplications
from ..engine.rng import MemberStreams
from .adaptive import Adaptive
from .base import BufferMap, LearningChannel
from .compose import compose
from .feedback import FeedbackInit, MemberFeedback
from .routes import draw_route, feedback_route
from .sources import (
    Averaged,
    FeedbackSource,
    Fixed,
    PerSynapseFeedback,
    Resampled,
    _is_int,
    pack,
    unpack,
)
from .topology import TOPOLOGIES, check_block_route, mixed_topology, topology_sources


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
        take the signs of the current forward weights (congruence, see :mod:`.feedback`);
        ``"signs"``: keep the magnitudes drawn once, with the current forward signs (frSF).
    projected: ``"error"`` (default) or ``"target"``: what a skip channel sends to the
        hidden layers, the output error (SRBP) or the target (DRTP, Frenkel et al. 2021).
    feedback_samples: K >= 1 independent sets of matrices; the signal of every layer is
        the mean of the K channels' signals (section 6.1).
    per_synapse: a different random feedback weight for every synapse (section 4.2 item 7).
    rule: the adaptation rule of an adaptive channel: ``"hebbian"`` (above) or ``"stdp"``,
        the STDP-like rule of paper 2 section 3.6 (eq. 13-19), which also makes the signals
        from two feedback phases (chain or skip topology; :mod:`.stdp`).
    stdp_form: ``"output"`` (eq. 32, ΔC = η O ΔO, the default) or ``"target"`` (eq. 19, ΔC = η T ΔO).
    stdp_scale: the feedback strength ε during the STDP phases (feedback weights εC).
    adapt_derivative: Hebbian adaptation modulated by the derivative of the channel's own
        transfer function (``lc_activation``), paper 2 section 4.1.3.
    """

    name = "random"
    default_derivative = "all"

    def __init__(self, topology=None, derivative=None, feedback: FeedbackInit | dict | str | None = None,
                 adaptive: bool = False, adapt_rate: float = 1.0, skip_layers=None, transforms=None,
                 resample: str | None = None, feedback_samples: int = 1, per_synapse: bool = False,
                 rule: str = "hebbian", stdp_form: str = "output", stdp_scale: float = 0.1,
                 adapt_derivative: bool = False, projected: str = "error"):
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
        # The feedback options as a chain of pieces (sources.py), each refusing what it
        # cannot be combined with.
        self.source: FeedbackSource = compose(feedback, resample, feedback_samples, per_synapse, adaptive,
                                              adapt_rate, rule, stdp_form, stdp_scale, adapt_derivative, projected)
        self._adapt_rate = float(adapt_rate)
        self.topology = topology
        self.skip_layers = None if skip_layers is None else sorted({int(h) for h in skip_layers})
        self.source.check_channel(self)  # after the topology: the STDP rule reads it
        # The matrices are buffers (C_h_k, C{i}_h_k for sample i > 0, Cw_h_k / Cb_h_k
        # per synapse); these mappings read them by name (BufferMap), so .to() keeps them.
        self.samples: list[BufferMap] = []
        self.C: BufferMap | dict = {}
        self.synapse_C: BufferMap | dict = {}
        self._feedback_buffers: list[str] = []
        self._sources: dict[int, list[int]] = {}
        self._streams: MemberStreams | None = None

    def set_member_feedback(self, members) -> "RandomFeedback":
        """Draw member e's matrices from ``members[e]`` (FeedbackInit, dicts or names; one
        per member) instead of the one ``feedback``; before :meth:`bind` (populations
        across variants, :class:`~lchannel.channels.feedback.MemberFeedback`)."""
        if self.net is not None:
            raise ValueError("set_member_feedback: call it before the channel is bound to a network")
        self.source.find(Fixed)._feedback = MemberFeedback(members)
        return self

    # -- the options, read from the pieces ------------------------------------------------
    @property
    def feedback(self) -> FeedbackInit:
        return self.source.feedback

    @property
    def adaptive(self) -> bool:
        return self.source.find(Adaptive) is not None

    @property
    def adapt_rate(self) -> float:
        piece = self.source.find(Adaptive)
        return piece.rate if piece is not None else self._adapt_rate

    @property
    def rule(self):
        """The adaptation rule (ARBP/ASRBP), or None for fixed feedback."""
        piece = self.source.find(Adaptive)
        return None if piece is None else piece.rule

    @property
    def resample(self) -> str | None:
        piece = self.source.find(Resampled)
        return None if piece is None else piece.mode

    @property
    def feedback_samples(self) -> int:
        piece = self.source.find(Averaged)
        return 1 if piece is None else piece.K

    @property
    def per_synapse(self) -> bool:
        return self.source.find(PerSynapseFeedback) is not None

    # -- topology and validation -----------------------------------------------------
    def routes(self, L):
        if self.skip_layers is not None:
            return mixed_topology(self.skip_layers, L)
        return topology_sources(self.topology, L)

    def check(self, sizes):
        L = len(sizes) - 1
        for h, ks in self.routes(L).items():
            if getattr(sizes, "is_conv", False):
                check_block_route(self, sizes, h, ks)
            self.source.check_route(self, sizes, h, ks)

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
        for name in self._feedback_buffers:  # binding again redraws
            del self._buffers[name]
        self._feedback_buffers = []
        self.samples = []
        self.synapse_C = {}
        self.source.draw(self)
        # A route reads its matrix from the channel's buffers by name at send time (a random
        # kernel into a conv block, a random matrix elsewhere).
        self._sample_routes = [{key: feedback_route(net, *key, self._buffers, sample._names[key]) for key in sample}
                               for sample in self.samples]
        self.use_sample(0)

    def _feedback_buffer(self, name: str, C: torch.Tensor) -> str:
        self.register_buffer(name, C)
        self._feedback_buffers.append(name)
        return name

    def add_sample(self, mats: dict) -> None:
        """Register one set of matrices ``{(h, k): C}`` as sample ``len(samples)``: buffers
        ``C_h_k`` (sample 0) or ``C{i}_h_k``."""
        i = len(self.samples)
        prefix = "C" if i == 0 else f"C{i}"
        names = {(h, k): self._feedback_buffer(f"{prefix}_{h}_{k}", C) for (h, k), C in mats.items()}
        self.samples.append(BufferMap(self._buffers, names))

    def set_synapse_feedback(self, mats: dict) -> None:
        """Register the per-synapse matrices ``{(h, k): (Cw, Cb)}`` as buffers
        ``Cw_h_k`` and ``Cb_h_k``; ``synapse_C`` maps (h, k) to the pair."""
        names = {(h, k): (self._feedback_buffer(f"Cw_{h}_{k}", w), self._feedback_buffer(f"Cb_{h}_{k}", b))
                 for (h, k), (w, b) in mats.items()}
        self.synapse_C = BufferMap(self._buffers, names)

    def use_sample(self, i: int) -> None:
        """Propagate through feedback sample i (the channel's ``C`` is sample 0 otherwise)."""
        # Plain attributes (not tensors or modules): skip nn.Module.__setattr__ on this
        # per-step path.
        d = self.__dict__
        d["C"], d["_routes"] = self.samples[i], self._sample_routes[i]

    def congruence_reference(self, h: int, k: int) -> torch.Tensor:
        """The forward matrix whose signs congruent feedback to h from k takes, shape
        ``(E, N_h, N_k)``: ``(W^{h+1})ᵀ`` for k = h+1, and for a skip connection the
        product ``(W^{h+1})ᵀ ⋯ (W^k)ᵀ`` (the matrix SBP uses, section 3)."""
        reference = getattr(self.net, "adjoint_reference", None)
        if reference is not None and k == h + 1:
            return reference(k)  # a block network: W^k for a conv kernel, (W^k)ᵀ for dense
        P = self.net.W(h + 1).transpose(1, 2)
        for m in range(h + 2, k + 1):
            P = torch.bmm(P, self.net.W(m).transpose(1, 2))
        return P

    def draw_pair(self, h, k, synapses=None) -> torch.Tensor:
        """A new ``C^{h,k}`` from the channel's continuing "feedback" stream."""
        ref = self.congruence_reference(h, k) if self.feedback.congruent else None
        return draw_route(self.net, h, k, self.feedback, self._streams.generators, ref, synapses)

    def draw_set(self) -> dict:
        """One matrix per edge of the topology, in the fixed draw order."""
        return {(h, k): self.draw_pair(h, k) for h, k in self._pairs}

    def on_batch_start(self):
        self.source.on_batch_start(self)

    # -- signals and adaptation ------------------------------------------------------------
    def signals(self, record, e):
        return self.source.signals(self, record, e)

    def propagate(self, record, e):
        """The shared propagation (:meth:`LearningChannel.signals`) through the current sample."""
        return super().signals(record, e)

    def plasticity_terms(self, record, signals):
        return self.source.plasticity_terms(self, record, signals)

    # -- accounting --------------------------------------------------------------------------
    def feedback_multiplications(self, sizes):
        """Per example: one multiplication per non-zero feedback weight on every route
        (expected count for sparse matrices), as the feedback pieces count them (K samples:
        K times; per-synapse: N_{h-1} times, plus the relayed per-neuron signal)."""
        routes = self.routes(len(sizes) - 1)
        relays = {k for ks in routes.values() for k in ks}
        return sum(self.source.route_cost(self.feedback.density(route_fan_in(sizes, h, k))
                                          * route_multiplications(sizes, h, k), h, sizes, relays)
                   for h, ks in routes.items() for k in ks)

    def adaptation_multiplications(self, sizes):
        """ARBP/ASRBP: one product O^h_r I^k_s per feedback weight and example."""
        return sum(self.source.adaptation_cost(_feedback_weights(sizes, h, k))
                   for h, ks in self.routes(len(sizes) - 1).items() for k in ks)

    # -- state -------------------------------------------------------------------------------
    def checkpoint_state(self):
        return {**super().checkpoint_state(), "C": pack(self.C), **self.source.state_dict(self)}

    def stream_state(self):
        state = super().stream_state()
        if self.resample is not None and self._streams is not None:
            state["feedback_rng"] = self._streams.state()  # resampling draws on
        return state

    def load_stream_state(self, state):
        super().load_stream_state(state)
        if state.get("feedback_rng") is not None and self._streams is not None:
            self._streams.load_state(state["feedback_rng"])

    def load_checkpoint_state(self, state):
        super().load_checkpoint_state(state)
        saved = state.get("samples", [state.get("C", {})])
        if "samples" in state and len(saved) != len(self.samples):
            raise ValueError(f"checkpoint has {len(saved)} feedback samples, this channel {len(self.samples)}")
        for mine, theirs in zip(self.samples, saved):
            unpack(mine, theirs)
        self.source.load_state_dict(self, state)

    def describe(self):
        topo = f"skip_layers={self.skip_layers}" if self.skip_layers is not None else f"topology={self.topology!r}"
        tr = f", transforms={self.transform!r}" if self.transform is not None else ""
        return f"{self.name}({topo}, derivative={self.derivative}, {self.source.describe()}{tr})"

    __repr__ = describe


class _OnFixedTopology(RandomFeedback):
    """A random channel on one named topology (``fixed_topology``): takes the options of
    :class:`RandomFeedback` except the topology's, and refuses those by name."""

    fixed_topology = "chain"

    def __init__(self, **options):
        super().__init__(**_on_topology(type(self), self.fixed_topology, options))


class RandomBackprop(_OnFixedTopology):
    """Random backpropagation (RBP, eq. 6-8), a.k.a. feedback alignment (FA):
    R^h = f'(S^h) ⊙ C^h R^{h+1} with fixed random C^h of the shape of (W^{h+1})ᵀ.
    ``adaptive=True`` gives ARBP.  Topology: chain."""

    name, default_derivative, fixed_topology = "rbp", "all", "chain"


class SkippedRandomBackprop(_OnFixedTopology):
    """Skipped random backpropagation (SRBP, paper 2 eq. 11), a.k.a. direct feedback
    alignment (DFA): R^h = f'(S^h) ⊙ C^h (T − O^L), C^h random of shape N_h × N_L.
    ``adaptive=True`` gives ASRBP.  Topology: skip."""

    name, default_derivative, fixed_topology = "srbp", "local", "skip"


def _feedback_weights(sizes, h: int, k: int) -> int:
    """Feedback weights of route h ← k: N_h·N_k (a dense map), or the kernel's
    C_out·C_in·K·K into a conv block (its adaptation is one kernel-gradient per example,
    counted as the kernel's multiplications over all positions)."""
    return route_multiplications(sizes, h, k)




def _signature_without(func, *names) -> inspect.Signature:
    sig = inspect.signature(func)
    return sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in names])


# What a fixed-topology channel accepts: RandomFeedback's options but the topology's.  The
# signature is what build_channel and the experiment specs read to list accepted options.
_FIXED_TOPOLOGY = _signature_without(RandomFeedback.__init__, "topology", "skip_layers")
_OnFixedTopology.__init__.__signature__ = _FIXED_TOPOLOGY


def _on_topology(cls, topology: str, options: dict) -> dict:
    """``options`` for RandomFeedback on ``topology``; anything else refused by name."""
    accepted = [n for n in _FIXED_TOPOLOGY.parameters if n != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{cls.__name__} does not accept the option(s) {unknown}; accepted: {accepted}")
    return {**options, "topology": topology}
