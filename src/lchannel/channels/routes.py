"""Route operators: how a signal travels along one edge h ← k of a learning channel.

A learning channel is a *topology* (which upper layers k send to which lower layer h) and
one operator per edge, ``send(G^k) → J^h`` (see :mod:`lchannel.channels.base`):

- :class:`Adjoint`: the forward block's own adjoint, ``G^k W^k`` — BP (eq. 3-5) and,
  chained without the upper derivatives, SBP;
- :class:`RandomMap`: a fixed random matrix ``C^{h,k}`` of shape ``(N_h, N_k)``,
  ``J^h = G^k (C^{h,k})ᵀ`` — RBP's random stand-in for ``(W^{h+1})ᵀ`` (eq. 6-8) when
  k = h+1, and SRBP's dense random map from the output layer (paper 2, eq. 11) when
  k = L.  Any edge draws its matrix with :func:`draw_route` (the forward block's own
  fan-in and fan-out for a chained edge).

A channel's route reads its matrix from the channel's buffers by name when it sends, so
adapting or resampling the matrix, and moving the channel (``.to(...)``), change what the
route sends.
"""

from __future__ import annotations

import torch

from ..engine.blocks import Conv2d
from ..engine.blocks.standins import draw_feedback


class Route:
    """One edge h ← k: ``send(G)`` maps the sending layer's signal ``(E, B, N_k)`` to the
    signal arriving at the receiving layer, ``(E, B, N_h)``."""

    def send(self, G: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Adjoint(Route):
    """BP's route: the forward block's adjoint, ``J^h = G^k W^k`` (``(W^k)ᵀ`` applied to
    the column signal, eq. 4)."""

    def __init__(self, block):
        self.block = block

    def send(self, G):
        return self.block.adjoint(G)

    def __repr__(self) -> str:
        return f"Adjoint({self.block.n_out}->{self.block.n_in})"


class RandomMap(Route):
    """A random feedback matrix ``C`` ``(E, N_h, N_k)``: ``J^h = G^k Cᵀ`` (RBP eq. 7,
    SRBP paper 2 eq. 11)."""

    def __init__(self, C: torch.Tensor | None = None, *, buffers: dict | None = None, name: str | None = None):
        if (C is None) == (buffers is None):
            raise ValueError("RandomMap takes a matrix C or (buffers, name), not both")
        if C is not None:
            buffers, name = {"C": C}, "C"
        self._buffers, self._name = buffers, name

    @property
    def C(self) -> torch.Tensor:
        """The matrix, read from the buffers by name (a channel's, kept current by .to())."""
        return self._buffers[self._name]

    def send(self, G):
        return torch.bmm(G, self.C.transpose(1, 2))

    def __repr__(self) -> str:
        return f"RandomMap{tuple(self.C.shape[1:])}"


class RandomKernel(RandomMap):
    """RBP's route into a conv block's input: a random kernel ``C`` of the block's weight
    shape ``(E, C_out, C_in, K, K)`` in place of W in the transposed convolution,
    ``J = C ⋆ᵀ G`` (eq. 7 with the conv's adjoint).  The channel then un-pools J at the
    forward argmax (``ConvRecord.arrive``)."""

    def __init__(self, block, *, buffers: dict, name: str):
        super().__init__(buffers=buffers, name=name)
        self.block = block

    def send(self, G):
        return self.block.transposed(G, self.C)

    def __repr__(self) -> str:
        return f"RandomKernel{tuple(self.C.shape[1:])}"


def draw_route(net, h: int, k: int, feedback, generators, sign_like: torch.Tensor | None = None,
               synapses: int | None = None) -> torch.Tensor:
    """The random matrix ``C^{h,k}`` ``(E, N_h, N_k)`` of edge h ← k (one draw per member).

    A chained edge (k = h+1) is the random stand-in for block k's adjoint, drawn by the
    block with its own fan-in and fan-out; any other edge (skip, cascade) is a dense
    random map from layer k reshaped to layer h's shape (for Dense layers, ``(N_h, N_k)``).
    Sparse entries are scaled only when the source is below the output (chained, see
    :class:`~lchannel.channels.FeedbackInit`).
    """
    chained = k < net.L
    if k == h + 1:
        return net.block(k).random_adjoint(feedback, generators, chained, sign_like, synapses)
    n_h, n_k = net.sizes[h], net.sizes[k]
    return draw_feedback(feedback, (n_h, n_k), n_h, n_k, generators, chained, net.dtype, net.device,
                         sign_like, synapses)


def feedback_route(net, h: int, k: int, buffers: dict, name: str) -> RandomMap:
    """The route of a random channel's matrix ``buffers[name]`` on edge h ← k: a random
    kernel through block k's transposed convolution when block k is a conv (chained),
    else a random matrix (eq. 6-8; a skip edge is always a dense map)."""
    if k == h + 1 and isinstance(net.block(k), Conv2d):
        return RandomKernel(net.block(k), buffers=buffers, name=name)
    return RandomMap(buffers=buffers, name=name)
