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
    def declared(self) -> "Piece":
        """The declaration of this piece's kind (its block class's ``grammar``)."""
        return KINDS[self.kind].grammar

    @property
    def weighted(self) -> bool:
        return self.declared.weighted

    @property
    def n_out(self) -> int:
        return prod(self.out_shape)

    @property
    def n_in(self) -> int:
        return prod(self.in_shape)

    @property
    def weight_shape(self) -> tuple:
        """The shape of one member's weight: (C_out, C_in, K, K) (conv), (N_out, N_in) (dense)."""
        return self.declared.weight_shape(self)

    @property
    def fan_in(self) -> int:
        """Inputs per unit: C_in·K·K (conv), N_in (dense, and weightless pieces)."""
        f = self.declared.fan_in
        return self.n_in if f is None else f(self)

    @property
    def fan_out(self) -> int:
        """Units reached per input: C_out·K·K (conv), N_out (dense) — Glorot's fan-out."""
        f = self.declared.fan_out
        return self.units if f is None else f(self)

    @property
    def multiplications(self) -> int:
        """Multiplications per example of the block's linear map (and of its adjoint); 0
        for a weightless piece."""
        f = self.declared.multiplications
        return 0 if f is None else f(self)


@dataclass(frozen=True)
class Piece:
    """How the grammar spells one block kind (declared in the kind's own file).

    kind: the kind's name, also the prefix :func:`~.architecture.is_conv_architecture`
    looks for; syntax: the piece as the grammar's text shows it (``dense<N>``); pattern:
    the regular expression a lower-cased piece must match in full; image_input: the piece
    needs a ``(C, H, W)`` input; build: ``build(where, match, shape, specs)`` → the
    BlockSpecs the matched piece adds after ``specs`` on an input of ``shape`` (raising
    ValueError that starts with ``where`` when a shape does not fit); rank: where the
    grammar lists the kind (lowest first).  A weighted kind also says its
    ``weight_shape``, ``fan_in``, ``fan_out`` and ``multiplications`` (functions of its
    BlockSpec); a weightless one leaves them None.
    """

    kind: str
    syntax: str
    pattern: re.Pattern
    build: Callable[[str, re.Match, tuple, list], list]
    image_input: bool = False
    rank: int = 100
    weighted: bool = False
    weight_shape: Callable[[BlockSpec], tuple] | None = None
    fan_in: Callable[[BlockSpec], int] | None = None
    fan_out: Callable[[BlockSpec], int] | None = None
    multiplications: Callable[[BlockSpec], int] | None = None


# kind -> its block class (an nn.Module with a ``grammar`` Piece and ``from_spec``), filled
# by :func:`block_kind` as each kind's file is imported (lchannel.engine.blocks imports every
# file of its folder, so a new kind is one file there).
KINDS: dict[str, type] = {}


def block_kind(cls: type) -> type:
    """Class decorator: register a block kind under its ``grammar.kind``."""
    piece = getattr(cls, "grammar", None)
    if not isinstance(piece, Piece):
        raise ValueError(f"block_kind: {cls.__name__} needs a 'grammar' Piece declaring its piece")
    if piece.weighted and piece.weight_shape is None:
        raise ValueError(f"block_kind: weighted kind {piece.kind!r} must declare its weight_shape")
    old = KINDS.get(piece.kind, cls)
    if (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):  # a reload re-registers
        raise ValueError(f"block_kind: kind {piece.kind!r} is already {KINDS[piece.kind].__name__}")
    KINDS[piece.kind] = cls
    return cls


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

