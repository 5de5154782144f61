"""The flatten block (weightless): conv feature maps to the vector a dense block takes."""

from __future__ import annotations

import re

import torch
from torch import nn

from ..blockspec import BlockSpec, Piece, block_kind, prod


def flatten_spec(shape: tuple, piece: str = "flatten") -> BlockSpec:
    """The flatten piece on ``shape``: ``(C, H, W)`` → ``(C·H·W,)``."""
    return BlockSpec("flatten", piece, shape, (prod(shape),))


def _piece(where: str, m: re.Match, shape: tuple, specs: list) -> list[BlockSpec]:
    """``flatten``: (C, H, W) → C·H·W."""
    if len(shape) == 1:
        raise ValueError(f"{where}: the input is already flat, shape {shape}")
    return [flatten_spec(shape, m[0])]


@block_kind
class Flatten(nn.Module):
    """``(E, B, C, H, W)`` → ``(E, B, C·H·W)`` (weightless); its adjoint is the reshape back."""

    grammar = Piece("flatten", "flatten", re.compile(r"flatten"), _piece, rank=2)

    @classmethod
    def from_spec(cls, spec: BlockSpec) -> "Flatten":
        return cls(spec.in_shape)

    def __init__(self, in_shape):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)

    def forward(self, O: torch.Tensor):
        return O.reshape(O.shape[0], O.shape[1], -1), None

    def adjoint(self, G: torch.Tensor, O: torch.Tensor, aux=None) -> torch.Tensor:
        return G.reshape(O.shape)

    def to_torch(self, e: int = 0) -> list[nn.Module]:
        return [nn.Flatten()]
