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

A **rule** turns a (post, pre) pair into a weight change (:mod:`.rules`: Hebbian, per
synapse, STDP-like; their names are importable from here too).  The one optimizer,
:class:`SGD`, applies a rule to any parameter: the forward blocks' weights (schedule,
momentum, quantized updates, frozen layers, per-member stop) and the learning channel's
own matrices (schedule only: the papers adapt them without momentum or
quantization), which the channel lists in ``LearningChannel.plasticity_terms``.  Feedback
matrices are state of the channel; the optimizer updates them but keeps no state for them.
"""

from __future__ import annotations

import torch

from .blocks import Dense
from .quantize import DEFAULT_READING, UPDATE_ALPHA, MemberQuantizer, Quantizer, Reading
# Re-exported: the rules are imported from here by the learning channels.
from .rules import (HEBBIAN, PER_SYNAPSE, RULES, STDP, STDP_RULE, Hebbian, KernelRule, PerSynapse,  # noqa: F401
                    Phases, apply_term, get_rule, member_runs)

# How Dense sums quantized per-example updates: "factored" (exact, fast) or "loop" (the
# per-example reference); a module switch so that benchmarks and tests can select it.
QUANTIZED_UPDATE_METHOD = "factored"


def quantizer(alpha: float, bits: int, reading: Reading = DEFAULT_READING) -> Quantizer:
    """Eq. 19 as an in-place map on each example's update (section 5.2), with the
    factored minibatch sum of :class:`~lchannel.engine.quantize.Quantizer`."""
    return Quantizer(alpha, bits, QUANTIZED_UPDATE_METHOD, reading)


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
    update_reading: which reading of section 5.2 (:class:`~lchannel.engine.quantize.Reading`:
        η inside or outside eq. 19, a zero level or not, mean or sum over the minibatch).
    rule: the rule of the forward weights (:data:`HEBBIAN`, eq. 13); a signal that
        carries its own ``rule`` (per-synapse feedback) uses that one.

    The defaults are those of the CLI and :class:`~lchannel.run.config.TrainConfig`
    (decay 1e-6, paper 1 section 4.1).

    Per-member learning rates (populations across variants): ``lr`` may be a list of one
    η_0 per member.  Members with equal rates are updated together, each contiguous group
    of members with the same η_0 by the same fused product a population with that rate
    makes (``W[a:b] += η_t/B · I[a:b]ᵀ O[a:b]``, eq. 13): member e is bit-identical to
    member e of the population of the same size whose members all have its rate.  A list whose rates are all equal is the scalar case.
    Per-member rates need dense blocks, the Hebbian rule on per-neuron signals and no
    quantized updates (:meth:`bind` refuses others).
    """

    def __init__(self, lr: float | list[float] = 0.1, decay: float = 1e-6, momentum: float = 0.0,
                 frozen=(), update_bits: int | None = None, update_alpha: float = UPDATE_ALPHA,
                 rule: Hebbian = HEBBIAN, update_reading: Reading = DEFAULT_READING):
        rates = [lr] if isinstance(lr, (int, float)) else list(lr)
        if not rates or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rates):
            raise ValueError(f"lr must be a number > 0 or a non-empty list of them (one per member), got {lr!r}")
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        bits = None if update_bits is None else [update_bits] if isinstance(update_bits, (int, float)) \
            else list(update_bits)
        if bits is not None and (not bits or any(isinstance(b, bool) or not isinstance(b, (int, float))
                                                 or int(b) != b or b < 1 for b in bits)):
            raise ValueError(f"update_bits must be an integer >= 1, None, or a list of integers >= 1 (one per "
                             f"member), got {update_bits!r}")
        if not update_alpha > 0:
            raise ValueError(f"update_alpha must be > 0, got {update_alpha}")
        # Equal rates are the scalar case (the fused whole-population path, unchanged).
        uniform = all(r == rates[0] for r in rates)
        self.lr = float(rates[0])
        self.member_lr: list[float] | None = None if uniform else [float(r) for r in rates]
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.frozen = sorted({int(h) for h in frozen})
        # update_bits: the number of bits (int), or one per member when they differ
        # (populations across variants; quantize.MemberQuantizer).
        self.update_bits = None if bits is None else int(bits[0]) if all(b == bits[0] for b in bits) \
            else [int(b) for b in bits]
        self.update_alpha = float(update_alpha)
        self.update_reading = update_reading
        self.rule = rule
        self.t = 0
        self.net = None
        self.member_scale: torch.Tensor | None = None  # per-member lr factor (0 stops a member)
        self.velocity: list | None = None

    def bind(self, net) -> "SGD":
        bad = [h for h in self.frozen if not 1 <= h <= net.L]
        if bad:
            raise ValueError(f"frozen layers must be in 1..{net.L}, got {bad}")
        if isinstance(self.update_bits, list) and len(self.update_bits) != net.E:
            raise ValueError(f"update_bits: {len(self.update_bits)} per-member values for a population of "
                             f"{net.E} members")
        if self.member_lr is not None:
            if len(self.member_lr) != net.E:
                raise ValueError(f"lr: {len(self.member_lr)} per-member rates for a population of {net.E} members")
            if self.update_bits is not None or type(self.rule) is not Hebbian or \
                    any(type(net.block(h)) is not Dense for h in range(1, net.L + 1)):
                raise ValueError("lr: per-member learning rates need dense layers, the Hebbian rule and no "
                                 "quantized updates (update_bits)")
        self.net = net
        if self.momentum > 0:
            self.velocity = [(torch.zeros_like(W), torch.zeros_like(b)) for W, b in zip(net.weights, net.biases)]
        return self

    def lr_now(self) -> float | list[float]:
        """η_t = η_0 / (1 + decay·t); with per-member rates, the list of every member's."""
        if self.member_lr is not None:
            return [r / (1.0 + self.decay * self.t) for r in self.member_lr]
        return self.lr / (1.0 + self.decay * self.t)

    def member_rates(self) -> list[float]:
        """η_t of every member (the scalar repeated when the rates are uniform)."""
        r = self.lr_now()
        return r if isinstance(r, list) else [r] * self.net.E

    def lr_groups(self) -> list[tuple[int, int, float]]:
        """``(start, stop, η_t)`` of every contiguous run of members with one rate."""
        return member_runs(self.member_rates())

    def stop_member(self, e: int) -> None:
        """Freeze member e (used when it diverges) without touching the others."""
        if self.member_scale is None:
            self.member_scale = torch.ones(self.net.E, dtype=self.net.dtype, device=self.net.device)
        self.member_scale[e] = 0.0

    def rule_for(self, I):
        """The rule that turns layer signal ``I`` into a weight change: the signal's own
        (per-synapse feedback) or the optimizer's."""
        return getattr(I, "rule", self.rule)

    def direction(self, I, O: torch.Tensor, lr: float, h: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔW, Δb)/η for one layer: the minibatch mean of the rule's update for post ``I``
        and pre ``O`` (quantized per example when ``update_bits`` is set), in the layout
        of layer h's block (:class:`~lchannel.engine.blocks.dense.Dense` when h is None)."""
        block = Dense if h is None else self.net.block(h)
        return self.rule_for(I).direction(I, O, block, self._per_example(), lr)

    def _per_example(self):
        """Eq. 19 applied in place to each example's update, or None."""
        if isinstance(self.update_bits, list):
            return MemberQuantizer(self.update_alpha, self.update_bits, QUANTIZED_UPDATE_METHOD, self.update_reading)
        return None if self.update_bits is None else quantizer(self.update_alpha, self.update_bits,
                                                               self.update_reading)

    @torch.no_grad()
    def step(self, record, signals: list, channel_terms=()) -> None:
        """Apply ΔW^h = η_t I^hᵀ O^{h-1} / B to every layer that has a signal, then the
        channel's own updates ``channel_terms`` (``(P, rule, post, pre, rate)`` from
        ``LearningChannel.plasticity_terms``: P += η_t·rate·rule(post, pre))."""
        if self.member_lr is not None:
            return self._step_groups(record, signals, channel_terms)
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
            if fast:
                self.rule_for(I).apply_block_(block, I, O, lr)
                continue
            dW, db = self._scaled(h, *self.direction(I, O, lr, h))
            block.add_(dW, db, alpha=lr)
        for P, rule, post, pre, rate in channel_terms:
            apply_term(rule, P, post, pre, lr, rate)
        self.t += 1

    def _scaled(self, h: int, dW: torch.Tensor, db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer h's direction through momentum (v ← μ v + d) and the per-member stop."""
        if self.velocity is not None:
            vW, vb = self.velocity[h - 1]
            vW.mul_(self.momentum).add_(dW)
            vb.mul_(self.momentum).add_(db)
            dW, db = vW, vb
        if self.member_scale is not None:
            E = self.net.E
            dW = dW * self.member_scale.view(E, *[1] * (dW.dim() - 1))  # (E, 1, 1) or a conv kernel's
            db = db * self.member_scale.view(E, 1)
        return dW, db

    def _step_groups(self, record, signals: list, channel_terms) -> None:
        """:meth:`step` with per-member rates: each group of members with one rate gets
        the arithmetic of a population with its rate on its slice of the population
        (bit-identical on the fused path; with momentum or a stopped member the element-wise
        add on a slice may round its last elements differently, see docs/experiments.md)."""
        net = self.net
        E = net.E
        groups = self.lr_groups()
        fast = self.momentum == 0 and self.member_scale is None
        for h in range(1, net.L + 1):
            I = signals[h]
            if I is None or h in self.frozen:
                continue
            if not isinstance(I, torch.Tensor) or getattr(I, "rule", self.rule) is not self.rule:
                raise ValueError("lr: per-member learning rates need per-neuron signals (not per-synapse feedback)")
            block = net.block(h)
            O = record.presynaptic(h, E)
            if fast:
                for a, z, lr in groups:
                    block.apply_update_members_(I, O, lr, slice(a, z))
                continue
            dW, db = self._scaled(h, *self.direction(I, O, 1.0, h))
            for a, z, lr in groups:
                block.add_members_(dW, db, lr, slice(a, z))
        for P, rule, post, pre, rate in channel_terms:
            if not (isinstance(post, torch.Tensor) and isinstance(pre, torch.Tensor)):
                raise ValueError("lr: per-member learning rates need tensor plasticity terms (not the STDP rule)")
            rates = rate if isinstance(rate, list) else [rate] * E
            for a, z, (lr, r) in member_runs(list(zip(self.member_rates(), rates))):
                rule.apply_(P[a:z], post[a:z], pre[a:z], lr * r)
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
