"""Blocks of the forward channel: what one layer of a network knows about itself.

A weighted block owns its parameters (with the member axis: E networks in lockstep) and
knows four things, which is all that the learning channel and the plasticity rules need:

``forward(O_prev) → (Z, O, aux)``
    the layer's part of eq. 2, S^h = W^h O^{h-1} + b^h, O^h = f^h(S^h); ``Z`` is the
    pre-activation as the block keeps it (``prescale · S``, see
    :class:`~lchannel.engine.activations.Activation`; :meth:`pre_activation` gives S), ``aux``
    what learning needs besides (nothing for Dense: None).
``adjoint(G)``
    a signal at the block's output carried to its input through (W^h)ᵀ: BP's route
    (eq. 3-5).
``random_adjoint(...)``
    a random stand-in for that adjoint, drawn from a feedback distribution with the
    block's own fan-in and fan-out: RBP's route (eq. 6-8).
``weight_update(I, O_prev)``
    the local update ΔW^h/η = (1/B) Σ_b I^h_b (O^{h-1}_b)ᵀ and Δb^h/η = (1/B) Σ_b I^h_b
    (paper 1, eq. 13; the bias is the weight of a unit clamped to one).

The performance devices of the dense engine live here, inside the block that uses them:
the prescaled product (tanh through σ), the transposed softmax output, the bias update
fused into one product with a cached row of ones, and cached transposed views.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ..activations import Activation
from ..blockspec import BlockSpec, Piece, block_kind
from .flatten import flatten_spec
from .standins import TORCH_ACTIVATIONS, draw_feedback
from ..outputs import OutputActivation, OutputLoss


def _piece(where: str, m: re.Match, shape: tuple, specs: list) -> list[BlockSpec]:
    """``dense<N>``: N fully connected units, after a flatten of an image input (the
    grammar inserts it by itself)."""
    N = int(m[1])
    if N < 1:
        raise ValueError(f"{where}: a dense piece needs at least 1 unit")
    head = []
    if len(shape) == 3:
        head = [flatten_spec(shape)]
        shape = head[0].out_shape
    return [*head, BlockSpec("dense", m[0], shape, (N,), units=N)]


@block_kind
class Dense(nn.Module):
    """E fully connected layers ``S = W O_prev + b``, ``O = f(S)`` with W ``(E, out, in)``.

    weight: the initial W, shape ``(E, n_out, n_in)``; the bias starts at zero.
    activation: the transfer function f of a hidden layer.
    output: instead of ``activation``, the output pair (activation + loss) of the top
        block; a pair that ``prefers_transposed`` (softmax) is computed down the columns of
        ``(S^L)ᵀ``.
    """

    grammar = Piece("dense", "dense<N>", re.compile(r"dense(\d+)"), _piece, rank=3, weighted=True,
                    weight_shape=lambda s: (s.units, s.n_in), fan_in=lambda s: s.n_in, fan_out=lambda s: s.units,
                    multiplications=lambda s: s.n_in * s.units)

    @classmethod
    def from_spec(cls, spec: BlockSpec, weight: torch.Tensor, activation: Activation | None = None,
                  output: OutputLoss | None = None) -> "Dense":
        """The block of a parsed piece with its initial ``weight`` (E, *spec.weight_shape)."""
        return cls(weight, activation, output)

    def __init__(self, weight: torch.Tensor, activation: Activation | None = None,
                 output: OutputLoss | None = None):
        super().__init__()
        if weight.dim() != 3:
            raise ValueError(f"Dense weight must have shape (E, n_out, n_in), got {tuple(weight.shape)}")
        if (activation is None) == (output is None):
            raise ValueError("Dense takes either a hidden activation or an output pair")
        E, n_out, _ = weight.shape
        self.weight = nn.Parameter(weight, requires_grad=False)  # W^h (E, N_h, N_{h-1})
        self.bias = nn.Parameter(torch.zeros(E, n_out, dtype=weight.dtype, device=weight.device),
                                 requires_grad=False)  # b^h (E, N_h)
        self.activation = OutputActivation(output) if output is not None else activation
        self.transposed = output is not None and output.prefers_transposed
        self.output = output
        self._ones: torch.Tensor | None = None
        self._cache_views()

    def _cache_views(self) -> None:
        # Plain-tensor views of the parameters: they stay valid under in-place updates and
        # skip nn.Module attribute lookup and Parameter dispatch on the hot path.
        self._W = self.weight.detach()
        self._Wt = self._W.transpose(1, 2)  # (E, N_{h-1}, N_h)
        self._b = self.bias.detach()
        self._b3 = self._b.unsqueeze(1)  # (E, 1, N_h): broadcast over the batch
        self._bcol = self._b.unsqueeze(2)  # (E, N_h, 1): the transposed output layer

    def _apply(self, fn, recurse=True):
        # .to(device/dtype) replaces the parameters' data: the cached views must follow.
        out = super()._apply(fn, recurse)
        self._cache_views()
        self._ones = None
        return out

    @property
    def n_in(self) -> int:
        return self.weight.shape[2]

    @property
    def n_out(self) -> int:
        return self.weight.shape[1]

    # -- forward channel (eq. 2) --------------------------------------------------------
    def forward(self, O_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """``(Z, O, None)`` for ``O_prev`` of shape ``(E, B, n_in)``; Z and O are ``(E, B, n_out)``."""
        if self.transposed:
            # (S^L)ᵀ = W (O^{L-1})ᵀ + b: the output pair works down columns; Z and O are
            # (E, B, N_L) transposed views of it (the output layer's prescale is 1).
            Zt = torch.baddbmm(self._bcol, self._W, O_prev.transpose(1, 2))
            return Zt.transpose(1, 2), self.output.activate_transposed(Zt), None
        f = self.activation
        p = f.prescale
        # Z = p·(O Wᵀ + b) in one fused product (p = 2 lets tanh run through σ).
        Z = torch.baddbmm(self._b3, O_prev, self._Wt, beta=p, alpha=p)
        return Z, f.from_scaled(Z), None

    def pre_activation(self, Z: torch.Tensor) -> torch.Tensor:
        """``S = Z / prescale`` from what :meth:`forward` returned."""
        p = self.activation.prescale
        return Z if p == 1.0 else Z / p

    # -- learning channel routes --------------------------------------------------------
    def adjoint(self, G: torch.Tensor) -> torch.Tensor:
        """BP's route (eq. 4): ``G W``, the output signal ``G`` ``(E, B, n_out)`` carried to
        the input through Wᵀ, shape ``(E, B, n_in)``."""
        return torch.bmm(G, self._W)

    def random_adjoint(self, feedback, generators, chained: bool, sign_like: torch.Tensor | None = None,
                       synapses: int | None = None) -> torch.Tensor:
        """RBP's route (eq. 6-8): a random stand-in ``C`` for Wᵀ, shape ``(E, n_in, n_out)``
        (``synapses=m``: ``(E, n_in, n_out, m)``), one draw per member from ``generators``
        with this block's fan-in and fan-out (a :class:`~lchannel.channels.FeedbackInit`)."""
        return draw_feedback(feedback, (self.n_in, self.n_out), self.n_in, self.n_out, generators, chained, self.weight.dtype,
                             self.weight.device, sign_like, synapses)

    # -- plasticity (eq. 13) --------------------------------------------------------------
    @staticmethod
    def weight_update(I: torch.Tensor, O_prev: torch.Tensor, per_example=None,
                      lr: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ΔW, Δb)/η``: the minibatch means ``(1/B) Σ_b I_b O_bᵀ`` and ``(1/B) Σ_b I_b``
        for ``I`` ``(E, B, n_out)`` and ``O_prev`` ``(E, B, n_in)`` (paper 1, eq. 13).

        ``per_example`` (eq. 19's :class:`~lchannel.engine.quantize.Quantizer`) quantizes every
        example's update (``η I_b O_bᵀ`` and ``η I_b``, or without η, as its reading of
        section 5.2 says) before the mean or sum; its factored sum never forms them all.
        """
        B = I.shape[1]
        if per_example is None:
            return torch.bmm(I.transpose(1, 2), O_prev).div_(B), I.mean(1)
        return per_example.outer_direction(I, O_prev, lr), per_example.examples_direction(I, lr)

    def apply_update_(self, I: torch.Tensor, O_prev: torch.Tensor, lr: float) -> None:
        """W += η (1/B) Iᵀ O_prev and b += η (1/B) 1ᵀ I in place, each one fused product
        (the bias as the weight of the unit clamped to one: one call instead of a sum and
        an add)."""
        a = lr / I.shape[1]
        self._W.baddbmm_(I.transpose(1, 2), O_prev, alpha=a)
        self._b3.baddbmm_(self._ones_row(I), I, alpha=a)

    def add_(self, dW: torch.Tensor, db: torch.Tensor, alpha: float) -> None:
        """W += α dW, b += α db in place."""
        self._W.add_(dW, alpha=alpha)
        self._b.add_(db, alpha=alpha)

    # Per-member learning rates (populations across variants, lchannel.population.packing): the same
    # operations on a slice of the members, so that each group of members with one rate
    # gets the arithmetic of a population of its own.
    def apply_update_members_(self, I: torch.Tensor, O_prev: torch.Tensor, lr: float, members: slice) -> None:
        """:meth:`apply_update_` on ``members`` only (``I``, ``O_prev`` of the whole population)."""
        a = lr / I.shape[1]
        ones, I = self._ones_row(I)[members], I[members]
        self._W[members].baddbmm_(I.transpose(1, 2), O_prev[members], alpha=a)
        self._b3[members].baddbmm_(ones, I, alpha=a)

    def add_members_(self, dW: torch.Tensor, db: torch.Tensor, alpha: float, members: slice) -> None:
        """:meth:`add_` on ``members`` only (``dW``, ``db`` of the whole population)."""
        self._W[members].add_(dW[members], alpha=alpha)
        self._b[members].add_(db[members], alpha=alpha)

    def _ones_row(self, I: torch.Tensor) -> torch.Tensor:
        """The clamped unit's activity over a minibatch, ``(E, 1, B)`` of ones (cached)."""
        E, B = I.shape[0], I.shape[1]
        o = self._ones
        if o is None or o.shape != (E, 1, B) or o.dtype != I.dtype or o.device != I.device:
            o = self._ones = torch.ones(1, 1, B, dtype=I.dtype, device=I.device).expand(E, 1, B)
        return o

    # -- members and export ---------------------------------------------------------------
    def member(self, e: int) -> "Dense":
        """A single-member copy of member ``e``."""
        block = Dense(self.weight[e:e + 1].detach().clone(), None if self.output else self.activation, self.output)
        block._b.copy_(self._b[e:e + 1])
        return block

    def to_torch(self, e: int) -> list[nn.Module]:
        """Member ``e`` as plain modules: ``nn.Linear`` and its activation module."""
        lin = nn.Linear(self.n_in, self.n_out, dtype=self.weight.dtype, device=self.weight.device)
        with torch.no_grad():
            lin.weight.copy_(self._W[e])
            lin.bias.copy_(self._b[e])
        name = self.output.activation if self.output is not None else self.activation.name
        return [lin, TORCH_ACTIVATIONS[name]()]

    def extra_repr(self) -> str:
        E, n_out, n_in = self.weight.shape
        act = self.output.activation if self.output is not None else self.activation.name
        return f"members={E}, in={n_in}, out={n_out}, activation={act}"
