"""The learning channel: from the output error ``T − O^L`` to a signal ``I^h`` per layer.

Every algorithm of the papers has the local form ΔW^h = η I^h (O^{h-1})ᵀ (paper 1,
eq. 13); a learning channel computes the postsynaptic signals ``I^h``.  This module
holds the one propagation routine they all share; each algorithm is a small subclass
that says which upper layers send a signal to layer h (its *topology*) and through which
route operator (:mod:`.routes`: the forward block's adjoint for BP and SBP, fixed random
matrices for RBP and SRBP).

Propagation, for h = L−1 down to 1 (row-vector convention, batch along rows):

    J^h = Σ_{k ∈ sources(h)} route(h, k).send(G^k)  signal arriving at layer h
    J^h ← transforms(J^h)                           quantize, dropout, sign ... (eq. 17)
    I^h = f'(S^h) ⊙ J^h   (derivative "all" or "local"),   I^h = J^h  ("none")
    G^h = I^h  ("all": the derivative travels on, eq. 4/7)   or   J^h  ("local"/"none")

with ``G^L = I^L = T − O^L`` (eq. 5/8).  For dense layers a route is the product
``G^k (C^{h,k})ᵀ`` with ``C^{h,k}`` of the shape ``(N_h, N_k)`` of the transposed forward
map; for BP it *is* ``(W^{h+1})ᵀ``.

Derivative policies: ``all`` multiplies by f' at every layer traversed (BP, RBP
default), ``local`` uses only the receiving layer's f' (SRBP, SBP default), ``none``
omits f' everywhere (the papers' "no-f'" variants).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys

from ..engine.architecture import route_multiplications
from ..engine.plasticity import apply_term
from ..engine.rng import MemberStreams
from .routes import Route
from .transforms import Chain, SignalTransform

DERIVATIVES = ("all", "local", "none")


class BufferMap(Mapping):
    """A read-only mapping ``(h, k) -> tensor`` over a module's buffers, looked up by name
    at every access: ``module.to(...)`` (which replaces the buffers) never leaves it
    holding a stale tensor.  A value may also be a tuple of names (a tuple of tensors)."""

    __slots__ = ("_buffers", "_names")

    def __init__(self, buffers: dict, names: dict):
        self._buffers = buffers
        self._names = names

    def __getitem__(self, key):
        name = self._names[key]
        if isinstance(name, tuple):
            return tuple(self._buffers[n] for n in name)
        return self._buffers[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"BufferMap({self._names!r})"


class LearningChannel(nn.Module):
    """Base class: computes ``I^h`` for every layer from a forward record and ``T − O``.

    Subclasses define :meth:`sources` and :meth:`route`; stateful channels (random,
    adaptive) also override :meth:`init_state`, :meth:`adapt`,
    :meth:`checkpoint_state` / :meth:`load_checkpoint_state`.

    A channel is a ``torch.nn.Module`` without parameters: its own weights (random
    feedback matrices) are buffers, so ``channel.to(device/dtype)`` moves them,
    ``channel.buffers()`` lists them and ``channel.state_dict()`` / ``load_state_dict()``
    are the standard ones (plus the channel's random streams as ``_extra_state``).  The
    bound network is a plain reference, not a submodule; moving the network
    (``net.to(...)``) moves the channels bound to it.  :meth:`checkpoint_state` is the
    dictionary a :class:`~lchannel.engine.train.Trainer` checkpoint holds.
    """

    name = "channel"
    default_derivative = "all"

    def __init__(self, derivative: str | None = None,
                 transforms: SignalTransform | list[SignalTransform] | None = None):
        super().__init__()
        derivative = self.default_derivative if derivative is None else derivative
        if derivative not in DERIVATIVES:
            raise ValueError(f"derivative must be one of {DERIVATIVES}, got {derivative!r}")
        self.derivative = derivative
        if isinstance(transforms, (list, tuple)):
            transforms = Chain(*transforms) if transforms else None
        self.transform: SignalTransform | None = transforms
        self.net = None
        self._rng: MemberStreams | None = None

    # -- lifecycle -----------------------------------------------------------------
    def bind(self, net) -> "LearningChannel":
        """Attach to a network: draws feedback state from each member's seed.

        A channel holds the feedback state of one network: binding it to another one
        (which would silently hand the first network's trainer the other's feedback) is
        refused; binding the same network again redraws the state."""
        if self.net is not None and self.net is not net:
            raise ValueError(f"this {self.name} channel is already bound to another network ({self.net!r}); "
                             f"build a new channel (build_channel(...)) for {net!r}")
        self.check(net.sizes)
        object.__setattr__(self, "net", net)  # a plain reference: the network is not a submodule
        if self.transform is not None and self.transform.needs_rng:
            self._rng = MemberStreams(net.seeds, "channel", net.device)
        self.init_state()
        attach = getattr(net, "_attach_channel", None)
        if attach is not None:
            attach(self)  # net.to(...) moves this channel too
        return self

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        net = self.net
        if self._rng is not None and net is not None and self._rng.generators[0].device != net.device:
            # Generators cannot move between devices: the channel's noise stream restarts
            # from the seeds on the network's new device (as the forward dropout's does).
            self._rng = MemberStreams(net.seeds, "channel", net.device)
        return out

    def init_state(self) -> None:
        """Draw the channel's own weights (none for BP)."""

    def on_batch_start(self) -> None:
        """Hook before each minibatch (resampled feedback uses it)."""

    def plasticity_terms(self, record, signals) -> list:
        """The channel's own plastic parameters after a step, as ``(P, rule, post, pre,
        rate)``: the optimizer applies P += η_t·rate·rule(post, pre) (adaptive channels;
        none by default)."""
        return []

    def adapt(self, record, signals, lr: float) -> None:
        """Apply :meth:`plasticity_terms` at learning rate ``lr`` (what the optimizer's
        step does with them; for use outside a :class:`~lchannel.engine.train.Trainer`)."""
        for P, rule, post, pre, rate in self.plasticity_terms(record, signals):
            apply_term(rule, P, post, pre, lr, rate)

    # -- topology ------------------------------------------------------------------
    def routes(self, L: int) -> dict[int, list[int]]:
        """``{h: sources(h)}`` for every hidden layer of a network with L weight layers,
        known before binding (used for validation and accounting)."""
        return {h: [h + 1] for h in range(1, L)}

    def check(self, sizes) -> None:
        """Raise ValueError, naming the option, if this channel cannot serve a network of
        these layer sizes.  Called by :meth:`bind` and by config validation."""
        self.routes(len(sizes) - 1)

    def feedback_multiplications(self, sizes) -> float:
        """Multiplications by feedback weights per example to carry the signal to every
        hidden layer: one per weight on every route h ← k (paper 1, section 3.1)."""
        return sum(route_multiplications(sizes, h, k) for h, ks in self.routes(len(sizes) - 1).items() for k in ks)

    def adaptation_multiplications(self, sizes) -> float:
        """Multiplications per example spent adapting the channel's own weights."""
        return 0

    def sources(self, h: int) -> list[int]:
        """Upper layers k > h whose signal reaches layer h."""
        raise NotImplementedError

    def route(self, h: int, k: int) -> Route:
        """The operator of edge h ← k: ``route(h, k).send(G^k)`` is its part of ``J^h``."""
        raise NotImplementedError

    def trains(self, h: int) -> bool:
        """Whether layer h receives any learning signal."""
        return h == self.net.L or bool(self.sources(h))

    # -- the propagation shared by all channels --------------------------------------
    def signals(self, record, e: torch.Tensor) -> list:
        """``[None, I^1, ..., I^L]``; ``I^h`` is None for layers that receive no signal."""
        L = record.L
        I: list = [None] * (L + 1)
        G: list = [None] * (L + 1)
        I[L] = G[L] = e
        # A block network's record carries a route's output back to S^h (un-pooling at the
        # forward argmax); a fully connected one has nothing to do there.
        arrive = getattr(record, "arrive", None)
        for h in range(L - 1, 0, -1):
            srcs = self.sources(h)
            if not srcs:
                continue
            J = None
            for k in srcs:
                if G[k] is None:
                    continue
                part = self.route(h, k).send(G[k])  # (E, B, N_h)
                if arrive is not None:
                    part = arrive(h, k, part)  # (E, B, C, H, W) at S^h
                J = part if J is None else J.add_(part)
            if J is None:
                continue
            if self.transform is not None:
                J = self.transform(J, h, self._rng.generators if self._rng else None)
            if self.derivative == "none":
                I[h] = G[h] = J
            else:
                I[h] = record.times_fprime(h, J)
                G[h] = I[h] if self.derivative == "all" else J
        return I

    # -- state ---------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        """The channel's state as a :class:`~lchannel.engine.train.Trainer` checkpoint holds it
        (``{"rng": ..., "C": {"h,k": C}, ...}``; the format of earlier checkpoints)."""
        return self.stream_state()

    def load_checkpoint_state(self, state: dict) -> None:
        """Load what :meth:`checkpoint_state` wrote (also from earlier checkpoints)."""
        self.load_stream_state(state)

    def stream_state(self) -> dict:
        """The state of the channel's random streams (not its buffers)."""
        return {"rng": self._rng.state() if self._rng else None}

    def load_stream_state(self, state: dict) -> None:
        if self._rng is not None and state.get("rng") is not None:
            self._rng.load_state(state["rng"])

    def get_extra_state(self) -> dict:
        return self.stream_state()

    def set_extra_state(self, state: dict) -> None:
        self.load_stream_state(state)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """The standard ``nn.Module`` load; a :meth:`checkpoint_state` dictionary (the
        format this method read before channels were modules) is loaded as such."""
        if "rng" in state_dict:
            self.load_checkpoint_state(state_dict)
            return _IncompatibleKeys([], [])
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def describe(self) -> str:
        extra = f", transforms={self.transform!r}" if self.transform is not None else ""
        return f"{self.name}(derivative={self.derivative}{extra})"

    __repr__ = describe
