"""How a conv layer's feature maps of all E members are laid out: one channels-last tensor
with the members as channel groups, ``(B, E·C, H, W)``, seen by the record and the
learning channels as ``(E, B, C, H, W)`` (see :mod:`.conv` for why)."""

from __future__ import annotations

import torch

_CL = torch.channels_last


def grouped(x: torch.Tensor) -> torch.Tensor:
    """``(E, B, C, H, W)`` → ``(B, E·C, H, W)`` channels-last, the members as channel groups:
    a view of a tensor already in that layout (one made by :func:`members`), else one copy."""
    E, B, C, H, W = x.shape
    y = x.permute(1, 3, 4, 0, 2).reshape(B, H, W, E * C).permute(0, 3, 1, 2)
    return y.contiguous(memory_format=_CL)


def members(y: torch.Tensor, E: int) -> torch.Tensor:
    """``(B, E·C, H, W)`` → the view ``(E, B, C, H, W)`` (member e is channel group e)."""
    return y.unflatten(1, (E, y.shape[1] // E)).transpose(0, 1)
