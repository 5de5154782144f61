"""Block networks (convolutional nets): the forward channel of paper 1, section 4.3.

``Network("conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10",
input_shape=(3, 32, 32))`` builds a :class:`ConvNetwork` (see
:mod:`lchannel.engine.architecture` for the grammar).  Layer h = 1..L is a weighted block
(:class:`~lchannel.engine.blocks.conv.Conv2d` or :class:`~lchannel.engine.blocks.dense.Dense`) followed by the
weightless blocks that belong to it (its *tail*: max-pooling, flatten):

    S^h = W^h ⋆ O^{h-1} + b^h,   A^h = f(S^h),   O^h = tail^h(A^h)

so the learning signal I^h lives at S^h (``(E, B, C, H, W)`` for a conv layer), the
presynaptic activity of layer h+1 is O^h, and a signal that reaches layer h through a
chained route (at O^h, the input of block h+1) is carried back through the tail
(un-flattened, un-pooled at the recorded argmax) before f'(S^h) multiplies it.  The
record keeps A^h, O^h and the tail's aux (argmax indices) for that way back.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import init as _init
from .activations import get_activation
from .architecture import LayerSizes, conv_layer_sizes, is_conv_architecture
from .blocks import KINDS, Conv2d, Dense, grouped, members, times_derivative
from .nets import Network, Record
from .outputs import OutputActivation, get_output
from .rng import MemberStreams


class ConvRecord(Record):
    """A :class:`~lchannel.engine.nets.Record` of a block network: ``Z[h]`` (S^h as the block keeps
    it), ``O[h]`` (after the tail: the input of block h+1), ``A[h] = f(S^h)`` (before the
    tail, where f' is taken), and the tail's aux for the signal's way back."""

    def __init__(self, Z, O, activations, A, aux, tail_out, net):
        super().__init__(Z, O, activations)
        self.A = A
        self.aux = aux
        self.tail_out = tail_out  # outputs of each tail block, per layer
        self._net = net

    def pre_activation(self, h: int) -> torch.Tensor:
        if self.Z[h] is None:  # a conv layer's S was not kept (training pass): recompute it
            self.Z[h] = self._net.block(h).forward(self.presynaptic(h, len(self._net.seeds)))[0]
        return self._net.block(h).pre_activation(self.Z[h])

    def activity_before_dropout(self, h: int) -> torch.Tensor:
        """``A^h = f(S^h)``, before the layer's tail (conv nets have no forward dropout)."""
        return self.A[h]

    def times_fprime(self, h: int, J: torch.Tensor) -> torch.Tensor:
        d = self._fprime.get(h)
        if d is not None:
            return J * d
        f = self.activations[h]
        if J.dim() > 3:  # a conv layer: one fused kernel (see blocks.conv.times_derivative)
            S = None if f.fused_derivative or not f.uses_S else self.pre_activation(h)
            return times_derivative(f, J, S, self.A[h])
        return f.times_derivative(J, self.pre_activation(h) if f.uses_S else None, self.A[h])

    def presynaptic(self, h: int, members: int) -> torch.Tensor:
        """``O^{h-1}`` with the member axis (the input of block h)."""
        O = self.O[h - 1]
        return O if h > 1 or O.dim() == self._net.input_dim + 2 else O.unsqueeze(0).expand(members, *O.shape)

    def activity(self, h: int) -> torch.Tensor:
        """``A^h = f(S^h)`` flattened to ``(E, B, N_h)``: the activity of the units a dense
        feedback map (SRBP) reaches, the post side of its adaptation (ASRBP)."""
        A = self.A[h]
        return A.reshape(A.shape[0], A.shape[1], -1)

    def arrive(self, h: int, k: int, J: torch.Tensor) -> torch.Tensor:
        """A route's output as a signal at S^h: from a chained route (k = h+1, landing at
        the input O^h of block k) back through layer h's tail; from a dense map (skip)
        reshaped from ``(E, B, N_h)`` to S^h's shape."""
        if k != h + 1:
            A = self.A[h]
            J = J.view(A.shape)
            # Into the conv blocks' layout (members as channel groups, channels-last), so
            # that f' and the weight gradient read it the way they read A^h.
            return members(grouped(J), A.shape[0]) if A.dim() == 5 else J
        tail = self._net.tails[h - 1]
        outs = self.tail_out[h]
        for i in range(len(tail) - 1, -1, -1):
            x = self.A[h] if i == 0 else outs[i - 1]  # tail block i's input
            J = tail[i].adjoint(J, x, self.aux[h][i])
        return J


class ConvNetwork(Network):
    """E block networks (conv, pool, flatten, dense) trained in lockstep; built by
    :class:`~lchannel.engine.nets.Network` from an architecture string (see
    :mod:`lchannel.engine.architecture`).

    Parameters as :class:`~lchannel.engine.nets.Network`, plus ``input_shape`` ``(C, H, W)``.
    ``hidden`` names one transfer function or one per hidden weighted block (conv and
    dense, in order).  Weights are Glorot's scaled normal (paper 1, section 4.3) with
    fan-in C_in·K·K and fan-out C_out·K·K for a conv kernel.  Inputs may be flat rows
    ``(B, C·H·W)`` (as data sets store them) or images ``(B, C, H, W)``, shared by all
    members or with the member axis first.
    """

    accepts = staticmethod(is_conv_architecture)  # Network("conv...-dense10", ...) builds one

    def __init__(self, sizes: str, hidden: str | Sequence[str] = "tanh", output="softmax",
                 seeds: Sequence[int] = (0,), init: str = "glorot_normal", dropout: float = 0.0,
                 device="cpu", dtype: torch.dtype = torch.float32, input_shape=None):
        nn.Module.__init__(self)
        if input_shape is None:
            raise ValueError(f"input_shape (C, H, W) is required for the block architecture {sizes!r}")
        self.arch = sizes
        self.sizes: LayerSizes = conv_layer_sizes(sizes, input_shape)
        self.input_shape = self.sizes.input_shape
        specs = self.sizes.specs
        L = len(self.sizes) - 1
        if isinstance(hidden, str):
            hidden = [hidden] * (L - 1)
        if len(hidden) != L - 1:
            raise ValueError(f"hidden must name one activation or {L - 1} activations (one per hidden conv or "
                             f"dense piece), got {len(hidden)}")
        if init not in _init.INITS:
            raise ValueError(f"init must be one of {_init.INITS}, got {init!r}")
        if dropout != 0.0:
            raise ValueError(f"dropout (forward-channel dropout) is not implemented for block networks, got "
                             f"{dropout}; use 0 (learning-channel dropout, lc_dropout, works on conv routes)")
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one seed")
        self.output_loss = get_output(output)
        self.hidden = [get_activation(a) for a in hidden]
        self.activations = [None, *self.hidden, OutputActivation(self.output_loss)]
        self.seeds, self.init, self.dropout = seeds, init, float(dropout)
        streams = MemberStreams(seeds, "init")
        blocks, tails = [], []
        h = 0
        for spec in specs:
            kind = KINDS[spec.kind]
            if not spec.weighted:
                tails[-1].append(kind.from_spec(spec))  # a weightless piece belongs to the layer before it
                continue
            h += 1
            W = torch.stack([_init.draw(init, spec.weight_shape, spec.fan_in, spec.fan_out, g, dtype)
                             for g in streams.generators]).to(device)
            top = h == L  # the output layer takes the output pair instead of a transfer function
            blocks.append(kind.from_spec(spec, W, None if top else self.activations[h],
                                         self.output_loss if top else None))
            tails.append([])
        self.blocks = nn.ModuleList(blocks)
        self.tails = tails  # weightless: no state
        self._dropout_streams = None
        self._bound_channels = []
        self._cache()

    @property
    def input_dim(self) -> int:
        """Dimensions of one example as the first block takes it (3 for images, 1 for rows)."""
        return len(self.sizes.specs[0].in_shape)

    def __repr__(self) -> str:
        acts = ",".join(a.name for a in self.hidden)
        return (f"Network({self.arch!r}, input_shape={self.input_shape}, hidden={acts}, "
                f"output={self.output_loss.name}, members={self.E})")

    # -- forward channel ---------------------------------------------------------------
    def _as_input(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` as the first block takes it: ``(B, *shape)`` shared or ``(E, B, *shape)``."""
        shape = self.sizes.specs[0].in_shape
        n = self.sizes[0]
        if X.dim() in (2, 3) and X.shape[-1] == n:  # flat rows, shared or per member
            return X if len(shape) == 1 else X.reshape(*X.shape[:-1], *shape)
        if X.dim() in (4, 5) and tuple(X.shape[-3:]) == tuple(self.input_shape):
            return X if len(shape) == 3 else X.reshape(*X.shape[:-3], n)
        raise ValueError(f"input of shape {tuple(X.shape)} does not fit the network's input {self.input_shape}: "
                         f"expected (B, {n}), (E, B, {n}), (B, {', '.join(map(str, self.input_shape))}) or "
                         f"with the member axis first")

    def forward(self, X: torch.Tensor, train: bool = False, keep_S: bool | None = None) -> ConvRecord:
        """Run the forward channel on ``X`` (flat rows or images, shared or per member).

        ``keep_S``: keep each conv layer's S^h (default: not in training passes, where f'
        comes from O; without S, f(S) is computed in place, which also makes inference
        (:meth:`output`) lighter)."""
        keep = not train if keep_S is None else keep_S
        O = self._as_input(X)
        Z_list, O_list, A_list, aux_list = [None], [O], [None], [None]
        tail_outs = [None]
        if O.dim() == self.input_dim + 1 and isinstance(self._blocks[0], Dense):
            O = O.unsqueeze(0).expand(self.E, *O.shape)  # Dense takes (E, B, N)
        for h, (block, tail) in enumerate(zip(self._blocks, self.tails), start=1):
            # A conv layer's S is not kept in training passes (recomputed if ever asked for).
            Z, A, _ = block.forward(O, keep_S=keep) if isinstance(block, Conv2d) else block.forward(O)
            O, auxes, outs = A, [], []
            for t in tail:
                O, aux = t.forward(O)
                auxes.append(aux)
                outs.append(O)
            Z_list.append(Z)
            A_list.append(A)
            O_list.append(O)
            aux_list.append(auxes)
            tail_outs.append(outs)
        return ConvRecord(Z_list, O_list, self.activations, A_list, aux_list, tail_outs, self)

    @torch.no_grad()
    def predict(self, X: torch.Tensor, chunk: int = 10000) -> torch.Tensor:
        """Outputs ``O^L`` of every member, shape ``(E, B, N_L)``, computed in chunks."""
        X = self._as_input(X)
        axis = 0 if X.dim() == self.input_dim + 1 else 1
        outs = [self.output(X.narrow(axis, i, min(chunk, X.shape[axis] - i))) for i in range(0, X.shape[axis], chunk)]
        return torch.cat(outs, dim=1)

    def output(self, X: torch.Tensor) -> torch.Tensor:
        """``O^L`` of every member for one chunk ``X``: the inference pass (no S kept)."""
        return self.forward(X, keep_S=False).output

    # -- members and export ----------------------------------------------------------------
    _MEMBER_KEYS = (*Network._MEMBER_KEYS, "arch", "input_shape", "tails")

    def to_torch(self, e: int = 0) -> nn.Sequential:
        """Member ``e`` as a plain ``nn.Sequential`` (``nn.Conv2d``, ``nn.MaxPool2d``,
        ``nn.Flatten``, ``nn.Linear`` and activation modules, ending with the output pair's
        activation) taking images ``(B, C, H, W)``."""
        if not 0 <= e < self.E:
            raise ValueError(f"member must be in 0..{self.E - 1}, got {e}")
        mods: list[nn.Module] = [] if self.input_dim == 3 else [nn.Flatten()]
        for block, tail in zip(self._blocks, self.tails):
            mods += block.to_torch(e)
            for t in tail:
                mods += t.to_torch(e)
        return nn.Sequential(*mods)

    # -- what the learning channels ask of a block network ---------------------------------
    def adjoint_reference(self, k: int) -> torch.Tensor:
        """The forward parameter a random stand-in for block k's adjoint replaces, in the
        stand-in's layout: W^k for a conv kernel, (W^k)ᵀ for a dense block."""
        W = self.W(k)
        return W if W.dim() == 5 else W.transpose(1, 2)
