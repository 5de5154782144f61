"""Transfer functions f of the forward channel (paper 1, eq. 2) and their derivatives f'.

Each activation computes ``O = f(S)`` and ``f'(S)``; the derivative may use the already
computed output ``O`` (tanh' = 1 - O², logistic' = O(1 - O)), which is cheaper than
recomputing from ``S``.  One object per transfer function holds everything the toolkit
needs of it: value and derivative (the dense engine's forms), single-kernel forms for
feature maps (:meth:`Activation.fused`, :meth:`Activation.fused_`,
:meth:`Activation.fused_times_derivative`), the change f(x + y) − f(x) without
cancellation (:meth:`Activation.change`, the STDP-like rule), and the ``torch.nn`` module
of an exported network (:attr:`Activation.torch_module`).
"""

from __future__ import annotations

import torch
from torch import nn


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

    # -- single-kernel forms (conv feature maps) ----------------------------------------
    # On feature maps the size of paper 1's CIFAR net one ATen kernel beats the dense
    # engine's forms (tanh 70 vs 107 ms, tanh' ⊙ J 47 vs 91 ms on 128×64×32×32, one
    # thread).  ``fused_derivative``: f' ⊙ J comes from O alone in one kernel.
    fused_derivative = False

    def fused(self, S: torch.Tensor) -> torch.Tensor:
        """``f(S)`` in one kernel where there is one (else :meth:`__call__`)."""
        return self(S)

    def fused_(self, S: torch.Tensor) -> torch.Tensor | None:
        """``f(S)`` in place in ``S``, or None where there is no in-place kernel."""
        return None

    def fused_times_derivative(self, J: torch.Tensor, O: torch.Tensor) -> torch.Tensor:
        """``J ⊙ f'(S)`` from ``O = f(S)`` in one kernel (when ``fused_derivative``)."""
        raise NotImplementedError

    def change(self, x: torch.Tensor, O: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``f(x + y) − f(x)`` given ``O = f(x)``; subclasses avoid the cancellation of the
        plain difference when y is small."""
        return self(x + y) - O

    torch_module = nn.Identity  # the module of an exported network (a class or factory)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    name = "identity"
    fused_derivative = True
    torch_module = nn.Identity

    def __call__(self, S):
        return S

    def derivative(self, S, O):
        return torch.ones_like(O)

    def times_derivative(self, J, S, O):
        return J

    def fused_(self, S):
        return S

    def fused_times_derivative(self, J, O):
        return J

    def change(self, x, O, y):
        return y


class Logistic(Activation):
    name = "logistic"
    uses_S = False
    fused_derivative = True
    torch_module = nn.Sigmoid

    def __call__(self, S):
        return torch.sigmoid(S)

    def derivative(self, S, O):
        return O * (1.0 - O)

    def fused_(self, S):
        return torch.sigmoid_(S)

    def fused_times_derivative(self, J, O):
        return torch.ops.aten.sigmoid_backward(J, O)  # J ⊙ O(1 − O)

    def change(self, x, O, y):
        # σ(x + y) − σ(x) = O(1 − O)(e^y − 1)/(1 + O(e^y − 1))
        m = torch.expm1(y)
        return O * (1 - O) * m / (1 + O * m)


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

    fused_derivative = True
    torch_module = nn.Tanh

    def fused(self, S):
        return torch.tanh(S)  # one pass, where the dense engine's 2σ(2S) − 1 takes three

    def fused_(self, S):
        return torch.tanh_(S)

    def fused_times_derivative(self, J, O):
        return torch.ops.aten.tanh_backward(J, O)  # J ⊙ (1 − O²)

    def change(self, x, O, y):
        # tanh(x + y) − tanh(x) = tanh(y)(1 − O²)/(1 + O tanh(y))
        t = torch.tanh(y)
        return t * (1 - O * O) / (1 + O * t)


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
    fused_derivative = True
    torch_module = nn.ReLU

    def __call__(self, S):
        return torch.relu(S)

    def derivative(self, S, O):
        return (S > 0).to(S.dtype)

    def fused_(self, S):
        return torch.relu_(S)

    def fused_times_derivative(self, J, O):
        return torch.ops.aten.threshold_backward(J, O, 0)  # J where S > 0 (O > 0 iff S > 0)


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
