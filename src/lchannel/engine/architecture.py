"""Architecture strings of block networks (convolutional nets), parsed without tensors.

A block network is a sequential stack of pieces joined by ``-`` (paper 1, section 4.3's
CIFAR-10 net is ``conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10``):

==========================  ==================================================================
piece                       block
==========================  ==================================================================
``conv<C>k<K>[s<S>][p<P>]``  C output channels, K×K kernel, stride S (default 1), zero padding P
                            (default (K−1)//2: "same" size for odd K at stride 1)
``pool<K>[s<S>][p<P>]``      K×K max-pooling, stride S (default K), padding P (default
                            (K−1)//2: output ⌈H/S⌉ for odd K, like Keras' "same")
``flatten``                 (C, H, W) → C·H·W; inserted by itself before the first dense piece
                            that follows a conv or pool piece
``dense<N>``                N fully connected units; the last piece must be dense (the output)
==========================  ==================================================================

Pieces are case-insensitive.  Each kind declares its piece in its own file under
:mod:`.blocks` (its ``grammar``: the syntax, the pattern and the BlockSpecs a match
builds, with that kind's checks); this module reads them from :data:`.blocks.KINDS`.
A *layer* h (paper 1's index, h = 1..L) is a weighted
piece (conv or dense); the weightless pieces after it (pool, flatten) belong to it: the
layer's signal I^h lives at the weighted block's output S^h, and a signal arriving from
above is carried back through them (un-pooled at the recorded argmax).  The layer sizes
``N_h`` are the numbers of units at S^h (C·H·W for a conv layer, before pooling), with
``N_0`` the input's C·H·W, so ``sizes[0]`` and ``sizes[-1]`` are the data set's numbers
of inputs and outputs, as for fully connected nets.

With the paper's net on (3, 32, 32) the defaults give 32 → conv 32 → pool 16 → conv 16
→ pool 8 → conv 8 → pool 4, flatten 64·4·4 = 1024, dense 1024, dense 10.
"""

from __future__ import annotations

from . import blocks  # noqa: F401 - imports every block kind, which registers itself in blockspec.KINDS
from .blockspec import KINDS, BlockSpec, Piece, prod


def pieces() -> dict[str, Piece]:
    """Each registered kind's declared piece (its ``grammar``), in the order the grammar
    lists them; read at every call, so a kind registered later (a plugin) is understood."""
    return {kind: cls.grammar for kind, cls in sorted(KINDS.items(), key=lambda kv: kv[1].grammar.rank)}


def grammar() -> str:
    """The grammar as error messages state it: every kind's syntax, joined by '-'."""
    return f"{', '.join(p.syntax for p in pieces().values())} (joined by '-')"


def is_conv_architecture(arch) -> bool:
    """Whether ``arch`` is a block-network string (``conv64k5-pool3s2-...-dense10``) rather
    than fully connected layer sizes (``"784,100,10"``, ``"A[784,100,10]"``, a list)."""
    if not isinstance(arch, str):
        return False
    s = arch.strip().lower()
    if not s or s[0].isdigit() or s.startswith("a["):
        return False
    first = s.split("-")[0]
    return any(first.startswith(k) for k in KINDS)


