"""Where each weight sits in the flat state vector of a linear system A[N_0, ..., N_L].

The ODE solvers see one flat vector y; the theorems and the discrete learner see the
matrices A_1..A_L and, for the adaptive rules, C_1..C_{L-1} (paper 1 eq. 81, 84, 87;
paper 2 eq. 125-130).  :class:`MatrixLayout` converts between the two, once for every
linear system.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .rules import rule_spec

__all__ = ["channel_shapes", "MatrixLayout", "PairedLayers"]


def channel_shapes(sizes: Sequence[int], rule: str) -> list[tuple[int, int]]:
    """Shapes of C_1..C_{L-1} in A[N_0, ..., N_L]: N_i × N_{source(i)}, that is (N_i, N_{i+1})
    for RBP/ARBP, (N_i, N_L) for SRBP/ASRBP, none for GD (:meth:`Rule.source`)."""
    spec = rule_spec(rule)
    L = len(sizes) - 1
    if not spec.has_channel:
        return []
    return [(sizes[i], sizes[spec.source(i, L)]) for i in range(1, L)]


class MatrixLayout:
    """The state layout every linear system shares, seen as A[N_0, ..., N_L] (``sizes``).

    The state is A_1, ..., A_L (A_i of shape N_i × N_{i-1}, each flattened row-major),
    then C_1..C_{L-1} (shapes :func:`channel_shapes`) if the channel adapts: the chain
    A[1,...,1], A[1,N,1], A[N,1,N] and the general matrix form all store their weights so.
    A fixed channel (RBP/SRBP) is not state: :meth:`fixed_channels` gives it, from the
    flat vector ``c`` unless a system overrides it.  Mixed into a :class:`LearningSystem`
    (for ``adaptive`` and ``rule``).
    """

    sizes: tuple[int, ...]
    rule: str
    c: np.ndarray | None = None

    @property
    def a_shapes(self) -> list[tuple[int, int]]:
        """Shapes of A_1..A_L."""
        n = self.sizes
        return [(n[i], n[i - 1]) for i in range(1, len(n))]

    @property
    def c_shapes(self) -> list[tuple[int, int]]:
        """Shapes of C_1..C_{L-1} (none for GD)."""
        return channel_shapes(self.sizes, self.rule)

    def fixed_channels(self) -> list[np.ndarray]:
        """The fixed channel matrices C_1..C_{L-1} (RBP/SRBP), cut from ``c``; none otherwise."""
        return [] if self.c is None else _cut(self.c, self.c_shapes)[0]

    def pack(self, As: Sequence[np.ndarray], Cs: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """State vector from the matrices (Cs only for adaptive rules)."""
        L = len(self.sizes) - 1
        if len(As) != L:
            raise ValueError(f"As must hold {L} matrices; got {len(As)}")
        for i, (a, shape) in enumerate(zip(As, self.a_shapes), 1):
            if np.shape(a) != shape:
                raise ValueError(f"A{i} must have shape {shape}; got {np.shape(a)}")
        parts = [np.ravel(a) for a in As]
        if self.adaptive:
            if Cs is None or len(Cs) != L - 1:
                raise ValueError(f"adaptive rule {self.rule!r} needs Cs, {L - 1} matrices with shapes {self.c_shapes}")
            for i, (c, shape) in enumerate(zip(Cs, self.c_shapes), 1):
                if np.shape(c) != shape:
                    raise ValueError(f"C{i} must have shape {shape}; got {np.shape(c)}")
            parts += [np.ravel(c) for c in Cs]
        return np.concatenate(parts).astype(float)

    def unpack(self, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(As, Cs): the forward matrices and the channel matrices in use (fixed or state), as views of ``y``."""
        y = np.asarray(y, dtype=float)
        As, k = _cut(y, self.a_shapes)
        if not self.adaptive:
            return As, self.fixed_channels()
        return As, _cut(y[k:], self.c_shapes)[0]

    def to_matrices(self, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Copies of (As, Cs) for the discrete learner (Cs empty for GD)."""
        As, Cs = self.unpack(y)
        return [a.copy() for a in As], [c.copy() for c in Cs]

    def from_matrices(self, As: Sequence[np.ndarray], Cs: Sequence[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`to_matrices` (the fixed channel of RBP/SRBP is dropped)."""
        return self.pack(As, Cs if self.adaptive else None)


def _cut(flat: np.ndarray, shapes: Sequence[tuple[int, int]]) -> tuple[list[np.ndarray], int]:
    """Consecutive row-major matrices of ``shapes`` read from ``flat``, and how many entries they took."""
    mats, k = [], 0
    for r, s in shapes:
        mats.append(flat[k : k + r * s].reshape(r, s))
        k += r * s
    return mats, k


class PairedLayers(MatrixLayout):
    """Shared by A[1,N,1] and A[N,1,N]: state (a_1..a_N, b_1..b_N[, c_1..c_N])."""

    width: int

    def _pair_names(self) -> tuple[str, ...]:
        n = self.width
        return tuple(f"{p}{i}" for p in ("a", "b") + (("c",) if self.adaptive else ()) for i in range(1, n + 1))

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, c) as flat vectors; c is the channel used by the rule (b itself for GD)."""
        n = self.width
        a, b = y[:n], y[n : 2 * n]
        if self.adaptive:
            return a, b, y[2 * n :]
        return a, b, (self.c if self.rule_spec.has_channel else b)
