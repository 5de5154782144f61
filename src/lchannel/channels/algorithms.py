"""The learning channels of paper 1 (sections 2-3) and paper 2 (eq. 11).

=========================  ======  ==========================  ===================  ==========
class                      name    feedback to layer h          derivative default   also known as
=========================  ======  ==========================  ===================  ==========
Backprop                   bp      (W^{h+1})ᵀ from h+1          all (eq. 3-5)        gradient descent
SkippedBackprop            sbp     (W^{h+1})ᵀ…(W^L)ᵀ from L     local                 —
RandomBackprop             rbp     fixed random C^h from h+1    all (eq. 6-8)        feedback alignment (FA)
SkippedRandomBackprop      srbp    fixed random C^h from L      local (paper 2 eq.11) direct feedback alignment (DFA)
TopLayerOnly               top     none: only W^L learns        —                     —
RandomFeedback             mixed   any topology (chain/skip/    all                   —
                                   cascade/custom)
=========================  ======  ==========================  ===================  ==========

Each accepts ``derivative="none"`` for the papers' "no-f'" variant, signal transforms,
and the random ones ``adaptive=True`` for ARBP/ASRBP (section 3): the feedback matrices
learn by ΔC^{h,k} = η_c (O^h)ᵀ I^k, the product of the forward activity of the receiving
layer and the signal of the sending layer — for k = h+1 exactly the transpose of ΔW^{h+1}
(paper 2, Theorem 7).
"""

from __future__ import annotations

import torch

from ..rng import MemberStreams
from .base import LearningChannel
from .feedback import FeedbackInit


class Backprop(LearningChannel):
    """Standard backpropagation (BP), eq. 3-5: B^h = f'(S^h) ⊙ (W^{h+1})ᵀ B^{h+1}."""

    name = "bp"
    default_derivative = "all"

    def sources(self, h):
        return [h + 1]

    def matrix(self, h, k):
        # J^h = G^{h+1} W^{h+1}: the forward matrix read in the reverse direction.
        return self.net.W(k)


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

    def sources(self, h):
        return []


TOPOLOGIES = ("chain", "skip", "cascade")


