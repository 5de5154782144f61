"""Distinct learning channels: a learning channel with neurons of its own (paper 2,
sections 2.4 and 3.5, Architectures 8-10, Figures 4-6; section 4.1.1, Figure 8).

In a Conjoined channel (BP, RBP, SRBP) the error travels through the forward neurons.
In a Distinct channel it travels through a separate set of neurons: channel layer h has
``w_h`` neurons (any width: 100, 10 or 1 per layer in Figure 8), its own transfer
function g (linear or tanh), its own weights ``D^{h,k}`` between its layers, and fixed
random *lateral* maps ``C′^h`` from channel layer h to forward layer h (Figure 4, the
Non-Identical Twin / Distinct case).  Row-vector convention, batch along rows, with the
output error as the channel's top layer, ``L^L = T − O^L``:

    U^h = Σ_{k ∈ sources(h)} L^k (D^{h,k})ᵀ        summed input of channel layer h
    L^h = transforms(g(U^h))                          its activity (dropout, ...)
    I^h = f'(S^h) ⊙ L^h (C′^h)ᵀ                       the forward neuron's signal

so that ΔW^h = η I^h (O^{h-1})ᵀ (paper 1, eq. 13) as for every channel.  Topologies:
``chain`` (Distinct RBP: each channel layer feeds the one below, k = h+1) and ``skip``
(Distinct SRBP: the output error feeds every channel layer, k = L); Figure 6's mixtures
(``cascade`` or an explicit ``{h: [k, ...]}``) from Python.

Derivatives (paper 2, section 3.5, DER): the channel's neurons do not know the forward
neurons' derivatives; only the receiving forward neuron's own f' multiplies its signal
(``derivative="local"``, the default: SRBP shows this is all that matters).
``"none"`` drops it too (the no-f' variant).  ``"all"`` transports each forward
neuron's derivative back into the channel, L^h ← f'(S^h) ⊙ L^h: this needs a one-to-one
correspondence between the two channels' neurons (``lateral="identity"``, the Identical
Twin case) and makes the equivalences below exact.

Forward maps ``A′^h`` (``forward_maps=True``, Figure 5, Architectures 9-10): fixed random
maps from forward layer h to channel layer h, so that each channel neuron also receives
forward activity, ``P^h = O^h (A′^h)ᵀ``.  This is the postsynaptic term that lets the
channel's weights adapt with the *same* rule as the forward weights, eq. 12
(``Δw_ij = η (f^post)′ O^post_i O^pre_j``, presynaptic activity from the weight's own
channel, postsynaptic activity from the opposite one):

    ΔD^{h,k} = η · adapt_rate · (g'(U^h) ⊙ P^h)ᵀ L^k / B     (``adaptive=True``)

applied by the optimizer with the very rule object of the forward weights
(:data:`~lchannel.engine.plasticity.HEBBIAN`: post ⊗ pre).  Without forward maps a channel
neuron has no postsynaptic term from the forward channel, so adaptation is refused.

Equivalences (tested): with identity lateral and forward maps, linear channel neurons,
widths equal to the forward widths and ``derivative="all"``, weights equal to the
forward ``(W^{h+1})ᵀ`` give BP's updates exactly, random weights RBP's (chain) or, with
any derivative policy, SRBP's (skip); adaptation at rate 1 is then ARBP's, so D − Wᵀ
stays constant (paper 2, Theorem 7).

Weights: ``lc_init="glorot_normal"`` (the papers' scaled normal, std √(2/(fan_in +
fan_out))) or ``"small"``, std √(1/(fan_in + fan_out)) (paper 2, Figure 14: the HIGGS
Distinct experiments), for every weight of the channel (D, C′, A′).  All are buffers of
the channel (``D_h_k``, ``Cp_h``, ``Ap_h``), drawn member by member from each member's
"feedback" stream in a fixed order (h ascending: D^{h,k} for k ascending, C′^h, A′^h), so
a population member equals a single run with its seed.
"""

