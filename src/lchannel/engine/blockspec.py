"""What the architecture grammar knows about one piece, shared by the grammar
(:mod:`.architecture`) and the block kinds that declare their pieces (:mod:`.blocks`), so
that neither imports the other: :class:`BlockSpec` (a piece with its shapes) and
:class:`Piece` (how a kind is spelled and what a matched piece builds).  No tensors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class BlockSpec:
    """One piece of a block network with its shapes.

    kind: ``conv``, ``pool``, ``flatten`` or ``dense``; piece: the piece as written;
    in_shape / out_shape: ``(C, H, W)`` or ``(N,)`` of one example; channels (conv: output
    channels), kernel, stride, padding (conv, pool); units (dense).
    """

    kind: str
    piece: str
    in_shape: tuple
    out_shape: tuple
    channels: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    units: int = 0

    @property
    def weighted(self) -> bool:
        return self.kind in ("conv", "dense")

    @property
    def n_out(self) -> int:
        return prod(self.out_shape)

    @property
    def n_in(self) -> int:
        return prod(self.in_shape)

    @property
    def fan_in(self) -> int:
        """Inputs per unit: C_in·K·K (conv), N_in (dense)."""
        return self.in_shape[0] * self.kernel * self.kernel if self.kind == "conv" else self.n_in

    @property
    def fan_out(self) -> int:
        """Units reached per input: C_out·K·K (conv), N_out (dense) — Glorot's fan-out."""
        return self.channels * self.kernel * self.kernel if self.kind == "conv" else self.units

    @property
    def multiplications(self) -> int:
        """Multiplications per example of the block's linear map (and of its adjoint)."""
        if self.kind == "conv":
            return self.n_out * self.fan_in
        return self.n_in * self.units if self.kind == "dense" else 0


@dataclass(frozen=True)
class Piece:
    """How the grammar spells one block kind (declared in the kind's own file).

    kind: the kind's name, also the prefix :func:`~.architecture.is_conv_architecture`
    looks for; syntax: the piece as the grammar's text shows it (``dense<N>``); pattern:
    the regular expression a lower-cased piece must match in full; image_input: the piece
    needs a ``(C, H, W)`` input; build: ``build(where, match, shape, specs)`` → the
    BlockSpecs the matched piece adds after ``specs`` on an input of ``shape`` (raising
    ValueError that starts with ``where`` when a shape does not fit).
    """

    kind: str
    syntax: str
    pattern: re.Pattern
    build: Callable[[str, re.Match, tuple, list], list]
    image_input: bool = False


def prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def window(where: str, shape: tuple, C: int, K: int, S: int, P: int) -> tuple:
    """The ``(C, H', W')`` a K×K window at stride S with padding P makes of ``shape``
    (a convolution's or a pooling's output), checked."""
    if C < 1 or K < 1 or S < 1:
        raise ValueError(f"{where}: channels, kernel and stride must be >= 1")
    _, H, W = shape
    if K > H + 2 * P or K > W + 2 * P:
        raise ValueError(f"{where}: kernel {K}x{K} with padding {P} does not fit the input of shape {shape} "
                         f"(padded {H + 2 * P}x{W + 2 * P})")
    return (C, (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1)

