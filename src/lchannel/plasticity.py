"""Plasticity: turning learning signals into weight changes.

For every trainable layer the update has the local multiplicative form of paper 1,
eq. 13, averaged over the minibatch of size B:

    ΔW^h = η_t · (1/B) Σ_b I^h_b (O^{h-1}_b)ᵀ,        Δb^h = η_t · (1/B) Σ_b I^h_b

(the bias is the weight of a unit clamped to one), with the papers' schedule
η_t = η_0 / (1 + decay·t), t counting updates, and optional momentum μ
(v ← μ v + ΔW/η_t, W ← W + η_t v).

Quantized weight updates (paper 1, section 5.2) apply Quantize_{α,bits} (eq. 19) to each
example's update η_t I_b O_bᵀ (and η_t I_b for the bias) before the minibatch average;
the paper uses α = 2⁻⁶.  Frozen layers (section 4.2 item 4) never change, while the
learning channel still carries signals through them.

The optimizer never sees the learning channel's own weights: those are the channel's
state (adaptive channels update them in ``LearningChannel.adapt``).
"""

from __future__ import annotations

import torch

from .blocks import Dense
from .channels.transforms import quantize_


def hebbian_feedback_update(C: torch.Tensor, O_h: torch.Tensor, I_k: torch.Tensor, eta: float) -> None:
    """Adapt a feedback matrix in place: ΔC^{h,k} = η_c (O^h)ᵀ I^k / B (ARBP/ASRBP, paper 1
    section 3; paper 2 eq. 124).  ``C`` is ``(E, N_h, N_k)``, ``O_h`` ``(E, B, N_h)``, ``I_k``
    ``(E, B, N_k)``.  For k = h+1 and η_c = η this is exactly (ΔW^{h+1})ᵀ (paper 2, Theorem 7):
    the forward channel is the learning channel of the feedback weights."""
    C.baddbmm_(O_h.transpose(1, 2), I_k, alpha=eta / O_h.shape[1])


class SGD:
    """Minibatch SGD with the 1/(1 + decay·t) schedule and optional momentum.

    Parameters
    ----------
    lr: initial learning rate η_0 (> 0).
    decay: schedule decay (>= 0): η_t = η_0 / (1 + decay·t).
    momentum: μ in [0, 1).
    frozen: layers (1-based) that never change (paper 1, section 4.2 item 4).
    update_bits, update_alpha: quantize each example's update with eq. 19 (section 5.2;
        the paper uses α = 2⁻⁶); ``update_bits=None`` disables it.
    """

    def __init__(self, lr: float = 0.1, decay: float = 0.0, momentum: float = 0.0,
                 frozen=(), update_bits: int | None = None, update_alpha: float = 2.0 ** -6):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if update_bits is not None and (int(update_bits) != update_bits or update_bits < 1):
            raise ValueError(f"update_bits must be an integer >= 1 or None, got {update_bits!r}")
        if not update_alpha > 0:
            raise ValueError(f"update_alpha must be > 0, got {update_alpha}")
        self.lr = float(lr)
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.frozen = sorted({int(h) for h in frozen})
        self.update_bits = None if update_bits is None else int(update_bits)
        self.update_alpha = float(update_alpha)
        self.t = 0
        self.net = None
        self.member_scale: torch.Tensor | None = None  # per-member lr factor (0 stops a member)
        self.velocity: list | None = None

    def bind(self, net) -> "SGD":
        bad = [h for h in self.frozen if not 1 <= h <= net.L]
        if bad:
            raise ValueError(f"frozen layers must be in 1..{net.L}, got {bad}")
        self.net = net
        if self.momentum > 0:
            self.velocity = [(torch.zeros_like(W), torch.zeros_like(b)) for W, b in zip(net.weights, net.biases)]
        return self

    def lr_now(self) -> float:
        """η_t = η_0 / (1 + decay·t)."""
        return self.lr / (1.0 + self.decay * self.t)

    def stop_member(self, e: int) -> None:
        """Freeze member e (used when it diverges) without touching the others."""
        if self.member_scale is None:
            self.member_scale = torch.ones(self.net.E, dtype=self.net.dtype, device=self.net.device)
        self.member_scale[e] = 0.0

    def direction(self, I: torch.Tensor, O: torch.Tensor, lr: float, h: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔW, Δb)/η for one layer: the minibatch mean of I_b O_bᵀ (quantized per example
        when ``update_bits`` is set), computed by layer h's block (by
        :meth:`Dense.weight_update` when h is None).  A per-synapse signal
        (``channels.SynapseSignal``, paper 1 section 4.2 item 7) is not a per-neuron I^h;
        it gives the direction itself."""
        if not isinstance(I, torch.Tensor):
            return I.direction(O, lr, self.update_bits, self.update_alpha)
        update = Dense.weight_update if h is None else self.net.block(h).weight_update
        return update(I, O, self._per_example(), lr)

    def _per_example(self):
        """Eq. 19 applied in place to each example's update, or None."""
        if self.update_bits is None:
            return None
        alpha, bits = self.update_alpha, self.update_bits
        return lambda u: quantize_(u, alpha, bits)

    @torch.no_grad()
    def step(self, record, signals: list) -> None:
        """Apply ΔW^h = η_t I^hᵀ O^{h-1} / B to every layer that has a signal."""
        net = self.net
        lr = self.lr_now()
        E = net.E
        fast = self.momentum == 0 and self.member_scale is None and self.update_bits is None
        for h in range(1, net.L + 1):
            I = signals[h]
            if I is None or h in self.frozen:
                continue
            block = net.block(h)
            O = record.presynaptic(h, E)
            if fast and isinstance(I, torch.Tensor):  # else a SynapseSignal: see direction()
                block.apply_update_(I, O, lr)
                continue
            dW, db = self.direction(I, O, lr, h)
            if self.velocity is not None:
                vW, vb = self.velocity[h - 1]
                vW.mul_(self.momentum).add_(dW)
                vb.mul_(self.momentum).add_(db)
                dW, db = vW, vb
            if self.member_scale is not None:
                dW = dW * self.member_scale.view(E, 1, 1)
                db = db * self.member_scale.view(E, 1)
            block.add_(dW, db, alpha=lr)
        self.t += 1

    def state_dict(self) -> dict:
        return {
            "t": self.t,
            "member_scale": None if self.member_scale is None else self.member_scale.clone(),
            "velocity": None if self.velocity is None else [(v.clone(), u.clone()) for v, u in self.velocity],
        }

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self.member_scale = state.get("member_scale")
        if state.get("velocity") is not None and self.velocity is not None:
            for (v, u), (sv, su) in zip(self.velocity, state["velocity"]):
                v.copy_(sv)
                u.copy_(su)
