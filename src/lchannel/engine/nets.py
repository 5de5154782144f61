"""The forward channel: a population of fully connected feed-forward stacks.

A network ``A[N_0, ..., N_L]`` (paper 1, eq. 1) computes, for h = 1..L (eq. 2),

    S^h = W^h O^{h-1} + b^h,    O^h = f^h(S^h),    O^0 = input.

Every tensor carries a leading *member* axis: a :class:`Network` holds E networks of the
same shapes (different seeds, or variants) that train in lockstep with batched matrix
products.  ``W^h`` has shape ``(E, N_h, N_{h-1})`` and ``b^h`` shape ``(E, N_h)``; E = 1
is the ordinary single network.  Biases are the weights of a unit clamped to one and
train exactly like weights.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from . import init as _init
from .activations import Activation, get_activation
from .blocks import Dense
from .outputs import OutputActivation, OutputLoss, get_output
from .rng import MemberStreams, dropout_mask


@dataclass
class Record:
    """What one forward pass leaves for learning: ``O^h`` and ``S^h`` for every layer.

    ``O[0]`` is the input (shape ``(B, N_0)`` shared by all members, or ``(E, B, N_0)``);
    ``O[h]`` for h = 1..L has shape ``(E, B, N_h)``.  ``S[h]`` is the pre-activation
    (``S[0]`` is None); internally the forward pass keeps ``Z[h] = prescale·S[h]`` (see
    :class:`~lchannel.engine.activations.Activation`) and ``S`` is derived on first use.
    ``fprime(h)`` gives ``f'(S^h)``, computed once on demand.
    """

    Z: list
    O: list
    activations: list
    _fprime: dict = field(default_factory=dict)
    _S: list | None = None
    undropped: dict = field(default_factory=dict)  # h -> O^h before forward dropout
    masks: dict = field(default_factory=dict)  # h -> dropout mask (0 or 1/(1-p))

    @property
    def L(self) -> int:
        return len(self.O) - 1

    @property
    def output(self) -> torch.Tensor:
        return self.O[-1]

    @property
    def S(self) -> list:
        """Pre-activations ``S^h`` (eq. 2), h = 0..L (``S[0]`` is None)."""
        if self._S is None:
            self._S = [None] + [self.pre_activation(h) for h in range(1, self.L + 1)]
        return self._S

    def pre_activation(self, h: int) -> torch.Tensor:
        p = self.activations[h].prescale
        return self.Z[h] if p == 1.0 else self.Z[h] / p

    def fprime(self, h: int) -> torch.Tensor:
        """The derivative of layer h's transfer function at ``S^h``."""
        d = self._fprime.get(h)
        if d is None:
            f = self.activations[h]
            d = f.derivative(self.pre_activation(h) if f.uses_S else None, self.activity_before_dropout(h))
            if h in self.masks:
                d = d * self.masks[h]  # dO_dropped/dS = f'(S) * mask
            self._fprime[h] = d
        return d

    def activity_before_dropout(self, h: int) -> torch.Tensor:
        """``f(S^h)`` as the layer computed it, before forward dropout (f' is read from it)."""
        return self.undropped.get(h, self.O[h])

    def times_fprime(self, h: int, J: torch.Tensor) -> torch.Tensor:
        """``J ⊙ f'(S^h)`` (fused where the activation allows it)."""
        d = self._fprime.get(h)
        if d is not None:
            return J * d
        if h in self.masks:
            return J * self.fprime(h)
        f = self.activations[h]
        return f.times_derivative(J, self.pre_activation(h) if f.uses_S else None, self.O[h])

    def presynaptic(self, h: int, members: int) -> torch.Tensor:
        """``O^{h-1}`` with the member axis, shape ``(E, B, N_{h-1})``."""
        O = self.O[h - 1]
        return O if O.dim() == 3 else O.unsqueeze(0).expand(members, *O.shape)


def _member_dropout(dropout, E: int) -> float | list[float]:
    """The forward dropout p (a float), or one p per member when they differ (a list)."""
    ps = [dropout] if isinstance(dropout, (int, float)) else list(dropout)
    if len(ps) not in (1, E) or not all(isinstance(p, (int, float)) and 0.0 <= p < 1.0 for p in ps):
        raise ValueError(f"dropout must be a probability in [0, 1) or a list of {E} of them (one per member), "
                         f"got {dropout!r}")
    ps = [float(p) for p in ps]
    return ps[0] if all(p == ps[0] for p in ps) else ps