from __future__ import annotations

import math

import torch

from ..engine.activations import ACTIVATIONS, get_activation
from ..engine.plasticity import HEBBIAN
from ..engine.rng import MemberStreams
from .topology import topology_sources
from .base import LearningChannel

LC_INITS = ("glorot_normal", "small")
LATERAL = ("random", "identity")
DISTINCT_TOPOLOGIES = ("chain", "skip", "cascade")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class DistinctChannel(LearningChannel):
    """A learning channel with its own neurons (see the module docstring).

    Parameters
    ----------
    topology: ``chain`` (Distinct RBP), ``skip`` (Distinct SRBP), ``cascade`` or a
        mapping ``{h: [k, ...]}`` (Figure 6's mixtures).
    derivative: ``local`` (default), ``none``, or ``all`` (needs ``lateral="identity"``).
    lc_width: neurons per channel layer: one integer for every hidden layer, a list with
        one per hidden layer, or None for the forward widths (the Twin case).
    lc_activation: the channel neurons' transfer function g (identity, tanh, ...).
    lc_init: ``glorot_normal`` or ``small`` (std √(1/(fan_in+fan_out)), paper 2 Fig. 14).
    lateral: ``random`` lateral maps C′ (and A′), or ``identity`` (one-to-one neurons;
        needs the forward widths).
    forward_maps: add the maps A′ from forward layer h to channel layer h (Figure 5).
    adaptive, adapt_rate: the channel's weights D learn by eq. 12 at ``adapt_rate`` times
        the forward learning rate (needs ``forward_maps``).
    transforms: signal transforms of the channel neurons' activity (dropout, ...).
    """

    name = "distinct"
    default_derivative = "local"

    def __init__(self, topology="chain", derivative: str | None = None, lc_width=None,
                 lc_activation: str = "identity", lc_init: str = "glorot_normal", lateral: str = "random",
                 forward_maps: bool = False, adaptive: bool = False, adapt_rate: float = 1.0, transforms=None):
        super().__init__(derivative, transforms)
        if isinstance(topology, str) and topology not in DISTINCT_TOPOLOGIES:
            raise ValueError(f"topology must be one of {DISTINCT_TOPOLOGIES} or a mapping {{h: [k, ...]}}, "
                             f"got {topology!r}")
        if not isinstance(topology, (str, dict)):
            raise ValueError(f"topology must be one of {DISTINCT_TOPOLOGIES} or a mapping {{h: [k, ...]}}, "
                             f"got {topology!r}")
        if lc_width is not None:
            widths = lc_width if isinstance(lc_width, (list, tuple)) else [lc_width]
            if not widths or not all(_is_int(w) and w >= 1 for w in widths):
                raise ValueError(f"lc_width must be an integer >= 1 or a list of them (one per hidden layer), "
                                 f"got {lc_width!r}")
        if lc_activation not in ACTIVATIONS:
            raise ValueError(f"lc_activation must be one of {sorted(ACTIVATIONS)}, got {lc_activation!r}")
        if lc_init not in LC_INITS:
            raise ValueError(f"lc_init must be one of {LC_INITS}, got {lc_init!r}")
        if lateral not in LATERAL:
            raise ValueError(f"lateral must be one of {LATERAL}, got {lateral!r}")
        for key, v in (("forward_maps", forward_maps), ("adaptive", adaptive)):
            if not isinstance(v, bool):
                raise ValueError(f"{key} must be true or false, got {v!r}")
        if isinstance(adapt_rate, bool) or not isinstance(adapt_rate, (int, float)) or not adapt_rate >= 0 \
                or not math.isfinite(adapt_rate):
            raise ValueError(f"adapt_rate must be a number >= 0, got {adapt_rate!r}")
        if adaptive and not forward_maps:
            raise ValueError("adaptive=true needs forward_maps=true: a channel neuron's weights adapt by eq. 12 "
                             "with a postsynaptic term from the forward channel, which reaches it through A′ "
                             "(paper 2, Figure 5)")
        if self.derivative == "all" and lateral != "identity":
            raise ValueError("derivative='all' carries every forward neuron's derivative into the channel, which "
                             "needs a one-to-one correspondence of neurons: lateral='identity' (the Identical "
                             "Twin case); Distinct channels use 'local' (default) or 'none'")
        self.topology = topology
        self.lc_width = list(lc_width) if isinstance(lc_width, (list, tuple)) else lc_width
        self.lc_activation = lc_activation
        self.lc_init = lc_init
        self.lateral = lateral
        self.forward_maps = forward_maps
        self.adaptive = adaptive
        self.adapt_rate = float(adapt_rate)
        self.rule = HEBBIAN  # eq. 12: the forward weights' own rule object
        self._g = get_activation(lc_activation)
        self._sources: dict[int, list[int]] = {}
        self._names: dict = {}
        self._trace = None

    # -- shapes and validation ----------------------------------------------------------
    def routes(self, L):
        return topology_sources(self.topology, L)

    def widths(self, sizes) -> list[int]:
        """``[w_1, ..., w_{L-1}, N_L]``: the channel's layer widths, the output error on top
        (index h - 1 for channel layer h)."""
        L = len(sizes) - 1
        if self.lc_width is None:
            hidden = list(sizes[1:L])
        elif isinstance(self.lc_width, list) and len(self.lc_width) != 1:
            if len(self.lc_width) != L - 1:
                raise ValueError(f"lc_width: {self.lc_width} names {len(self.lc_width)} widths, but the network "
                                 f"A{list(sizes)} has {L - 1} hidden layers")
            hidden = list(self.lc_width)
        else:
            w = self.lc_width[0] if isinstance(self.lc_width, list) else self.lc_width
            hidden = [w] * (L - 1)
        return hidden + [sizes[L]]

    def check(self, sizes):
        if getattr(sizes, "is_conv", False):
            # The lateral maps C' and forward maps A' are dense maps between a channel layer
            # and a forward layer of N_h units; paper 2 builds Distinct channels on fully
            # connected nets only, and conv layers' units are not wired for them here.
            raise ValueError(f"{self.name}: Distinct learning channels serve fully connected networks only, "
                             f"not conv nets; use a Conjoined channel (bp, rbp, srbp, ...) on a conv architecture")
        self.routes(len(sizes) - 1)
        w = self.widths(sizes)
        L = len(sizes) - 1
        if self.lateral == "identity" and w[:L - 1] != list(sizes[1:L]):
            raise ValueError(f"lateral='identity' maps channel neuron i to forward neuron i, so lc_width must be "
                             f"the forward widths {list(sizes[1:L])}, got {w[:L - 1]}")

    def sources(self, h):
        return self._sources.get(h, [])

    def feedback_multiplications(self, sizes):
        """Per example: one multiplication per channel weight on every route (w_h w_k) and
        per lateral weight (N_h w_h; none for identity lateral maps)."""
        w = [None, *self.widths(sizes)]
        L = len(sizes) - 1
        mult = sum(w[h] * w[k] for h, ks in self.routes(L).items() for k in ks)
        if self.lateral == "random":
            mult += sum(sizes[h] * w[h] for h, ks in self.routes(L).items() if ks)
        return mult

    def adaptation_multiplications(self, sizes):
        """eq. 12: one product per channel weight, plus the forward maps' P^h = A′ O^h."""
        if not self.adaptive:
            return 0
        w = [None, *self.widths(sizes)]
        L = len(sizes) - 1
        routes = self.routes(L)
        mult = sum(w[h] * w[k] for h, ks in routes.items() for k in ks)
        if self.lateral == "random":
            mult += sum(sizes[h] * w[h] for h, ks in routes.items() if ks)
        return mult

    # -- drawing the channel's weights ------------------------------------------------------
    def _std(self, fan_in: int, fan_out: int) -> float:
        gain = 2.0 if self.lc_init == "glorot_normal" else 1.0
        return math.sqrt(gain / (fan_in + fan_out))

    def init_state(self):
        net = self.net
        L = net.L
        self._sources = self.routes(L)
        w = [None, *self.widths(net.sizes)]
        for name in list(self._names.values()):  # binding again redraws
            self._buffers.pop(name, None)
        names: dict = {}
        gens = MemberStreams(net.seeds, "feedback").generators
        draws: dict[str, list[torch.Tensor]] = {}
        order: list[tuple[str, tuple[int, int], int, int]] = []  # (name, shape, fan_in, fan_out)
        for h in sorted(self._sources):
            if not self._sources[h]:
                continue
            for k in self._sources[h]:
                names[("D", h, k)] = f"D_{h}_{k}"
                order.append((f"D_{h}_{k}", (w[h], w[k]), w[k], w[h]))
            if self.lateral == "random":
                names[("C", h)] = f"Cp_{h}"
                order.append((f"Cp_{h}", (net.sizes[h], w[h]), w[h], net.sizes[h]))
                if self.forward_maps:
                    names[("A", h)] = f"Ap_{h}"
                    order.append((f"Ap_{h}", (w[h], net.sizes[h]), net.sizes[h], w[h]))
        for e, g in enumerate(gens):  # member by member from its own stream
            for name, shape, fan_in, fan_out in order:
                M = torch.randn(shape, generator=g, dtype=net.dtype) * self._std(fan_in, fan_out)
                draws.setdefault(name, []).append(M)
        for name, _, _, _ in order:
            self.register_buffer(name, torch.stack(draws[name]).to(net.device))
        self._names = names

    def D(self, h: int, k: int) -> torch.Tensor:
        """The channel weights from channel layer k (k = L: the output error) to channel
        layer h, ``(E, w_h, w_k)``."""
        return self._buffers[self._names[("D", h, k)]]

    def lateral_map(self, h: int) -> torch.Tensor | None:
        """C′^h ``(E, N_h, w_h)`` from channel layer h to forward layer h (None: identity)."""
        name = self._names.get(("C", h))
        return None if name is None else self._buffers[name]

    def forward_map(self, h: int) -> torch.Tensor | None:
        """A′^h ``(E, w_h, N_h)`` from forward layer h to channel layer h (None: identity
        or no forward maps)."""
        name = self._names.get(("A", h))
        return None if name is None else self._buffers[name]

    # -- propagation --------------------------------------------------------------------------
    def signals(self, record, e):
        """``[None, I^1, ..., I^L]`` through the channel's own neurons (module docstring)."""
        L = record.L
        I: list = [None] * (L + 1)
        sent: list = [None] * (L + 1)  # L^k: what channel layer k sends on
        I[L] = sent[L] = e
        gprime: dict = {}
        gens = self._rng.generators if self._rng else None
        identity_g = self.lc_activation == "identity"
        for h in range(L - 1, 0, -1):
            U = None
            for k in self.sources(h):
                if sent[k] is None:
                    continue
                part = torch.bmm(sent[k], self.D(h, k).transpose(1, 2))  # (E, B, w_h)
                U = part if U is None else U.add_(part)
            if U is None:
                continue
            V = U if identity_g else self._g(U)
            if self.adaptive and not identity_g:
                gprime[h] = self._g.derivative(U, V)
            if self.transform is not None:
                V = self.transform(V, h, gens)
            C = self.lateral_map(h)
            J = V if C is None else torch.bmm(V, C.transpose(1, 2))  # (E, B, N_h)
            if self.derivative == "none":
                I[h] = J
                sent[h] = V
            else:
                I[h] = record.times_fprime(h, J)
                sent[h] = I[h] if self.derivative == "all" else V
        if self.adaptive:
            self._trace = (record, sent, gprime)
        return I

    # -- adaptation (eq. 12) --------------------------------------------------------------------
    def plasticity_terms(self, record, signals):
        """``(D^{h,k}, HEBBIAN, g'(U^h) ⊙ P^h, L^k, adapt_rate)`` for every channel weight,
        P^h = O^h (A′^h)ᵀ the forward activity the channel neuron receives (eq. 12)."""
        if not self.adaptive or self.adapt_rate == 0.0:
            return []
        trace = self._trace
        if trace is None or trace[0] is not record:
            raise ValueError("plasticity_terms needs the record of the last signals() call of this channel")
        _, sent, gprime = trace
        self._trace = None
        E = self.net.E
        terms = []
        for h in sorted(self._sources):
            ks = [k for k in self._sources[h] if sent[k] is not None]
            if not ks:
                continue
            O = record.presynaptic(h + 1, E)  # O^h (E, B, N_h)
            A = self.forward_map(h)
            post = O if A is None else torch.bmm(O, A.transpose(1, 2))  # (E, B, w_h)
            if h in gprime:
                post = post * gprime[h]
            for k in ks:
                terms.append((self.D(h, k), self.rule, post, sent[k], self.adapt_rate))
        return terms

    # -- state ------------------------------------------------------------------------------------
    def checkpoint_state(self):
        """Random streams and every weight of the channel, ``{"rng", "distinct": {name: W}}``."""
        return {**super().checkpoint_state(),
                "distinct": {name: self._buffers[name].clone() for name in self._names.values()}}

    def load_checkpoint_state(self, state):
        super().load_checkpoint_state(state)
        for name, M in state.get("distinct", {}).items():
            mine = self._buffers.get(name)
            if mine is None or mine.shape != M.shape:
                raise ValueError(f"checkpoint channel weight {name} does not fit this channel")
            mine.copy_(M)

    def describe(self):
        tr = f", transforms={self.transform!r}" if self.transform is not None else ""
        adapt = f", adaptive, adapt_rate={self.adapt_rate}" if self.adaptive else ""
        return (f"{self.name}(topology={self.topology!r}, derivative={self.derivative}, lc_width={self.lc_width}, "
                f"lc_activation={self.lc_activation}, lc_init={self.lc_init}, lateral={self.lateral}, "
                f"forward_maps={self.forward_maps}{adapt}{tr})")

    __repr__ = describe