def parse_blocks(arch: str, input_shape) -> list[BlockSpec]:
    """The pieces of ``arch`` with their shapes for one example of ``input_shape``
    (``(C, H, W)``; ``(N,)`` when every piece is dense).  Pure: no tensors.

    Raises ValueError naming the piece and the shapes when a piece is not of the
    grammar (see the module doc) or a shape does not fit.  A ``flatten`` is inserted
    before the first dense piece that follows a conv or pool piece; a leading ``flatten``
    flattens the input (the first weighted piece is then dense)."""
    if not isinstance(arch, str) or not is_conv_architecture(arch):
        raise ValueError(f"architecture must be a block string of {grammar()}, e.g. "
                         f"'conv64k5-pool3s2-dense1024-dense10', got {arch!r}")
    shape = _check_input_shape(input_shape)
    specs: list[BlockSpec] = []
    declared = pieces()
    for i, piece in enumerate(arch.strip().lower().split("-")):
        kind, m = next(((p, p.pattern.fullmatch(piece)) for p in declared.values() if p.pattern.fullmatch(piece)),
                       (None, None))
        if kind is None:
            raise ValueError(f"architecture piece {i + 1} {piece!r} of {arch!r} is not one of {grammar()}")
        where = f"architecture piece {i + 1} {piece!r}"
        if kind.image_input and len(shape) != 3:
            raise ValueError(f"{where} needs an image input (C, H, W), but its input has shape {shape} "
                             f"(a conv or pool piece cannot follow a dense or flatten piece)")
        for spec in kind.build(where, m, shape, specs):
            if specs or spec.weighted:
                specs.append(spec)
            # else a leading flatten (written, or before a leading dense piece) reshapes the input
            shape = spec.out_shape
    if specs[-1].kind != "dense":
        raise ValueError(f"architecture {arch!r} must end with a dense piece (the output layer), "
                         f"ends with {specs[-1].piece!r}")
    return specs


def _check_input_shape(input_shape) -> tuple:
    try:
        shape = tuple(int(s) for s in input_shape)
        ok = len(shape) in (1, 3) and all(s >= 1 for s in shape) and all(int(s) == s for s in input_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"input_shape must be (C, H, W) (or (N,) for dense pieces only) of positive integers, "
                         f"got {input_shape!r}")
    return shape


class LayerSizes(list):
    """``[N_0, ..., N_L]`` of a block network (a list of ints, as for fully connected nets)
    that also knows its pieces, so a learning channel can count and check its routes
    before binding: ``route_fan_in(h, k)`` and ``route_multiplications(h, k)``."""

    def __init__(self, specs: list[BlockSpec], input_shape: tuple):
        self.specs = list(specs)
        self.input_shape = tuple(input_shape)
        self.weighted = [s for s in self.specs if s.weighted]
        super().__init__([prod(self.input_shape)] + [s.n_out for s in self.weighted])

    is_conv = True

    def block(self, h: int) -> BlockSpec:
        """The weighted piece of layer h (1-based)."""
        return self.weighted[h - 1]

    def route_fan_in(self, h: int, k: int) -> int:
        """Units of layer h one source unit of layer k can reach: through a chained route
        (k = h+1), block k's fan-in (C_in·K·K for a conv kernel, N_in for dense); through a
        dense map (skip), all N_h units of S^h.  Sparse-n feedback has density n / this."""
        return self.block(k).fan_in if k == h + 1 else self[h]

    def route_multiplications(self, h: int, k: int) -> int:
        """Multiplications per example by feedback weights on route h ← k (full density)."""
        return self.block(k).multiplications if k == h + 1 else self[h] * self[k]

    def __reduce__(self):
        return (LayerSizes, (self.specs, self.input_shape))


def conv_layer_sizes(arch: str, input_shape) -> LayerSizes:
    """``[N_0, ..., N_L]`` of a block network: N_0 = C·H·W of the input, N_h the units at
    weighted block h's output (conv: C·H·W before pooling), N_L the outputs."""
    return LayerSizes(parse_blocks(arch, input_shape), _check_input_shape(input_shape))


def route_fan_in(sizes, h: int, k: int) -> int:
    """The fan-in of route h ← k for sparse density: N_h for fully connected nets."""
    f = getattr(sizes, "route_fan_in", None)
    return sizes[h] if f is None else f(h, k)


def route_multiplications(sizes, h: int, k: int) -> int:
    """Feedback weights on route h ← k: N_h·N_k for fully connected nets."""
    f = getattr(sizes, "route_multiplications", None)
    return sizes[h] * sizes[k] if f is None else f(h, k)
