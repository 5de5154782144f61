"""The STDP-like learning channel of paper 2, section 3.6 (eq. 13-19; eq. 32 for the O-form).

Every weight learns from the *change* of its postsynaptic activity between two phases,
times its presynaptic activity (eq. 13-14, :class:`~lchannel.engine.plasticity.STDP`).  After
the forward pass (t = 0, eq. 15) the channel feeds activity back into the forward
neurons themselves (a Conjoined, linear channel: the feedback is added to the neuron's
input, paper 2 section 2.4's "the backpropagated message is included in the total
neuronal activation"):

    t = 1 (eq. 16):  O^h(1) = f^h(S^h + ε Σ_k C^{h,k} O^k(1)),   O^L(1) = O^L  (the output)
    t = 2 (eq. 17):  O^h(2) = f^h(S^h + ε Σ_k C^{h,k} O^k(2)),   O^L(2) = T    (the target)

with S^h the forward input of t = 0 (the forward drive is held while the channel feeds
back).  The sources k are the output (skipped, SRBP-like: ``asrbp`` with ``rule="stdp"``)
or the layer above (chained, RBP-like: ``arbp`` with ``rule="stdp"``; the chained layer
feeds back its own phase activity, so the change travels down the chain).

ε is ``stdp_scale``, the strength of the feedback during the phases (the paper's "provided
the weights c in the learning channel are small"): the physical feedback weights are
εC.  The signal of layer h is the change rescaled by the feedback it went through,

    I^h = ΔO^h / ε^{n_h},   ΔO^h = O^h(2) − O^h(1),   n_h = hops from the output (1 skipped, L − h chained),

so that ε only sets how small the feedback is, not the learning rate.  For ε → 0
(eq. 18) I^h → f'(S^h) ⊙ C^{h,L}(T − O) = R^h, SRBP's signal (skipped), or RBP's
f'(S^h) ⊙ C^h I^{h+1} (chained; every derivative on the way, as RBP's default).  The error
is first order: ΔO^h − εR^h = (ε²/2) f''(S^h) ⊙ ((C T)² − (C O)²) + O(ε³) (skipped), so
the relative error of I^h is O(ε) (``tests/test_p2_stdp.py``).  The default ε = 0.1 keeps
the feedback small as eq. 18 asks; ε = 1 feeds back through C as drawn, and once the
adapting C has grown the phases leave the linear range (on MNIST the chained rule's
accuracy then falls back, docs/channels.md).

The forward weights learn by ΔW^h = η I^h (O^{h-1})ᵀ (eq. 14, presynaptic activity of the
forward pass).  The channel's weights learn by the same rule, post = the receiving
neuron's change, pre = the sending neuron's activity in one phase (``stdp_form``):

* ``"output"`` (eq. 32, the rule Theorem 2′ analyses; the default): phase 1,
  ΔC^{h,k} = η·rate·(I^h)ᵀ O^k(1) / B, for the skipped channel ΔC^h_{ik} = η O_k ΔO^h_i;
* ``"target"`` (eq. 19, section 3.6's derivation): phase 2, ΔC^{h,k} = η·rate·(I^h)ᵀ O^k(2) / B,
  for the skipped channel ΔC^h_{ik} = η T_k ΔO^h_i.

They differ at a minimum of the error: with the O-form the averaged channel update
vanishes with the error; with the T-form it need not.  In A[1,1,1] (:mod:`lchannel.theory.stdp`,
where ``rule="stdp"`` is the O-form and ``"stdp-t"`` the T-form) dc_1/dt = c_1P(α − βP)
(O-form) against c_1(γ − αP) = c_1(γ − α²/β) on the minima (T-form), zero only when T ∝ I:
|c_1| keeps growing (docs/theory.md).  Measured on MNIST (tanh, adapt_rate 1), the T-form's
feedback grows until training collapses (ASRBP diverged in epoch 9, ARBP fell from 84%
to 30% by epoch 5), the
O-form's does not (20 epochs): hence the O-form is the default.
"""

from __future__ import annotations

import math

from ..engine.plasticity import STDP_RULE, Phases
from .adaptive import Adaptive

STDP_FORMS = ("output", "target")


