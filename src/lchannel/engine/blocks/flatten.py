"""The flatten block (weightless): conv feature maps to the vector a dense block takes."""

from __future__ import annotations

import torch
from torch import nn


class Flatten(nn.Module):
    """``(E, B, C, H, W)`` → ``(E, B, C·H·W)`` (weightless); its adjoint is the reshape back."""

    def __init__(self, in_shape):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)

    def forward(self, O: torch.Tensor):
        return O.reshape(O.shape[0], O.shape[1], -1), None

    def adjoint(self, G: torch.Tensor, O: torch.Tensor, aux=None) -> torch.Tensor:
        return G.reshape(O.shape)

    def to_torch(self, e: int = 0) -> list[nn.Module]:
        return [nn.Flatten()]
