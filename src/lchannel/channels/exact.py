"""The exact channels: the error travels back through the forward weights themselves
(paper 1, sections 2-3): BP (eq. 3-5), skipped BP, and top-layer-only (no channel).

The random channels, which replace those weights by random matrices, are in
:mod:`lchannel.channels.algorithms`.
"""

from __future__ import annotations

from .base import LearningChannel
from .routes import Adjoint


class Backprop(LearningChannel):
    """Standard backpropagation (BP), eq. 3-5: B^h = f'(S^h) ⊙ (W^{h+1})ᵀ B^{h+1}."""

    name = "bp"
    default_derivative = "all"

    def sources(self, h):
        return [h + 1]

    def route(self, h, k):
        # J^h = G^{h+1} W^{h+1}: the forward block's adjoint.
        return self._adjoints[k]

    def init_state(self):
        self._adjoints = {k: Adjoint(self.net.block(k)) for k in range(2, self.net.L + 1)}


class SkippedBackprop(Backprop):
    """Skipped BP (SBP, paper 1 section 3): the signal of layer h is
    f'(S^h) ⊙ (W^{h+1})ᵀ…(W^L)ᵀ (T − O): the product of the transposed forward matrices
    above h, without the upper derivatives; the local derivative is kept.

    Computed as BP's chain with the derivative applied only where the signal is used,
    which is the same product, evaluated right to left.
    """

    name = "sbp"
    default_derivative = "local"

    def __init__(self, derivative=None, transforms=None):
        if derivative == "all":
            raise ValueError("SkippedBackprop with derivative='all' is Backprop; use Backprop instead")
        super().__init__(derivative, transforms)


class TopLayerOnly(LearningChannel):
    """Only the top layer learns (its update is BP's, Fact 1); deeper layers stay fixed."""

    name = "top"
    default_derivative = "none"

    def __init__(self, derivative=None, transforms=None):
        # No signal reaches a hidden layer: a derivative policy or a signal transform would
        # be silently ignored, so they are refused.
        given = [k for k, v in (("derivative", derivative), ("transforms", transforms)) if v]
        if given:
            raise ValueError(f"channel: {given} do not apply to 'top' (top-layer-only): no signal reaches the "
                             f"hidden layers, so there is no derivative or signal to transform")
        super().__init__()

    def routes(self, L):
        return {}

    def sources(self, h):
        return []