class STDPPhases(Adaptive):
    """The adaptive channel under the STDP-like rule: two feedback phases give the signals
    (:meth:`signals`) and the channel's own update (:meth:`plasticity_terms`).  ``rate``
    is ``adapt_rate``, ``scale`` ε (``stdp_scale``), ``form`` ``stdp_form``."""

    def __init__(self, inner, rate: float = 1.0, scale: float = 0.1, form: str = "output"):
        super().__init__(inner, rate, STDP_RULE)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"stdp_scale must be a number > 0 (the feedback strength ε during the phases), "
                             f"got {scale!r}")
        if form not in STDP_FORMS:
            raise ValueError(f"stdp_form must be one of {STDP_FORMS} (the sending neuron's activity in the output "
                             f"phase, eq. 32, or the target phase, eq. 19), got {form!r}")
        self.scale = float(scale)
        self.form = form
        self._last = None  # (record, phases, activities of phase 1, of phase 2) of the last signals()

    def check_channel(self, channel):
        super().check_channel(channel)
        if channel.transform is not None:
            raise ValueError("rule='stdp' cannot be combined with signal transforms (lc_activation, sign_only, "
                             "magnitude_only, quantize_bits, lc_dropout): the phases feed activity back into the "
                             "forward neurons through a linear channel (paper 2, Figure 11)")
        if channel.skip_layers is not None or channel.topology not in ("chain", "skip"):
            raise ValueError(f"rule='stdp' is defined for the chained (arbp) and skipped (asrbp) channels "
                             f"(paper 2 section 3.6), got topology={channel.topology!r}"
                             + (f", skip_layers={channel.skip_layers}" if channel.skip_layers is not None else ""))
        natural = "all" if channel.topology == "chain" else "local"
        if channel.derivative != natural:
            raise ValueError(f"rule='stdp' takes its derivatives from the phases themselves (the change of the "
                             f"neuron's own activity): the {channel.topology} channel has derivative={natural!r}, "
                             f"got {channel.derivative!r}")

    def signals(self, channel, record, e):
        """``[None, I^1, ..., I^L]`` with I^h = ΔO^h / ε^{n_h} (module doc), I^L = T − O.

        The change is carried as such: the route is linear, so layer h receives
        ε·C·O^k(1) in phase 1 and that plus ε·C·ΔO^k in phase 2, and ΔO^h =
        f(x + y) − f(x) is computed without subtracting two nearly equal activities
        (:meth:`lchannel.engine.activations.Activation.change`)."""
        L = record.L
        first = {L: record.output}  # phase 1: the output fed back (eq. 16)
        change = {L: e}  # phase 2 − phase 1 at the output: T − O (eq. 17), for every output pair
        hops = {L: 0}
        phases = {}
        I: list = [None] * (L + 1)
        I[L] = e
        eps = self.scale
        for h in range(L - 1, 0, -1):
            ks = [k for k in channel.sources(h) if k in first]
            if not ks:
                continue
            d1 = dd = None
            for k in ks:
                route = channel.route(h, k)
                a, b = route.send(first[k]), route.send(change[k])  # (E, B, N_h)
                d1 = a if d1 is None else d1.add_(a)
                dd = b if dd is None else dd.add_(b)
            f = record.activations[h]
            x = record.S[h].add(d1, alpha=eps)  # the input of phase 1
            first[h] = f(x)
            change[h] = f.change(x, first[h], dd.mul_(eps))
            hops[h] = 1 + max(hops[k] for k in ks)
            phases[h] = Phases(first[h], first[h] + change[h], eps ** hops[h], delta=change[h])
            I[h] = phases[h].change()
        self._last = (record, phases, first, change)
        return I

    def plasticity_terms(self, channel, record, signals):
        """``(C^{h,k}, STDP, phases of layer h, activity of layer k in phase 2 or 1, rate)``."""
        if self.rate == 0.0:
            return []
        if self._last is None or self._last[0] is not record:
            self.signals(channel, record, signals[record.L])
        _, phases, first, change = self._last
        if self.form == "output":
            pre = first
        else:
            pre = {k: phases[k].second if k in phases else first[k] + change[k] for k in first}
        return [(C, self.rule, phases[h], pre[k], self.rate) for (h, k), C in channel.C.items() if h in phases]

    def route_cost(self, n, h, sizes, relays):
        return 2 * self.inner.route_cost(n, h, sizes, relays)  # the two phases

    def describe(self):
        return f"{super().describe()}, rule='stdp', stdp_form={self.form!r}, stdp_scale={self.scale}"