_OPTIONS = ("derivative", "lc_width", "lc_activation", "lc_init", "lateral", "forward_maps", "adaptive",
            "adapt_rate", "transforms")


class DistinctRandomBackprop(DistinctChannel):
    """Distinct RBP (paper 2, Figure 4 Architecture 8, Figure 8): the channel's layers are
    chained, U^h = L^{h+1} (D^{h,h+1})ᵀ, with L^L = T − O^L."""

    name = "distinct-rbp"

    def __init__(self, derivative=None, lc_width=None, lc_activation="identity", lc_init="glorot_normal",
                 lateral="random", forward_maps=False, adaptive=False, adapt_rate=1.0, transforms=None):
        super().__init__("chain", derivative, lc_width, lc_activation, lc_init, lateral, forward_maps,
                         adaptive, adapt_rate, transforms)


class DistinctSkippedRandomBackprop(DistinctChannel):
    """Distinct SRBP (paper 2, section 4.1.1, Figure 8): skip connections carry the output
    error to every channel layer, U^h = (T − O^L) (D^{h,L})ᵀ."""

    name = "distinct-srbp"

    def __init__(self, derivative=None, lc_width=None, lc_activation="identity", lc_init="glorot_normal",
                 lateral="random", forward_maps=False, adaptive=False, adapt_rate=1.0, transforms=None):
        super().__init__("skip", derivative, lc_width, lc_activation, lc_init, lateral, forward_maps,
                         adaptive, adapt_rate, transforms)
