"""Per-synapse learning signals (paper 1, section 4.2 item 7).

In every channel of eq. 13 a hidden neuron receives one signal ``I^h_i`` and all its
incoming synapses use it.  The per-synapse variant sends a *different* random feedback
weight to every synapse instead:

    ΔW^h_ij = η f'(S^h_i) Σ_{k ∈ sources(h)} Σ_m c^{h,k}_{imj} G^k_m O^{h-1}_j

(for SRBP, G^L = T − O: ΔW^h_ij = η f'_i Σ_m c^h_{imj} (T − O)_m O^{h-1}_j), and the bias,
the weight of a unit clamped to one, gets its own ``c^{h,k}_{im,bias}``.  This is not a
per-neuron signal, so it cannot travel as ``I^h``; a :class:`SynapseSignal` stands in the
signal list at layer h and carries its rule, :class:`lchannel.engine.plasticity.PerSynapse`,
which the optimizer applies to it (``SGD.rule_for``).
"""

from __future__ import annotations

import torch

from ..engine.plasticity import PER_SYNAPSE, quantizer
from ..engine.quantize import DEFAULT_READING, UPDATE_ALPHA, Reading


class SynapseSignal:
    """The learning signal of one layer under per-synapse feedback.

    parts: ``[(G, Cw, Cb), ...]``, one per source layer k: ``G`` the source signal
        ``(E, B, N_k)``, ``Cw`` the per-synapse feedback ``(E, N_h, N_k, N_{h-1})``,
        ``Cb`` the bias synapses' feedback ``(E, N_h, N_k)``.
    fprime: ``f'(S^h)`` of shape ``(E, B, N_h)``, or None (derivative ``none``).
    """

    def __init__(self, parts: list, fprime: torch.Tensor | None):
        self.parts = parts
        self.fprime = fprime

    @property
    def shape(self) -> tuple:
        G, Cw, _ = self.parts[0]
        return (G.shape[0], G.shape[1], Cw.shape[1])

    rule = PER_SYNAPSE  # the optimizer applies this rule to the signal, not post ⊗ pre

    def postsynaptic(self, G: torch.Tensor) -> torch.Tensor:
        """``X_{bim} = f'_{bi} G_{bm}``, shape ``(E, B, N_h, N_k)``."""
        E, B, n_k = G.shape
        n_h = self.shape[2]
        if self.fprime is None:
            return G.unsqueeze(2).expand(E, B, n_h, n_k)
        return self.fprime.unsqueeze(3) * G.unsqueeze(2)

    def direction(self, O: torch.Tensor, lr: float, update_bits: int | None = None,
                  update_alpha: float = UPDATE_ALPHA,
                  reading: Reading = DEFAULT_READING) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔW^h, Δb^h)/η for presynaptic activity ``O`` ``(E, B, N_{h-1})`` under
        :class:`~lchannel.engine.plasticity.PerSynapse`, quantized per example with eq. 19 in
        ``reading`` of section 5.2 when ``update_bits`` is set."""
        per_example = None if update_bits is None else quantizer(update_alpha, update_bits, reading)
        return self.rule.direction(self, O, None, per_example, lr)

    def __repr__(self) -> str:
        return f"SynapseSignal(E={self.shape[0]}, B={self.shape[1]}, N_h={self.shape[2]}, sources={len(self.parts)})"
