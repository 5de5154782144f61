"""Per-synapse learning signals (paper 1, section 4.2 item 7).

In every channel of eq. 13 a hidden neuron receives one signal ``I^h_i`` and all its
incoming synapses use it.  The per-synapse variant sends a *different* random feedback
weight to every synapse instead:

    ΔW^h_ij = η f'(S^h_i) Σ_{k ∈ sources(h)} Σ_m c^{h,k}_{imj} G^k_m O^{h-1}_j

(for SRBP, G^L = T − O: ΔW^h_ij = η f'_i Σ_m c^h_{imj} (T − O)_m O^{h-1}_j), and the bias,
the weight of a unit clamped to one, gets its own ``c^{h,k}_{im,bias}``.  This is not a
per-neuron signal, so it cannot travel as ``I^h``; a :class:`SynapseSignal` stands in the
signal list at layer h and :class:`lchannel.plasticity.SGD` asks it for the layer's
weight direction directly (``SGD.direction``).

The minibatch mean is computed without forming the ``(B, N_h, N_{h-1}, N_k)`` tensor of
per-example, per-source terms:

    ΔW^h_ij / η = Σ_m c_{imj} M_{imj},   M_{imj} = (1/B) Σ_b (f'_{bi} G_{bm}) O_{bj}

where M is one batched matrix product of shape ``(N_h·N_k) × B × N_{h-1}``.  Quantized
updates (section 5.2) need the per-example updates and form ``(B, N_h, N_{h-1})``.
"""

from __future__ import annotations

import torch

from .transforms import quantize


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

    def _postsynaptic(self, G: torch.Tensor) -> torch.Tensor:
        """``X_{bim} = f'_{bi} G_{bm}``, shape ``(E, B, N_h, N_k)``."""
        E, B, n_k = G.shape
        n_h = self.shape[2]
        if self.fprime is None:
            return G.unsqueeze(2).expand(E, B, n_h, n_k)
        return self.fprime.unsqueeze(3) * G.unsqueeze(2)

    def direction(self, O: torch.Tensor, lr: float, update_bits: int | None = None,
                  update_alpha: float = 2.0 ** -6) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔW^h, Δb^h)/η for presynaptic activity ``O`` ``(E, B, N_{h-1})``: the minibatch
        mean, quantized per example with eq. 19 when ``update_bits`` is set."""
        E, B, n_in = O.shape
        dW = db = None
        per_W = per_b = None
        for G, Cw, Cb in self.parts:
            X = self._postsynaptic(G)  # (E, B, N_h, N_k)
            n_h, n_k = X.shape[2], X.shape[3]
            if update_bits is None:
                M = torch.bmm(X.reshape(E, B, n_h * n_k).transpose(1, 2), O).view(E, n_h, n_k, n_in)
                w = (M * Cw).sum(2).div_(B)
                b = (X.sum(1) * Cb).sum(2).div_(B)
                dW = w if dW is None else dW.add_(w)
                db = b if db is None else db.add_(b)
            else:
                # Per-example: u_{bij} = Σ_m X_{bim} c_{imj} O_{bj}.
                s = torch.einsum("ebim,eimj->ebij", X, Cw) * O.unsqueeze(2)
                sb = (X * Cb.unsqueeze(1)).sum(3)
                per_W = s if per_W is None else per_W.add_(s)
                per_b = sb if per_b is None else per_b.add_(sb)
        if update_bits is None:
            return dW, db
        dW = quantize(per_W * lr, update_alpha, update_bits).mean(1) / lr
        db = quantize(per_b * lr, update_alpha, update_bits).mean(1) / lr
        return dW, db

    def __repr__(self) -> str:
        return f"SynapseSignal(E={self.shape[0]}, B={self.shape[1]}, N_h={self.shape[2]}, sources={len(self.parts)})"
