"""The record of a training run: per-epoch train and test loss and accuracy of every
population member (:class:`History`), the untrained network's (epoch 0), the metrics some
runs add (test AUC, validation with early stopping) and which members diverged and why
(:func:`~lchannel.engine.divergence.divergence_text`).  Written by
:class:`~lchannel.engine.train.Trainer`, stored with checkpoints and results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


@dataclass
class History:
    """Per-epoch metrics, ``metrics[name][epoch_index][member]``, and divergence per member."""

    seeds: list[int]
    epochs: list[int] = field(default_factory=list)
    metrics: dict[str, list[list[float]]] = field(default_factory=lambda: {m: [] for m in METRICS})
    lr: list = field(default_factory=list)  # η_t per epoch: a float, or a list per member (per-member rates)
    seconds: list[float] = field(default_factory=list)
    diverged_at: list[int | None] = field(default_factory=list)
    # Metrics of the untrained network (epoch 0), ``initial[name][member]``; not a row of
    # ``epochs`` (those count finished epochs), but the first point of every curve.
    initial: dict[str, list[float]] | None = None
    # Metrics some runs add, ``extra[name][epoch_index][member]`` (test_auc for one logistic
    # output; valid_loss/valid_acc with early stopping), and the epoch each member stopped
    # early (None: it did not).  Left out of to_dict when unused.
    extra: dict[str, list[list[float]]] = field(default_factory=dict)
    stopped_at: list[int | None] | None = None
    # Why each diverged member diverged (None: it did not, or a history from before this
    # was recorded): ``{"epoch", "step", "update", "quantity", "what"}``, see
    # :func:`divergence_text`.  Left out of to_dict while no member diverged.
    divergence: list[dict | None] | None = None

    def __post_init__(self):
        if not self.diverged_at:
            self.diverged_at = [None] * len(self.seeds)
        if not self.divergence:
            self.divergence = [None] * len(self.seeds)

    def append(self, epoch: int, values: dict[str, list[float]], lr, seconds: float,
               extra: dict[str, list[float]] | None = None) -> None:
        self.epochs.append(epoch)
        for m in METRICS:
            self.metrics[m].append(list(values[m]))
        for m, v in (extra or {}).items():
            self.extra.setdefault(m, []).append(list(v))
        self.lr.append(lr)
        self.seconds.append(seconds)

    def final(self, metric: str) -> list[float]:
        """The last epoch's value of ``metric`` for every member."""
        return self.metrics[metric][-1] if self.epochs else [math.nan] * len(self.seeds)

    def rows(self) -> list[dict]:
        """One row per (epoch, member): the long format written to CSV and JSON."""
        out = []
        for i, ep in enumerate(self.epochs):
            for e, seed in enumerate(self.seeds):
                row = {"epoch": ep, "member": e, "seed": seed}
                row.update({m: self.metrics[m][i][e] for m in METRICS})
                row.update({m: v[i][e] for m, v in self.extra.items()})
                lr = self.lr[i]
                row["lr"] = lr[e] if isinstance(lr, list) else lr  # per member: populations across variants
                row["diverged"] = self.diverged_at[e] is not None and ep >= self.diverged_at[e]
                out.append(row)
        return out

    def to_dict(self) -> dict:
        d = {"seeds": self.seeds, "epochs": self.epochs, "metrics": self.metrics,
             "lr": self.lr, "seconds": self.seconds, "diverged_at": self.diverged_at,
             "initial": self.initial}
        if self.extra:
            d["extra"] = self.extra
        if self.stopped_at is not None:
            d["stopped_at"] = self.stopped_at
        if any(x is not None for x in self.divergence):
            d["divergence"] = self.divergence
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(d["seeds"], d["epochs"], d["metrics"], d["lr"], d["seconds"], d["diverged_at"],
                   d.get("initial"), dict(d.get("extra") or {}), d.get("stopped_at"),
                   [None if x is None else dict(x) for x in d["divergence"]] if d.get("divergence") else None)

    def diverged(self) -> list[tuple[int, int, dict]]:
        """``(member, seed, cause)`` of every diverged member; ``cause`` as
        :attr:`divergence` holds it, or ``{"epoch": diverged_at}`` where the cause was not
        recorded (histories from before it was)."""
        return [(e, s, self.divergence[e] or {"epoch": d})
                for e, (s, d) in enumerate(zip(self.seeds, self.diverged_at)) if d is not None]

    def curve(self, metric: str) -> tuple[list[int], list[list[float]]]:
        """``(epochs, values[epoch_index][member])`` of ``metric`` starting at epoch 0 (the
        untrained network) when it was recorded."""
        if self.initial is None:
            return list(self.epochs), list(self.metrics[metric])
        return [0, *self.epochs], [self.initial[metric], *self.metrics[metric]]
