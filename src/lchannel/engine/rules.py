"""Plasticity rules: what turns a (post, pre) pair into a weight change.

:class:`Hebbian` is ``post ⊗ pre``, averaged over the minibatch (the forward rule of paper
1, eq. 13, and ARBP/ASRBP's adaptation of the feedback matrices), :class:`PerSynapse` the
per-synapse variant of section 4.2 item 7, :class:`STDP` the STDP-like rule of paper 2
section 3.6, ``ΔO_post ⊗ O_pre`` with the change ΔO of the postsynaptic activity between
two feedback phases (:class:`Phases`, eq. 13-19), and :class:`KernelRule` the Hebbian rule
on a conv route's feedback kernel.  :func:`apply_term` applies a rule to one of the
learning channel's own matrices.  The optimizer that applies them is
:class:`~lchannel.engine.plasticity.SGD`.
"""

from __future__ import annotations

import torch


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