def topology_sources(topology, L: int) -> dict[int, list[int]]:
    """Sources of every hidden layer for a named topology or an explicit mapping.

    chain: h ← h+1 (RBP); skip: h ← L (SRBP); cascade: h ← every k > h;
    a dict ``{h: [k, ...]}`` names them explicitly (each k > h, k ≤ L).
    """
    if isinstance(topology, str):
        if topology == "chain":
            return {h: [h + 1] for h in range(1, L)}
        if topology == "skip":
            return {h: [L] for h in range(1, L)}
        if topology == "cascade":
            return {h: list(range(h + 1, L + 1)) for h in range(1, L)}
        raise ValueError(f"topology must be one of {TOPOLOGIES} or a mapping {{h: [k, ...]}}, got {topology!r}")
    out: dict[int, list[int]] = {h: [] for h in range(1, L)}
    for h, ks in dict(topology).items():
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
    """Fixed random feedback matrices on any topology (the general random channel).

    Parameters
    ----------
    topology: ``chain`` (RBP), ``skip`` (SRBP), ``cascade`` (all pairs of layers), or a
        mapping ``{h: [k, ...]}``; ``skip_layers`` builds the mixed RBP/SRBP channel.
    feedback: a :class:`FeedbackInit` (or dict) for the matrices' distribution.
    adaptive: adapt the matrices with ΔC^{h,k} = η·adapt_rate·(O^h)ᵀ I^k (ARBP/ASRBP).
    adapt_rate: the adaptation's learning-rate factor relative to the forward one.
    """

    name = "random"
    default_derivative = "all"

    def __init__(self, topology="chain", derivative=None, feedback: FeedbackInit | dict | None = None,
                 adaptive: bool = False, adapt_rate: float = 1.0, skip_layers=None, transforms=None):
        super().__init__(derivative, transforms)
        if skip_layers is not None and topology not in ("chain", None):
            raise ValueError("give either topology or skip_layers, not both")
        if isinstance(feedback, dict):
            feedback = FeedbackInit(**feedback)
        self.feedback = feedback or FeedbackInit()
        self.topology = topology
        self.skip_layers = None if skip_layers is None else sorted(int(h) for h in skip_layers)
        self.adaptive = bool(adaptive)
        if not adapt_rate >= 0:
            raise ValueError(f"adapt_rate must be >= 0, got {adapt_rate}")
        self.adapt_rate = float(adapt_rate)
        self.C: dict[tuple[int, int], torch.Tensor] = {}
        self._sources: dict[int, list[int]] = {}

    def init_state(self):
        net = self.net
        if self.skip_layers is not None:
            self._sources = mixed_topology(self.skip_layers, net.L)
        else:
            self._sources = topology_sources(self.topology, net.L)
        streams = MemberStreams(net.seeds, "feedback")
        self.C = {}
        # A fixed draw order (h ascending, then k) keeps every matrix tied to the seed.
        for h in sorted(self._sources):
            for k in self._sources[h]:
                n_h, n_k = net.sizes[h], net.sizes[k]
                chained = k < net.L
                mats = [self.feedback.draw(n_h, n_k, g, chained, net.dtype) for g in streams.generators]
                self.C[(h, k)] = torch.stack(mats).to(net.device)

    def sources(self, h):
        return self._sources.get(h, [])

    def matrix(self, h, k):
        return self.C[(h, k)].transpose(1, 2)

    def adapt(self, record, signals, lr):
        """ARBP/ASRBP (paper 1 section 3): ΔC^{h,k} = η_c (O^h)ᵀ I^k, averaged over the batch."""
        if not self.adaptive or self.adapt_rate == 0.0:
            return
        E = self.net.E
        for (h, k), C in self.C.items():
            if signals[k] is None:
                continue
            O_h = record.presynaptic(h + 1, E)
            C.baddbmm_(O_h.transpose(1, 2), signals[k], alpha=lr * self.adapt_rate / O_h.shape[1])

    def state_dict(self):
        return {**super().state_dict(), "C": {f"{h},{k}": C.clone() for (h, k), C in self.C.items()}}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for key, C in state.get("C", {}).items():
            h, k = (int(x) for x in key.split(","))
            if (h, k) not in self.C or self.C[(h, k)].shape != C.shape:
                raise ValueError(f"checkpoint feedback matrix {key} does not fit this channel")
            self.C[(h, k)].copy_(C)

    def describe(self):
        topo = f"skip_layers={self.skip_layers}" if self.skip_layers is not None else f"topology={self.topology!r}"
        extra = f", adaptive, adapt_rate={self.adapt_rate}" if self.adaptive else ""
        tr = f", transforms={self.transform!r}" if self.transform is not None else ""
        return f"{self.name}({topo}, derivative={self.derivative}, feedback={self.feedback}{extra}{tr})"

    __repr__ = describe


class RandomBackprop(RandomFeedback):
    """Random backpropagation (RBP, eq. 6-8), a.k.a. feedback alignment (FA):
    R^h = f'(S^h) ⊙ C^h R^{h+1} with fixed random C^h of the shape of (W^{h+1})ᵀ.
    ``adaptive=True`` gives ARBP."""

    name = "rbp"
    default_derivative = "all"

    def __init__(self, derivative=None, feedback=None, adaptive=False, adapt_rate=1.0, transforms=None):
        super().__init__("chain", derivative, feedback, adaptive, adapt_rate, transforms=transforms)


class SkippedRandomBackprop(RandomFeedback):
    """Skipped random backpropagation (SRBP, paper 2 eq. 11), a.k.a. direct feedback
    alignment (DFA): R^h = f'(S^h) ⊙ C^h (T − O^L), C^h random of shape N_h × N_L.
    ``adaptive=True`` gives ASRBP."""

    name = "srbp"
    default_derivative = "local"

    def __init__(self, derivative=None, feedback=None, adaptive=False, adapt_rate=1.0, transforms=None):
        super().__init__("skip", derivative, feedback, adaptive, adapt_rate, transforms=transforms)
