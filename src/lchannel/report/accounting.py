"""The learning channel's cost in multiplications per example (paper 1, section 3.1).

BP and RBP multiply every forward-sized feedback weight once per example:

    W  = Σ_{k=0}^{L-1} N_k N_{k+1}                      (eq. 14)

SRBP sends the N_L output errors straight to every hidden layer:

    W' = N_L Σ_{k=1}^{L-1} N_k                          (eq. 15)

:func:`channel_cost` also reports what a given channel actually spends carrying signals
to the hidden layers: one multiplication per feedback weight on every route h ← k of its
topology (``channel.routes``), counting

- chain (BP, SBP, RBP): N_h N_{h+1} per hidden layer — eq. 14 without the N_0 N_1 term,
  since no signal is sent below layer 1; skip (SRBP): exactly eq. 15; mixed: the chain
  term for chained layers and N_h N_L for skip layers; cascade: N_h N_k for every k > h;
  top-layer-only: 0;
- sparse (0,1) feedback ("Sparse-n"): only the non-zero weights, n N_k expected per route;
- K feedback samples (section 6.1): K times the single channel;
- per-synapse feedback (section 4.2 item 7): N_h N_k weights for each of the N_{h-1}
  synapses of a neuron (N_{h-1} times the per-neuron cost), plus the per-neuron matrices
  of the layers that relay a signal further down the chain.

Biases (a unit clamped to one) and the multiplications by f' are left out, as in eq. 14
(they do not change the scaling).  For conv nets (``sizes`` a ``LayerSizes``) a chained
route into a conv block counts the transposed convolution's multiplications,
C_out·H'·W'·C_in·K·K per example (times the density for sparse kernels), see
docs/channels.md.  ARBP/ASRBP also spend one multiplication per feedback
weight and example adapting the channel (reported separately).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..channels import build_channel


def eq14_W(sizes: list[int]) -> int:
    """W = Σ N_k N_{k+1}: the number of forward weights (eq. 14).  For a block (conv)
    network (``sizes`` a :class:`~lchannel.engine.architecture.LayerSizes`) the multiplications
    per example of its forward blocks, Σ_h C_out·H'·W'·C_in·K·K (conv) or N_in·N_out
    (dense): what eq. 14 counts for dense layers, where every weight is used once."""
    blocks = getattr(sizes, "weighted", None)
    if blocks is not None:
        return sum(b.multiplications for b in blocks)
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def eq15_W_prime(sizes: list[int]) -> int:
    """W' = N_L Σ_{k=1}^{L-1} N_k (eq. 15)."""
    return sizes[-1] * sum(sizes[1:-1])


@dataclass
class ChannelCost:
    sizes: list[int]
    algorithm: str
    W: int  # eq. 14
    W_prime: int  # eq. 15
    channel_mults: int  # multiplications by feedback weights per example for this channel
    adapt_mults: int = 0  # multiplications per example adapting the channel (ARBP/ASRBP)

    def describe(self) -> str:
        adapt = f" + {self.adapt_mults:,} adapting it" if self.adapt_mults else ""
        return (f"{self.channel_mults:,} multiplications/example in the channel{adapt} "
                f"(eq. 14 W = {self.W:,}; eq. 15 W' = {self.W_prime:,})")


def channel_cost(sizes: list[int], algorithm: str, options: dict | None = None) -> ChannelCost:
    """Eq. 14, eq. 15, and the feedback multiplications per example of ``algorithm`` with
    its channel ``options`` (the same names as :func:`lchannel.channels.build_channel`)."""
    if not getattr(sizes, "is_conv", False):  # a LayerSizes (conv net) keeps its pieces
        sizes = [int(n) for n in sizes]
    channel = build_channel(algorithm, **dict(options or {}))
    channel.check(sizes)
    return ChannelCost(sizes, algorithm, eq14_W(sizes), eq15_W_prime(sizes),
                       int(round(channel.feedback_multiplications(sizes))),
                       int(round(channel.adaptation_multiplications(sizes))))
