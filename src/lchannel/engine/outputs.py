"""Output non-linearity + loss pairs, each giving the top error signal of eq. 5/8.

For the three canonical pairs the derivative of the loss with respect to the output
pre-activation is the same simple expression (paper 1, eq. 5):

    B^L = -∂E/∂S^L = T − O^L

softmax + cross-entropy, logistic + binary cross-entropy and identity + squared error.
Losses are averaged over the minibatch (the papers' Keras convention), so updates use
the minibatch mean of the per-example updates.
"""

from __future__ import annotations

import torch

from .activations import Activation, get_activation


class OutputLoss:
    """An output activation paired with the loss whose error signal is ``T − O``."""

    name: str = ""
    activation: str = ""

    #: whether the forward pass should hand :meth:`activate_transposed` ``(S^L)ᵀ``
    #: (units along rows): worth it when the activation works across units.
    prefers_transposed: bool = False

    def activate(self, S: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def activate_transposed(self, St: torch.Tensor) -> torch.Tensor:
        """``O^L`` (shape ``(..., B, N_L)``) from ``St = (S^L)ᵀ`` of shape ``(..., N_L, B)``."""
        return self.activate(St.transpose(-1, -2))

    def error(self, T: torch.Tensor, O: torch.Tensor) -> torch.Tensor:
        """The top error signal ``T − O`` (eq. 5, 8): minus the loss gradient w.r.t. S^L."""
        return T - O

    def loss(self, O: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """Per-example loss summed over output units, shape ``O.shape[:-1]``."""
        raise NotImplementedError

    def predict(self, O: torch.Tensor) -> torch.Tensor:
        """Class predictions: argmax for several units, ``O > 0.5`` for a single unit."""
        if O.shape[-1] == 1:
            return (O[..., 0] > 0.5).long()
        return O.argmax(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(OutputLoss):
    name = "softmax"
    activation = "softmax"

    # A softmax over 10 contiguous units per example vectorises poorly on CPU (~3x the
    # time of the same softmax taken down columns of (S^L)ᵀ, examples contiguous).
    prefers_transposed = True

    def activate(self, S):
        return torch.softmax(S, dim=-1)

    def activate_transposed(self, St):
        return torch.softmax(St, dim=-2).transpose(-1, -2)

    def loss(self, O, T):
        return -(T * torch.log(O.clamp_min(1e-30))).sum(-1)


class LogisticBinaryCrossEntropy(OutputLoss):
    name = "logistic"
    activation = "logistic"

    def activate(self, S):
        return torch.sigmoid(S)

    def loss(self, O, T):
        O = O.clamp(1e-7, 1 - 1e-7)
        return -(T * torch.log(O) + (1 - T) * torch.log1p(-O)).sum(-1)


class IdentitySquaredError(OutputLoss):
    name = "identity"
    activation = "identity"

    def activate(self, S):
        return S

    def loss(self, O, T):
        return 0.5 * ((T - O) ** 2).sum(-1)


OUTPUTS: dict[str, type[OutputLoss]] = {
    c.name: c for c in (SoftmaxCrossEntropy, LogisticBinaryCrossEntropy, IdentitySquaredError)
}


def get_output(name: str | OutputLoss) -> OutputLoss:
    """The output pair called ``name``: softmax (+ cross-entropy), logistic (+ binary
    cross-entropy) or identity (+ squared error)."""
    if isinstance(name, OutputLoss):
        return name
    try:
        return OUTPUTS[name]()
    except KeyError:
        raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {name!r}") from None


class OutputActivation(Activation):
    """The output layer's transfer function, taken from the output pair."""

    def __init__(self, pair: OutputLoss):
        self.pair = pair
        self.name = pair.activation
        self._f = get_activation("logistic" if pair.activation == "logistic" else "identity")

    def __call__(self, S):
        return self.pair.activate(S)

    def derivative(self, S, O):
        # The output pairs fold f' of the top layer into T − O (eq. 5); never used there.
        return self._f.derivative(S, O)
