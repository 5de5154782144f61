"""Why a member diverged: the first non-finite quantity of the step where it happened.

:class:`~lchannel.engine.train.Trainer` marks a member diverged when its training loss of an
epoch, or one of its weights at the end of the epoch, is NaN/inf.  Only then does it
replay that epoch from a copy of the state it kept (:func:`clone_state`) with
:class:`DivergenceProbe` standing in for its step: every quantity the step computes is
checked in order, and the first non-finite one of each diverged member is recorded
(:func:`divergence_text` says how it reads in tables, reports and progress bars).
Healthy steps never run this code.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotation only: train imports this module
    from .train import Trainer


def divergence_text(cause: dict | None, epoch: int | None = None, short: bool = False) -> str:
    """How a diverged member's cause reads in tables, reports and progress bars.

    ``short``: ``epoch 7 (W^2)``; else ``epoch 7, update 4123 (step 523 of the epoch):
    W^2 after the update is non-finite``: the epoch (1-based), the update counted over the
    whole run and within the epoch, and the first non-finite quantity of that step.
    ``cause`` None (a history from before causes were recorded): ``epoch 7: cause not
    recorded`` with ``epoch`` given."""
    cause = cause or {}
    head = f"epoch {cause.get('epoch', epoch)}"
    quantity = cause.get("quantity")
    if short:
        return f"{head} ({quantity})" if quantity else head
    if cause.get("update") is not None:
        head += f", update {cause['update']} (step {cause['step']} of the epoch)"
    if not cause.get("what"):
        return f"{head}: cause not recorded"
    note = f" ({cause['note']})" if cause.get("note") else ""
    return f"{head}: {cause['what']} is non-finite{note}"


def divergence_summary(items) -> str:
    """``(seed, cause)`` pairs in a few words, grouped by epoch and quantity: ``seeds 0, 2 at
    epoch 7 (W^2); seed 1 at epoch 9 (loss)``; "" for none."""
    groups: dict[str, list] = {}
    for seed, cause in items:
        groups.setdefault(divergence_text(cause, short=True), []).append(seed)
    return "; ".join(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} at {what}"
                     for what, seeds in groups.items())


class ProbeDone(Exception):
    """Every member the probe looks for is explained: the replay can stop."""


def _channel_name(name: str) -> str:
    """A channel buffer's name as the papers write the matrix: ``C_1_2`` -> ``C^{1,2}``,
    ``C3_1_2`` (feedback sample 3) -> ``C^{1,2} (sample 3)``; others unchanged."""
    m = re.fullmatch(r"C(\d*)_(\d+)_(\d+)", name)
    if m is None:
        return name
    return f"C^{{{m[2]},{m[3]}}}" + (f" (sample {m[1]})" if m[1] else "")


def clone_state(x):
    """A copy of a state (nested dicts, lists, tuples of tensors and plain values) whose
    tensors share no memory with the original: :func:`copy.deepcopy`, without its
    bookkeeping on the common types (a third of the cost for a small network)."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: clone_state(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and type(x) in (list, tuple):
        return type(x)(clone_state(v) for v in x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return copy.deepcopy(x)


class DivergenceProbe:
    """A step of :class:`Trainer` (it stands in for ``Trainer._step`` while an epoch is
    replayed) that checks, member by member, every quantity in the order the step computes
    it, and records the first non-finite one of each member in ``members``:

    input X, target T; for h = 1..L the forward pre-activation S^h and activity O^h (O^L:
    the output); the loss; the error T − O; the signals I^h (h = L..1); the terms of the
    channel's own adaptation (ΔC); then, layer by layer as the optimizer applies them, ΔW^h
    and Δb^h (only computed where W^h or b^h turned non-finite) and W^h, b^h after the
    update; last the channel's adapted matrices C^{h,k} after the update.

    ``found[e]`` is ``{"epoch", "step", "update", "quantity", "what"}`` (``step``: 1-based
    within the epoch; ``update``: 1-based over the run, the optimizer's count).  It raises
    :class:`ProbeDone` once every member is found.  Costs a few reductions per quantity:
    used only to replay an epoch in which a member diverged."""

    def __init__(self, trainer: "Trainer", members, epoch: int, updates_before: int):
        self.trainer = trainer
        self.todo = set(members)
        self.found: dict[int, dict] = {}
        self.epoch = int(epoch)
        self.updates_before = int(updates_before)
        self.step = 0
        self.names = {id(b): _channel_name(n) for n, b in trainer.channel.named_buffers()}

    def flags(self, x, shared: bool = False) -> list[bool] | None:
        """Per member: does ``x`` hold a NaN/inf?  ``shared``: x has no member axis (a
        shared minibatch), so it counts for every member.  None for what is not a tensor."""
        if not isinstance(x, torch.Tensor):
            return None
        E = self.trainer.net.E
        if shared or x.dim() == 0 or x.shape[0] != E:
            return [not bool(torch.isfinite(x).all())] * E
        return (~torch.isfinite(x).reshape(E, -1).all(1)).tolist()

    def check(self, quantity: str, what: str, x, shared: bool = False) -> None:
        bad = self.flags(x, shared)
        if bad is None:
            return
        for e in sorted(self.todo):
            if bad[e]:
                self.found[e] = {"epoch": self.epoch, "step": self.step, "update": self.updates_before + self.step,
                                 "quantity": quantity, "what": what}
                self.todo.discard(e)
        if not self.todo:
            raise ProbeDone

    @staticmethod
    def times_rate(d: torch.Tensor, rates: list[float]) -> torch.Tensor:
        """η_t·d per member, in the network's precision: computed in float64, so that a
        rate float32 cannot hold (η > 3.4e38) does not make a representable ΔW infinite."""
        wide = d.dtype if d.device.type == "mps" else torch.float64  # MPS has no float64
        eta = torch.tensor(rates, dtype=wide, device=d.device).view(len(rates), *[1] * (d.dim() - 1))
        return (d.to(wide) * eta).to(d.dtype)

    def tensors(self, x) -> list:
        """The tensors of a plasticity term's post/pre (a tensor, or the STDP rule's phases)."""
        if isinstance(x, torch.Tensor):
            return [x]
        return [t for t in (getattr(x, a, None) for a in ("first", "second", "delta")) if isinstance(t, torch.Tensor)]

    def __call__(self, X: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        tr = self.trainer
        net, ch, opt, out = tr.net, tr.channel, tr.opt, tr.net.output_loss
        E, L = net.E, net.L
        self.step += 1
        shared = len(tr._order) == 1  # one minibatch for all members: no member axis
        if tr.augment is not None:
            X = tr.augment(X, tr._augment_rng)
        self.check("X", "input X", X, shared)
        self.check("T", "target T", T, shared)
        ch.on_batch_start()
        rec = net.forward(X, train=True)
        for h in range(1, L + 1):
            if rec.Z[h] is not None:  # a conv layer keeps no S^h in training (not recomputed here)
                top = ", the output layer" if h == L else ""
                self.check(f"S^{h}", f"S^{h} (forward pre-activation of layer {h}{top})", rec.pre_activation(h))
            self.check(f"O^{h}", f"output O^{h}" if h == L else f"O^{h} (forward activity of layer {h})", rec.O[h])
        O = rec.output
        self.check("loss", "the loss of the minibatch", out.loss(O, T))
        err = out.error(T, O)
        self.check("T − O", "error T − O", err)
        I = ch.signals(rec, err)
        for h in range(L, 0, -1):
            self.check(f"I^{h}", f"signal I^{h}", I[h])
        terms = ch.plasticity_terms(rec, I)
        for P, _rule, post, pre, _rate in terms:
            name = self.names.get(id(P), "channel weights")
            for x in (*self.tensors(post), *self.tensors(pre)):
                self.check(f"ΔC{name[1:]}" if name.startswith("C^") else f"Δ{name}",
                           f"the adaptation terms of {name}", x)
        lr, rates = opt.lr_now(), opt.member_rates()  # η_t of this update
        opt.step(rec, I, terms)
        for h in range(1, L + 1):
            W, b = net.W(h), net.b(h)
            bad = [x or y for x, y in zip(self.flags(W), self.flags(b))]
            if any(bad[e] for e in self.todo) and I[h] is not None and h not in opt.frozen:
                # ΔW^h = η_t · (1/B) Σ_b I^h_b (O^{h-1}_b)ᵀ: the minibatch's update (before momentum).
                dW, db = opt.direction(I[h], rec.presynaptic(h, E), lr if not isinstance(lr, list) else 1.0, h)
                self.check(f"ΔW^{h}", f"ΔW^{h} (the update of layer {h})", self.times_rate(dW, rates))
                self.check(f"Δb^{h}", f"Δb^{h} (the update of layer {h}'s bias)", self.times_rate(db, rates))
            self.check(f"W^{h}", f"W^{h} after the update", W)
            self.check(f"b^{h}", f"b^{h} after the update", b)
        for P in {id(P): P for P, *_ in terms}.values():
            name = self.names.get(id(P), "channel weights")
            self.check(name, f"{'feedback ' if name.startswith('C^') else ''}{name} after the update", P)
        return O
