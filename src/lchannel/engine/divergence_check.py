"""Which members of a population diverged in an epoch, and why: the
:class:`~lchannel.engine.train.Trainer`'s bookkeeping around
:class:`~lchannel.engine.divergence.DivergenceProbe`.  A member diverges when its training
loss of the epoch is NaN/inf, or one of its weights (forward, or the channel's own) is at
the end of the epoch; it stops (lr factor 0), and the epoch is replayed from the state
kept at its start to find the first non-finite quantity of a step (the cause recorded in
``History.divergence``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .divergence import DivergenceProbe, ProbeDone

if TYPE_CHECKING:  # the trainer calls these; they read and restore its state
    from .train import Trainer


def mark_divergence(trainer: Trainer, values: dict, start: dict | None = None, replay=None) -> list[int]:
    """Members whose training loss is NaN/inf, or whose weights (forward or the
    channel's) are, stop (lr factor 0) and are recorded as diverged, with the cause
    (:func:`explain`); metrics of members that diverged before are NaN.  ``start``:
    the training state at the start of the epoch (``Trainer._training_state``) and
    ``replay`` a callable that trains the epoch again, to find the cause.  Returns the
    members that diverged in this epoch."""
    loss = values["train_loss"]
    finite = finite_members(trainer)
    newly = []
    for e in range(trainer.net.E):
        if trainer.history.diverged_at[e] is not None:
            for v in values.values():
                v[e] = math.nan
        elif not math.isfinite(float(loss[e])) or not finite[e]:
            newly.append(e)
    if newly:
        causes = explain(trainer, newly, start, replay, values)
        for e in newly:
            trainer.history.diverged_at[e] = trainer.epoch
            trainer.history.divergence[e] = causes[e]
            trainer.opt.stop_member(e)
    return newly


def finite_members(trainer: Trainer) -> list[bool]:
    """Per member: are all its weights finite (the forward blocks' and the channel's own
    matrices)?  One reduction per tensor, once per epoch."""
    E = trainer.net.E
    tensors = [*trainer.net.parameters(),
               *(b for b in trainer.channel.buffers() if b.is_floating_point() and b.dim() and b.shape[0] == E)]
    if not tensors:
        return [True] * E
    return torch.stack([torch.isfinite(t).reshape(E, -1).all(1) for t in tensors]).all(0).tolist()


def explain(trainer: Trainer, members: list[int], start: dict | None, replay, values: dict) -> dict[int, dict]:
    """Why ``members`` diverged in this epoch: the epoch is replayed from ``start`` with
    :class:`DivergenceProbe` in place of ``Trainer._step`` (the same random streams, so the
    same minibatches and the same numbers), then the state at the end of the epoch is
    put back.  Members the replay does not explain (or every member, without
    ``start``) get the epoch and what was seen at its end."""
    found: dict[int, dict] = {}
    note = None
    if start is not None and replay is not None:
        end = trainer._training_state()
        probe = DivergenceProbe(trainer, members, trainer.epoch, int(start["optimizer"]["t"]))
        try:
            trainer._load_training_state(start)
            trainer._step = probe  # an instance attribute: the minibatch loops (.epochs) call it
            try:
                replay()
            except ProbeDone:
                pass
        except Exception as err:  # the cause is a diagnosis: never lose the run for it
            note = f"the replay of the epoch failed: {type(err).__name__}: {err}"
        finally:
            trainer.__dict__.pop("_step", None)
            trainer._load_training_state(end)
        found = probe.found
        if note is None:
            note = "no quantity of a step was non-finite when the epoch was replayed"
    loss = values["train_loss"]
    out = {}
    for e in members:
        if e in found:
            out[e] = found[e]
        elif not math.isfinite(float(loss[e])):
            out[e] = {"epoch": trainer.epoch, "step": None, "update": None, "quantity": "train loss",
                      "what": "the training loss of the epoch", **({"note": note} if note else {})}
        else:
            out[e] = {"epoch": trainer.epoch, "step": None, "update": None, "quantity": "weights",
                      "what": "a weight at the end of the epoch",
                      **({"note": note} if note else {})}
    return out
