"""Weight initialisation: the scaled normal and uniform of Glorot & Bengio (paper 1, ref. [11]).

Both have variance 2 / (fan_in + fan_out): normal with std sqrt(2/(fan_in+fan_out)),
uniform on ±sqrt(6/(fan_in+fan_out)).  The papers call the first "scaled normal".
"""

from __future__ import annotations

import math

import torch

INITS = ("glorot_normal", "glorot_uniform")


def glorot_std(fan_in: int, fan_out: int) -> float:
    return math.sqrt(2.0 / (fan_in + fan_out))


def draw(
    kind: str,
    shape: tuple[int, int],
    fan_in: int,
    fan_out: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """One matrix of ``shape`` from the initialiser ``kind``."""
    if kind == "glorot_normal":
        w = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        return w.mul_(glorot_std(fan_in, fan_out))
    if kind == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        w = torch.rand(shape, generator=generator, dtype=dtype, device=device)
        return w.mul_(2 * limit).sub_(limit)
    raise ValueError(f"init must be one of {INITS}, got {kind!r}")
