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

A **rule** turns a (post, pre) pair into a weight change: :class:`Hebbian` is
``post ⊗ pre`` (the forward rule of eq. 13, and ARBP/ASRBP's adaptation of the feedback
matrices), :class:`PerSynapse` the per-synapse variant of section 4.2 item 7, :class:`STDP`
the STDP-like rule of paper 2 section 3.6, ``ΔO_post ⊗ O_pre`` with the change ΔO of the
postsynaptic activity between two feedback phases (:class:`Phases`, eq. 13-19).  The one
optimizer, :class:`SGD`, applies a rule to any parameter: the forward blocks' weights
(schedule, momentum, quantized updates, frozen layers, per-member stop) and the learning
channel's own matrices (schedule only: the papers adapt them without momentum or
quantization), which the channel lists in ``LearningChannel.plasticity_terms``.  Feedback
matrices are state of the channel; the optimizer updates them but keeps no state for them.
"""

from __future__ import annotations

import torch

from .blocks import Dense
from .quantize import DEFAULT_READING, UPDATE_ALPHA, MemberQuantizer, Quantizer, Reading

# How Dense sums quantized per-example updates: "factored" (exact, fast) or "loop" (the
# per-example reference); a module switch so that benchmarks and tests can select it.
QUANTIZED_UPDATE_METHOD = "factored"


class Hebbian:
    """The Hebbian product ``post ⊗ pre``, averaged over the minibatch (paper 1, eq. 13).

    Forward weights: post = I^h ``(E, B, N_h)``, pre = O^{h-1} ``(E, B, N_{h-1})``, and
    the block computes ΔW^h/η = (1/B) Σ_b I^h_b (O^{h-1}_b)ᵀ (with its bias, the unit
    clamped to one) in its own layout (:meth:`lchannel.engine.blocks.dense.Dense.weight_update`).

    Feedback matrices (ARBP/ASRBP, paper 1 section 3; paper 2 eq. 124): ``C^{h,k}``
    ``(E, N_h, N_k)`` carries the signal of layer k (its presynaptic side in the learning
    channel) to the neurons of layer h (its postsynaptic side), so post = O^h and
    pre = I^k: ΔC^{h,k} = η_c (O^h)ᵀ I^k / B.  For k = h+1 and η_c = η this is exactly
    (ΔW^{h+1})ᵀ (paper 2, Theorem 7): the forward channel is the learning channel of the
    feedback weights, and the same object serves both.
    """

    name = "hebbian"
    per_neuron = True  # post is one signal per neuron (see PerSynapse)

    def direction(self, post, pre: torch.Tensor, block, per_example=None, lr: float = 1.0):
        """``(ΔW, Δb)/η`` of a forward block (``per_example``: eq. 19 on each example)."""
        return block.weight_update(post, pre, per_example, lr)

    def apply_block_(self, block, post: torch.Tensor, pre: torch.Tensor, lr: float) -> None:
        """The plain update of a forward block in place (one fused product each)."""
        block.apply_update_(post, pre, lr)

    def apply_(self, P: torch.Tensor, post: torch.Tensor, pre: torch.Tensor, eta: float) -> None:
        """``P += η (1/B) postᵀ pre`` in place for a matrix parameter ``(E, n_post, n_pre)``."""
        P.baddbmm_(post.transpose(1, 2), pre, alpha=eta / pre.shape[1])

    def __repr__(self) -> str:
        return "Hebbian()"


class PerSynapse(Hebbian):
    """Per-synapse feedback (paper 1, section 4.2 item 7): every synapse j of neuron i gets
    its own random feedback weights c^{h,k}_{imj} onto the source signals G^k, so

        ΔW^h_ij = η f'(S^h_i) Σ_{k ∈ sources(h)} Σ_m c^{h,k}_{imj} G^k_m O^{h-1}_j

    (the bias, the weight of a unit clamped to one, has its own c^{h,k}_{im,bias}).  The
    postsynaptic term is a :class:`~lchannel.channels.synapse.SynapseSignal` (the sources'
    signals, the feedback tensors and f'), not a per-neuron I^h.

    The minibatch mean is computed without forming the ``(B, N_h, N_{h-1}, N_k)`` tensor
    of per-example, per-source terms: ΔW^h_ij/η = Σ_m c_{imj} M_{imj} with
    M_{imj} = (1/B) Σ_b (f'_{bi} G_{bm}) O_{bj}, one batched product of shape
    ``(N_h·N_k) × B × N_{h-1}``.  Quantized updates (section 5.2) need the per-example
    updates and form ``(B, N_h, N_{h-1})``.
    """

    name = "per_synapse"
    per_neuron = False

    def direction(self, post, pre, block=None, per_example=None, lr: float = 1.0):
        E, B, n_in = pre.shape
        dW = db = None
        per_W = per_b = None
        for G, Cw, Cb in post.parts:
            X = post.postsynaptic(G)  # (E, B, N_h, N_k)
            n_h, n_k = X.shape[2], X.shape[3]
            if per_example is None:
                M = torch.bmm(X.reshape(E, B, n_h * n_k).transpose(1, 2), pre).view(E, n_h, n_k, n_in)
                w = (M * Cw).sum(2).div_(B)
                b = (X.sum(1) * Cb).sum(2).div_(B)
                dW = w if dW is None else dW.add_(w)
                db = b if db is None else db.add_(b)
            else:
                # Per-example: u_{bij} = Σ_m X_{bim} c_{imj} O_{bj}.
                s = torch.einsum("ebim,eimj->ebij", X, Cw) * pre.unsqueeze(2)
                sb = (X * Cb.unsqueeze(1)).sum(3)
                per_W = s if per_W is None else per_W.add_(s)
                per_b = sb if per_b is None else per_b.add_(sb)
        if per_example is None:
            return dW, db
        return per_example.examples_direction(per_W, lr), per_example.examples_direction(per_b, lr)

    def apply_block_(self, block, post, pre, lr):
        dW, db = self.direction(post, pre)
        block.add_(dW, db, alpha=lr)

    def apply_(self, P, post, pre, eta):
        raise ValueError("per-synapse feedback is a rule for forward weights only")

    def __repr__(self) -> str:
        return "PerSynapse()"


class Phases:
    """A postsynaptic neuron's activity in the two feedback phases of the STDP-like rule
    (paper 2, eq. 16-17): ``first`` = O(t=1), the output fed back through the channel;
    ``second`` = O(t=2), the target fed back.  :meth:`change` is
    ΔO = (O(t=2) − O(t=1)) / ``scale`` (eq. 18); ``scale`` undoes the strength of the
    feedback during the phases (see :class:`STDP`), 1 for the paper's literal difference.
    """

    __slots__ = ("first", "second", "scale", "delta")

    def __init__(self, first: torch.Tensor, second: torch.Tensor, scale: float = 1.0,
                 delta: torch.Tensor | None = None):
        # delta: O(t=2) − O(t=1) when the caller computed it without the cancellation of
        # subtracting two nearly equal activities (small feedback).
        self.first, self.second, self.scale, self.delta = first, second, float(scale), delta

    def change(self) -> torch.Tensor:
        d = self.second - self.first if self.delta is None else self.delta
        return d if self.scale == 1.0 else d / self.scale

    def __repr__(self) -> str:
        return f"Phases(shape={tuple(self.first.shape)}, scale={self.scale})"


class STDP(Hebbian):
    """The STDP-like rule of paper 2, section 3.6: the presynaptic activity times the
    *change* of the postsynaptic activity between two phases (eq. 13-14),

        Δw_ij = η ΔO^post_i O^pre_j,   ΔO^post = O^post(t=2) − O^post(t=1),

    averaged over the minibatch.  ``post`` is a :class:`Phases` (or an already computed
    change ΔO, a tensor).  Forward weights: post = the phases of layer h, pre = O^{h-1}
    (eq. 14).  Channel weights c^h_{ik} from sending neuron k to receiving neuron i: post =
    the phases of neuron i, pre = neuron k's activity in phase 2 (the clamped target T_k
    for the skipped channel, eq. 19) or in phase 1 (the output O_k, eq. 32), see
    :mod:`lchannel.channels.stdp`.  With small feedback weights ΔO^h ≈ R^h, the SRBP
    signal (eq. 18), so on forward weights the rule is (nearly) SRBP's Hebbian update.
    """

    name = "stdp"

    @staticmethod
    def change(post) -> torch.Tensor:
        """ΔO of ``post`` (a :class:`Phases`, or a tensor that already is ΔO)."""
        return post.change() if isinstance(post, Phases) else post

    def direction(self, post, pre, block, per_example=None, lr: float = 1.0):
        return super().direction(self.change(post), pre, block, per_example, lr)

    def apply_block_(self, block, post, pre, lr):
        super().apply_block_(block, self.change(post), pre, lr)

    def apply_(self, P, post, pre, eta):
        super().apply_(P, self.change(post), pre, eta)

    def __repr__(self) -> str:
        return "STDP()"
class KernelRule:
    """A rule applied to a random feedback *kernel* (ARBP on a conv route): the kernel
    ``C`` ``(E, C_out, C_in, K, K)`` stands in for W^k in the transposed convolution, so
    the Hebbian product of post = O^h (block k's input) and pre = I^k is the block's own
    weight update in W's layout, ΔC = η (1/B) Σ_b (conv weight-gradient of I^k_b, O^h_b)
    — exactly ΔW^k, the conv analogue of ΔC = (ΔW^{h+1})ᵀ for a matrix (paper 2,
    Theorem 7)."""

    def __init__(self, rule: Hebbian, block):
        if type(rule) is not Hebbian:
            raise ValueError(f"conv feedback kernels adapt with the Hebbian rule only, got {rule!r}")
        self.rule, self.block = rule, block

    def apply_(self, P: torch.Tensor, post: torch.Tensor, pre: torch.Tensor, eta: float) -> None:
        P.add_(self.block.weight_update(pre, post)[0], alpha=eta)

    def __repr__(self) -> str:
        return f"KernelRule({self.rule!r})"


HEBBIAN = Hebbian()
PER_SYNAPSE = PerSynapse()
STDP_RULE = STDP()
#: The rules a channel's ``rule`` option names (adaptive channels).
RULES = {"hebbian": HEBBIAN, "stdp": STDP_RULE}


def get_rule(name: str) -> Hebbian:
    """The rule object called ``name`` (one of :data:`RULES`)."""
    if name not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {name!r}")
    return RULES[name]


def member_runs(values: list) -> list[tuple[int, int, object]]:
    """``(start, stop, value)`` of every contiguous run of members with one value (the
    groups that per-member settings update with the arithmetic of a uniform population)."""
    out: list[list] = []
    for e, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1][1] = e + 1
        else:
            out.append([e, e + 1, v])
    return [tuple(g) for g in out]


def apply_term(rule, P: torch.Tensor, post, pre, lr: float, rate) -> None:
    """One channel plasticity term: P += η·rate·rule(post, pre); ``rate`` may be a list of
    one rate per member (populations across variants), applied run by run on slices."""
    if not isinstance(rate, list):
        rule.apply_(P, post, pre, lr * rate)
        return
    for a, z, r in member_runs(rate):
        rule.apply_(P[a:z], post[a:z], pre[a:z], lr * r)


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
