"""Training by iterations: streamed minibatches, epochs of N updates, early stopping.

Paper 2's f_k experiments (section 4.2) train on "mini-batches of 100 random examples"
drawn afresh at every update, count an *epoch* as 5,000 updates, and stop "after 1.5
million iterations, or when the validation error increased by more than 1% over a
5000-iteration epoch".  Here:

- a **stream** gives minibatches: :class:`DatasetSampler` draws examples of a finite
  data set uniformly with replacement; a generated data set has its own (the f_k stream,
  :class:`lchannel.data.synthetic.FkStream`, draws fresh points).  Both draw from the
  trainer's data generator, which checkpoints save, so a resumed run draws the same
  minibatches as an uninterrupted one.
- the **budget** is ``epochs × epoch_iterations`` updates (1.5 M = 300 × 5,000).
- :class:`EarlyStopping` reads "rose by more than 1%" as: the validation *error rate*
  of this epoch minus that of the previous epoch (the untrained network's before epoch
  1) exceeds ``rise`` = 0.01, one percentage point (absolute, not relative: a relative
  1% of a 2% error is 0.02 points, below the sampling error of any validation sample).
  Each member keeps the weights of its lowest validation error; a member that stops gets
  them back at once and trains no further, and at the end of the budget every member
  gets them back.
"""

from __future__ import annotations

import math

import torch

from ..data.base import Dataset


class DatasetSampler:
    """Minibatches of a finite data set, examples drawn uniformly with replacement."""

    def __init__(self, data: Dataset):
        self.data = data

    def batch(self, size: int, generator: torch.Generator):
        """(X (B, N_0), T (B, N_L), labels (B,) or None)."""
        idx = torch.randint(len(self.data), (size,), generator=generator).to(self.data.X.device)
        d = self.data
        return d.X.index_select(0, idx), d.T.index_select(0, idx), (
            None if d.labels is None else d.labels.index_select(0, idx))


class EarlyStopping:
    """Stop a member when its validation error rose by more than ``rise`` over one epoch
    (see the module docstring); keep the weights of its lowest validation error.

    ``params``: the tensors to keep, each with the member axis first (a network's weights
    and biases)."""

    def __init__(self, rise: float, members: int):
        if not (isinstance(rise, (int, float)) and math.isfinite(rise) and rise >= 0):
            raise ValueError(f"early_stop: {rise!r} is not accepted; expected a number >= 0 (a rise of the "
                             f"validation error rate, e.g. 0.01)")
        self.rise = float(rise)
        self.previous: list[float] = [math.nan] * members
        self.best: list[float] = [math.inf] * members
        self.best_epoch: list[int] = [0] * members
        self.stopped_at: list[int | None] = [None] * members
        self.kept: list[torch.Tensor] | None = None

    def start(self, errors, params: list[torch.Tensor]) -> None:
        """The untrained network: the first 'previous' error and the first kept weights."""
        self.previous = [float(x) for x in errors]
        self.best = [float(x) if math.isfinite(float(x)) else math.inf for x in errors]
        self.kept = [p.detach().clone() for p in params]

    def update(self, epoch: int, errors, params: list[torch.Tensor]) -> list[int]:
        """Record epoch ``epoch``'s validation errors; return the members that stop now."""
        stopping = []
        for e, err in enumerate(float(x) for x in errors):
            if self.stopped_at[e] is not None or not math.isfinite(err):
                continue
            if err < self.best[e]:
                self.best[e], self.best_epoch[e] = err, epoch
                for k, p in zip(self.kept, params):
                    k[e].copy_(p[e])
            if err - self.previous[e] > self.rise:
                self.stopped_at[e] = epoch
                stopping.append(e)
            self.previous[e] = err
        return stopping

    def restore(self, params: list[torch.Tensor], members) -> None:
        """Write the kept weights of ``members`` back into ``params``."""
        for e in members:
            for k, p in zip(self.kept, params):
                p[e].copy_(k[e])

    def state_dict(self) -> dict:
        return {"rise": self.rise, "previous": self.previous, "best": self.best, "best_epoch": self.best_epoch,
                "stopped_at": self.stopped_at, "kept": self.kept}

    def load_state_dict(self, state: dict) -> None:
        self.previous, self.best = list(state["previous"]), list(state["best"])
        self.best_epoch, self.stopped_at = list(state["best_epoch"]), list(state["stopped_at"])
        self.kept = state["kept"]
