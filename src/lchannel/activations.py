"""Transfer functions f of the forward channel (paper 1, eq. 2) and their derivatives f'.

Each activation computes ``O = f(S)`` and ``f'(S)``; the derivative may use the already
computed output ``O`` (tanh' = 1 - O², logistic' = O(1 - O)), which is cheaper than
recomputing from ``S``.
"""

from __future__ import annotations

import torch


class Activation:
    """A pointwise transfer function ``f`` with derivative ``f'``."""

    name: str = ""

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def derivative(self, S: torch.Tensor, O: torch.Tensor) -> torch.Tensor:
        """``f'(S)``, given ``S`` and ``O = f(S)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    name = "identity"

    def __call__(self, S):
        return S

    def derivative(self, S, O):
        return torch.ones_like(S)


class Logistic(Activation):
    name = "logistic"

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

    def __call__(self, S):
        if S.requires_grad:  # keep autograd usable (reference gradients in tests)
            return torch.tanh(S)
        O = torch.sigmoid(S * 2.0)
        return O.mul_(2.0).sub_(1.0)

    def derivative(self, S, O):
        return 1.0 - O * O


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