def _any_dropout(dropout: float | list[float]) -> bool:
    return dropout > 0 if isinstance(dropout, float) else any(p > 0 for p in dropout)


def parse_architecture(spec: str | Sequence[int]) -> list[int]:
    """Layer sizes from ``"784,100,10"``, ``"A[784,100,10]"`` or a sequence of ints."""
    if isinstance(spec, str):
        s = spec.strip()
        if s.startswith("A[") and s.endswith("]"):
            s = s[2:-1]
        try:
            sizes = [int(p) for p in s.split(",") if p.strip()]
        except ValueError:
            raise ValueError(
                f"architecture must be comma-separated layer sizes like '784,100,10' "
                f"or 'A[784,100,10]', got {spec!r}"
            ) from None
    else:
        sizes = [int(n) for n in spec]
    if len(sizes) < 2 or any(n < 1 for n in sizes):
        raise ValueError(
            f"architecture needs at least an input and an output layer, all sizes >= 1, got {sizes}"
        )
    return sizes


class Network(nn.Module):
    """E fully connected networks ``A[N_0, ..., N_L]`` trained in lockstep: a stack of
    :class:`~lchannel.engine.blocks.dense.Dense` blocks.

    Parameters
    ----------
    sizes: layer sizes ``[N_0, ..., N_L]`` (or a string, see :func:`parse_architecture`).
    hidden: transfer function of the hidden layers (identity, logistic, tanh, relu), or
        one name per hidden layer.
    output: output pair: softmax (+cross-entropy), logistic (+binary cross-entropy),
        identity (+squared error).
    seeds: one seed per member; E = len(seeds).
    init: ``glorot_normal`` (the papers' scaled normal, default) or ``glorot_uniform``.
    dropout: forward-channel dropout probability on hidden units during training
        (inverted dropout: survivors scaled by 1/(1-p)); 0 disables it.  A list gives one
        p per member (populations across variants, :mod:`lchannel.population.packing`).

    The weights are ``nn.Parameter`` s with ``requires_grad=False`` (the learning
    channel, not autograd, trains them): ``state_dict()``, ``load_state_dict()`` and
    ``.to(device/dtype)`` are the standard ``nn.Module`` ones; ``.to(...)`` also moves the
    learning channels bound to the network (their feedback buffers), which are not
    submodules and not in its ``state_dict``.  ``load_state_dict`` also
    takes the format of earlier checkpoints, ``{"weights": [W^h], "biases": [b^h]}``.

    A block architecture string (``"conv64k5-pool3s2-...-dense10"``, see
    :mod:`lchannel.engine.architecture`) with ``input_shape=(C, H, W)`` builds a convolutional
    network instead (a :class:`~lchannel.engine.convnet.ConvNetwork`, a subclass).
    ``input_shape`` of a fully connected net may be given as ``(N_0,)``.
    """

    # Subclasses for other architecture strings (ConvNetwork: block strings) register
    # themselves by defining ``accepts``; ``Network(...)`` builds the one that accepts its
    # ``sizes``, so this module imports none of them (lchannel.engine imports them all).
    _kinds: list[type] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "accepts" in cls.__dict__:
            Network._kinds.append(cls)

    def __new__(cls, sizes=None, *args, **kwargs):
        if cls is Network:
            cls = next((kind for kind in Network._kinds if kind.accepts(sizes)), cls)
        return super().__new__(cls)

    def __init__(
        self,
        sizes: str | Sequence[int],
        hidden: str | Sequence[str] = "tanh",
        output: str | OutputLoss = "softmax",
        seeds: Sequence[int] = (0,),
        init: str = "glorot_normal",
        dropout: float | Sequence[float] = 0.0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        input_shape: Sequence[int] | None = None,
    ):
        super().__init__()
        self.sizes = parse_architecture(sizes)
        if input_shape is not None and tuple(input_shape) != (self.sizes[0],):
            raise ValueError(f"input_shape of the fully connected network A{self.sizes} must be "
                             f"({self.sizes[0]},), got {tuple(input_shape)}")
        L = len(self.sizes) - 1
        if isinstance(hidden, str):
            hidden = [hidden] * (L - 1)
        if len(hidden) != L - 1:
            raise ValueError(f"hidden must name one activation or {L - 1} activations, got {len(hidden)}")
        if init not in _init.INITS:
            raise ValueError(f"init must be one of {_init.INITS}, got {init!r}")
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one seed")
        dropout = _member_dropout(dropout, len(seeds))
        self.output_loss = get_output(output)
        self.hidden = [get_activation(a) for a in hidden]
        # activations[h] for h = 1..L; the output layer's f is the output pair's activation.
        self.activations: list[Activation | None] = [None, *self.hidden, OutputActivation(self.output_loss)]
        self.seeds = seeds
        self.init = init
        self.dropout = dropout  # p, or one p per member where they differ
        streams = MemberStreams(seeds, "init")
        blocks = []
        for h in range(1, L + 1):
            n_in, n_out = self.sizes[h - 1], self.sizes[h]
            W = torch.stack([  # (E, N_h, N_{h-1}), member by member from its own stream
                _init.draw(init, (n_out, n_in), n_in, n_out, g, dtype) for g in streams.generators
            ]).to(device)
            blocks.append(Dense(W, self.activations[h] if h < L else None, self.output_loss if h == L else None))
        self.blocks = nn.ModuleList(blocks)
        self._dropout_streams = MemberStreams(seeds, "dropout", device) if _any_dropout(dropout) else None
        self._bound_channels: list = []
        self._cache()

    def _cache(self) -> None:
        # A plain list skips ModuleList indexing on the hot path.
        self._blocks: list[Dense] = list(self.blocks)

    def _attach_channel(self, channel) -> None:
        """Remember (weakly) a learning channel bound to this network, so that moving the
        network moves the channel's buffers too (called by ``LearningChannel.bind``)."""
        refs = [r for r in getattr(self, "_bound_channels", []) if r() is not None and r() is not channel]
        self._bound_channels = [*refs, weakref.ref(channel)]

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        device = self.device
        if self._dropout_streams is not None and self._dropout_streams.generators[0].device != device:
            # Generators cannot move between devices: the dropout stream restarts from the
            # seeds on the new device (move a network before training it).
            self._dropout_streams = MemberStreams(self.seeds, "dropout", device)
        # The learning channels bound to this network move with it (they are not
        # submodules: the network's state_dict holds only the forward weights).
        for ref in getattr(self, "_bound_channels", ()):
            channel = ref()
            if channel is not None and channel.net is self:
                channel._apply(fn, recurse)
        return out

    # -- shape helpers -------------------------------------------------------------
    @property
    def E(self) -> int:
        """Number of members."""
        return len(self.seeds)

    @property
    def L(self) -> int:
        """Number of weight layers (the output layer's index)."""
        return len(self.sizes) - 1

    @property
    def device(self) -> torch.device:
        return self._blocks[0].weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self._blocks[0].weight.dtype

    @property
    def weights(self) -> list[torch.Tensor]:
        """``[W^1, ..., W^L]``, each ``(E, N_h, N_{h-1})``."""
        return [b.weight for b in self._blocks]

    @property
    def biases(self) -> list[torch.Tensor]:
        """``[b^1, ..., b^L]``, each ``(E, N_h)``."""
        return [b.bias for b in self._blocks]

    def block(self, h: int) -> Dense:
        """The block of layer h (1-based like the papers)."""
        return self._blocks[h - 1]

    def W(self, h: int) -> torch.Tensor:
        """``W^h`` (1-based like the papers), shape ``(E, N_h, N_{h-1})``."""
        return self._blocks[h - 1].weight

    def b(self, h: int) -> torch.Tensor:
        return self._blocks[h - 1].bias

    def __repr__(self) -> str:
        acts = ",".join(a.name for a in self.hidden)
        return (f"Network(A{self.sizes}, hidden={acts}, output={self.output_loss.name}, "
                f"members={self.E})")

    # -- forward channel -----------------------------------------------------------
    def forward(self, X: torch.Tensor, train: bool = False) -> Record:
        """Run the forward channel on ``X`` (``(B, N_0)`` shared or ``(E, B, N_0)``).

        ``train=True`` applies forward-channel dropout when it is enabled.
        """
        Z_list: list = [None]
        O_list: list = [X]
        O = X
        if O.dim() == 2:
            # Shared input: one (E·B) matmul would reorder the sums; per-member bmm on an
            # expanded view keeps member e bit-identical to a single run with its seed.
            O = O.unsqueeze(0).expand(self.E, *O.shape)
        drop = train and self._dropout_streams is not None
        L = self.L
        undropped, masks = {}, {}
        for h, block in enumerate(self._blocks, start=1):
            Z, O, _ = block.forward(O)  # (E, B, N_h) each
            if drop and h < L:
                undropped[h] = O
                masks[h] = self._dropout_mask(O.shape)
                O = O * masks[h]
            Z_list.append(Z)
            O_list.append(O)
        return Record(Z_list, O_list, self.activations, undropped=undropped, masks=masks)

    def _dropout_mask(self, shape) -> torch.Tensor:
        return dropout_mask(self._dropout_streams.generators, shape[1:], self.dropout, self.dtype, self.device)

    @torch.no_grad()
    def predict(self, X: torch.Tensor, chunk: int = 10000) -> torch.Tensor:
        """Outputs ``O^L`` of every member, shape ``(E, B, N_L)``, computed in chunks."""
        outs = [self.output(X[..., i:i + chunk, :]) for i in range(0, X.shape[-2], chunk)]
        return torch.cat(outs, dim=1)

    def output(self, X: torch.Tensor) -> torch.Tensor:
        """``O^L`` of every member for one chunk ``X``: the inference pass (block networks
        keep nothing a learning channel would need; :meth:`forward` otherwise)."""
        return self.forward(X).output

    # -- state ---------------------------------------------------------------------
    def rng_state(self) -> list | None:
        """The forward dropout streams' state (None without dropout), for checkpoints."""
        return None if self._dropout_streams is None else self._dropout_streams.state()

    def load_rng_state(self, state: list | None) -> None:
        if self._dropout_streams is not None and state is not None:
            self._dropout_streams.load_state(state)

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        """The standard ``nn.Module`` load; a checkpoint of the earlier format
        ``{"weights": [...], "biases": [...], "dropout_rng": ...}`` is converted first."""
        if "weights" in state and "biases" in state:
            state = dict(state)
            self.load_rng_state(state.pop("dropout_rng", None))
            W, b = state.pop("weights"), state.pop("biases")
            if len(W) != self.L or len(b) != self.L:
                raise ValueError(f"checkpoint has {len(W)} weight layers, this network {self.L}")
            for h in range(self.L):
                state[f"blocks.{h}.weight"] = W[h]
                state[f"blocks.{h}.bias"] = b[h]
        own = self.state_dict()
        for key, value in state.items():
            mine = own.get(key)
            if mine is not None and mine.shape != value.shape:
                raise ValueError(f"checkpoint {key} has shape {tuple(value.shape)}, which does not fit "
                                 f"{tuple(mine.shape)}")
        return super().load_state_dict(state, strict=strict, assign=assign)

    # What a single-member copy shares with its population (a subclass adds its own).
    _MEMBER_KEYS = ("sizes", "output_loss", "hidden", "activations", "init")

    def member(self, e: int) -> "Network":
        """A single-member copy of member ``e`` (weights copied)."""
        if not -self.E <= e < self.E:
            raise ValueError(f"member must be in 0..{self.E - 1}, got {e}")
        e = e % self.E
        cls = type(self)
        net = cls.__new__(cls)
        nn.Module.__init__(net)
        for key in self._MEMBER_KEYS:
            setattr(net, key, getattr(self, key))
        net.dropout = self.dropout if isinstance(self.dropout, float) else self.dropout[e]
        net.seeds = [self.seeds[e]]
        net.blocks = nn.ModuleList([b.member(e) for b in self._blocks])
        net._dropout_streams = (MemberStreams(net.seeds, "dropout", self.device) if _any_dropout(net.dropout)
                                else None)
        net._bound_channels = []
        net._cache()
        return net

    def to_torch(self, e: int = 0) -> nn.Sequential:
        """Member ``e`` as a plain ``nn.Sequential`` of ``nn.Linear`` and activation
        modules (the output layer ends with the output pair's activation, e.g. softmax),
        for inference anywhere PyTorch runs."""
        if not 0 <= e < self.E:
            raise ValueError(f"member must be in 0..{self.E - 1}, got {e}")
        return nn.Sequential(*[m for b in self._blocks for m in b.to_torch(e)])
