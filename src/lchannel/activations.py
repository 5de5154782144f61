"""Transfer functions f of the forward channel (paper 1, eq. 2) and their derivatives f'.

Each activation computes ``O = f(S)`` and ``f'(S)``; the derivative may use the already
computed output ``O`` (tanh' = 1 - O², logistic' = O(1 - O)), which is cheaper than
recomputing from ``S``.
"""

from __future__ import annotations

import torch


class Activation:
    """A pointwise transfer function ``f`` with derivative ``f'``.

    ``prescale`` lets the forward pass hand the activation ``Z = prescale · S`` instead
    of ``S``: the scaling is free inside the fused matrix product (``baddbmm`` with
    alpha = beta = prescale), and :meth:`from_scaled` maps ``Z`` to ``O``.
    ``uses_S`` says whether :meth:`derivative` needs ``S`` (else only ``O`` is used).
    """

    name: str = ""
    prescale: float = 1.0
    uses_S: bool = True

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_scaled(self, Z: torch.Tensor) -> torch.Tensor:
        """``f(S)`` from ``Z = prescale · S``."""
        return self(Z)

    def derivative(self, S: torch.Tensor | None, O: torch.Tensor) -> torch.Tensor:
        """``f'(S)``, given ``S`` and ``O = f(S)`` (``S`` may be None when not ``uses_S``)."""
        raise NotImplementedError

    def times_derivative(self, J: torch.Tensor, S: torch.Tensor | None, O: torch.Tensor) -> torch.Tensor:
        """``J ⊙ f'(S)``; subclasses fuse it where that saves a pass over memory."""
        return J * self.derivative(S, O)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    name = "identity"

    def __call__(self, S):
        return S

    def derivative(self, S, O):
        return torch.ones_like(O)

    def times_derivative(self, J, S, O):
        return J


class Logistic(Activation):
    name = "logistic"
    uses_S = False

    def __call__(self, S):
        return torch.sigmoid(S)

    def derivative(self, S, O):
        return O * (1.0 - O)


class Tanh(Activation):
    """Hyperbolic tangent, computed as ``2σ(2S) − 1``.

    Why: on the CPU build of PyTorch used here ``torch.tanh`` costs several times more
    than ``torch.sigmoid`` (its vectorised kernel is slower), and the identity
    tanh(x) = 2σ(2x) − 1 is exact up to float rounding.
    """

    name = "tanh"
    prescale = 2.0  # the forward matmul yields 2S directly
    uses_S = False

    def __call__(self, S):
        if S.requires_grad:  # keep autograd usable (reference gradients in tests)
            return torch.tanh(S)
        return self.from_scaled(S * 2.0)

    def from_scaled(self, Z):
        if Z.requires_grad:
            return torch.tanh(Z * 0.5)
        # 2σ(Z) − 1 as one add with a cached 0-dim −1: a Python scalar in mul_/sub_ is
        # wrapped into a fresh tensor on every call, which costs more than the arithmetic.
        return torch.add(_minus_one(Z), torch.sigmoid(Z), alpha=2.0)

    def derivative(self, S, O):
        return 1.0 - O * O

    def times_derivative(self, J, S, O):
        # J ⊙ (1 − O²) = J − (J ⊙ O) ⊙ O: two passes instead of three.
        return torch.addcmul(J, J * O, O, value=-1.0)


_MINUS_ONE: dict = {}


def _minus_one(like: torch.Tensor) -> torch.Tensor:
    """A cached 0-dim −1 with the dtype and device of ``like``."""
    key = (like.dtype, like.device)
    c = _MINUS_ONE.get(key)
    if c is None:
        c = _MINUS_ONE[key] = torch.tensor(-1.0, dtype=like.dtype, device=like.device)
    return c


class ReLU(Activation):
    name = "relu"

    def __call__(self, S):
        return torch.relu(S)

    def derivative(self, S, O):
        return (S > 0).to(S.dtype)


ACTIVATIONS: dict[str, type[Activation]] = {
    c.name: c for c in (Identity, Logistic, Tanh, ReLU)
}


def get_activation(name: str | Activation) -> Activation:
    """The activation called ``name`` (one of identity, logistic, tanh, relu)."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}"
        ) from None
