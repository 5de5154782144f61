"""The max-pooling block (weightless, paper 1 section 4.3): it routes signals back to the
argmax of every window recorded in the forward pass."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..blockspec import BlockSpec, Piece, block_kind, window
from .layout import grouped, members

_pool_backward = torch.ops.aten.max_pool2d_with_indices_backward


def _piece(where: str, m: re.Match, shape: tuple, specs: list) -> list[BlockSpec]:
    """``pool<K>[s<S>][p<P>]``: K×K max-pooling, stride S (default K), padding P (default
    (K−1)//2: output ⌈H/S⌉ for odd K, like Keras' "same"); it belongs to the weighted
    piece before it."""
    if not any(s.weighted for s in specs):
        raise ValueError(f"{where} comes before any weighted piece (conv or dense): a weightless "
                         f"piece belongs to the layer before it")
    K = int(m[1])
    S = int(m[2]) if m[2] is not None else K
    P = int(m[3]) if m[3] is not None else (K - 1) // 2
    if 2 * P > K:
        raise ValueError(f"{where}: padding {P} must be at most half the kernel {K} (max-pooling pads "
                         f"with -inf; a window of padding only has no maximum)")
    out = window(where, shape, shape[0], K, S, P)
    return [BlockSpec("pool", m[0], shape, out, channels=shape[0], kernel=K, stride=S, padding=P)]


@block_kind
class MaxPool2d(nn.Module):
    """K×K max-pooling with stride and padding (weightless).  ``forward`` records the argmax
    of every window (``aux``); :meth:`adjoint` sends a signal back to those positions only
    (the route of BP and RBP: un-pooling at the forward argmax), adding the contributions
    of overlapping windows."""

    grammar = Piece("pool", "pool<K>[s<S>][p<P>]", re.compile(r"pool(\d+)(?:s(\d+))?(?:p(\d+))?"), _piece,
                    image_input=True, rank=1)

    @classmethod
    def from_spec(cls, spec: BlockSpec) -> "MaxPool2d":
        return cls(spec.in_shape, spec.kernel, spec.stride, spec.padding)

    def __init__(self, in_shape, kernel: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.kernel = int(kernel)
        self.stride = int(kernel if stride is None else stride)
        self.padding = int(padding)
        C, H, W = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        self.out_shape = (C, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)

    def forward(self, O: torch.Tensor):
        """``(O_pooled, argmax)`` for ``O`` ``(E, B, C, H, W)``."""
        P, idx = F.max_pool2d(grouped(O), self.kernel, self.stride, self.padding, return_indices=True)
        return members(P, O.shape[0]), idx

    def adjoint(self, G: torch.Tensor, O: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Un-pool ``G`` ``(E, B, C, H', W')`` at the recorded argmax ``idx`` onto the shape of
        ``O`` (the pooled input, ``(E, B, C, H, W)``)."""
        k, s, p = [self.kernel] * 2, [self.stride] * 2, [self.padding] * 2
        J = _pool_backward(grouped(G), grouped(O), k, s, p, [1, 1], False, idx)
        return members(J, O.shape[0])

    def to_torch(self, e: int = 0) -> list[nn.Module]:
        return [nn.MaxPool2d(self.kernel, self.stride, self.padding)]

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding={self.padding}"
