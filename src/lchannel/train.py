"""The training loop: forward channel → T − O → learning channel → plasticity.

One step on a minibatch (X, T)::

    record = net.forward(X)                 # S^h, O^h for every layer, every member
    e      = T − O^L                        # eq. 5/8
    I      = channel.signals(record, e)     # I^h for every layer
    opt.step(record, I, channel.plasticity_terms(record, I))
                                            # ΔW^h = η_t I^hᵀ O^{h-1} / B, and ARBP's ΔC

:class:`Trainer` runs epochs of such steps for a whole population, records per-epoch
train and test loss and accuracy for every member, stops members whose loss becomes
NaN/inf (recorded as diverged) while the others go on, shows a progress bar, and can
checkpoint after every epoch and resume from the checkpoint exactly.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .channels.base import LearningChannel
from .data.base import Dataset
from .nets import Network
from .plasticity import SGD
from .rng import MemberStreams, generator

BATCH_ORDERS = ("shared", "per_member")
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
# Evaluation holds at most about this many units of one layer per member at once (2^26
# floats, 256 MB): dense nets up to 6,710 units wide keep chunks of 10,000 examples.
EVAL_UNITS = 1 << 26


@dataclass
class History:
    """Per-epoch metrics, ``metrics[name][epoch_index][member]``, and divergence per member."""

    seeds: list[int]
    epochs: list[int] = field(default_factory=list)
    metrics: dict[str, list[list[float]]] = field(default_factory=lambda: {m: [] for m in METRICS})
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    diverged_at: list[int | None] = field(default_factory=list)
    # Metrics of the untrained network (epoch 0), ``initial[name][member]``; not a row of
    # ``epochs`` (those count finished epochs), but the first point of every curve.
    initial: dict[str, list[float]] | None = None

    def __post_init__(self):
        if not self.diverged_at:
            self.diverged_at = [None] * len(self.seeds)

    def append(self, epoch: int, values: dict[str, list[float]], lr: float, seconds: float) -> None:
        self.epochs.append(epoch)
        for m in METRICS:
            self.metrics[m].append(list(values[m]))
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
                row["lr"] = self.lr[i]
                row["diverged"] = self.diverged_at[e] is not None and ep >= self.diverged_at[e]
                out.append(row)
        return out

    def to_dict(self) -> dict:
        return {"seeds": self.seeds, "epochs": self.epochs, "metrics": self.metrics,
                "lr": self.lr, "seconds": self.seconds, "diverged_at": self.diverged_at,
                "initial": self.initial}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(d["seeds"], d["epochs"], d["metrics"], d["lr"], d["seconds"], d["diverged_at"],
                   d.get("initial"))

    def curve(self, metric: str) -> tuple[list[int], list[list[float]]]:
        """``(epochs, values[epoch_index][member])`` of ``metric`` starting at epoch 0 (the
        untrained network) when it was recorded."""
        if self.initial is None:
            return list(self.epochs), list(self.metrics[metric])
        return [0, *self.epochs], [self.initial[metric], *self.metrics[metric]]


class Trainer:
    """Trains a population ``net`` with a learning ``channel`` and an optimizer.

    batch_order: ``shared`` (every member sees the same minibatches, drawn from
        ``data_seed``) or ``per_member`` (each member shuffles with its own seed).
    train_metrics: ``running`` (mean over the epoch's minibatches while training, the
        papers' Keras convention, no extra cost) or ``full`` (a separate pass over the
        training set after each epoch).
    augment: a training-time augmentation ``augment(X, generators) -> X`` applied to every
        training minibatch (e.g. :class:`lchannel.data.RandomTranslateFlip`, paper 1,
        section 4.3), or None.  Its random numbers come from the ``augment`` stream: of
        ``data_seed`` with a shared batch order (every member sees the same images), of
        each member's seed with ``per_member``; they are saved with checkpoints.
    """

    def __init__(self, net: Network, channel: LearningChannel, optimizer: SGD | None = None,
                 batch_size: int = 100, batch_order: str = "shared", data_seed: int = 0,
                 train_metrics: str = "running", progress: bool = True, desc: str = "train",
                 augment=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_order not in BATCH_ORDERS:
            raise ValueError(f"batch_order must be one of {BATCH_ORDERS}, got {batch_order!r}")
        if train_metrics not in ("running", "full"):
            raise ValueError(f"train_metrics must be 'running' or 'full', got {train_metrics!r}")
        self.net = net
        self.channel = channel.bind(net) if channel.net is not net else channel  # refuses another net's channel
        self.opt = (optimizer or SGD()).bind(net)
        self.batch_size = int(batch_size)
        self.batch_order = batch_order
        self.train_metrics = train_metrics
        self.progress = progress
        self.desc = desc
        self.data_seed = int(data_seed)
        if batch_order == "shared":
            self._order = [generator(self.data_seed, "data")]
        else:
            self._order = MemberStreams(net.seeds, "data").generators
        self.augment = augment
        if augment is None:
            self._augment_rng: list[torch.Generator] = []
        elif batch_order == "shared":
            self._augment_rng = [generator(self.data_seed, "augment")]
        else:
            self._augment_rng = MemberStreams(net.seeds, "augment").generators
        self.history = History(list(net.seeds))
        self.epoch = 0

    # -- one epoch -----------------------------------------------------------------
    def train_epoch(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over ``data``; returns the running (loss, accuracy) per member."""
        net, ch, opt, out = self.net, self.channel, self.opt, self.net.output_loss
        E, N, B = net.E, len(data), self.batch_size
        dev = net.device
        perms = [torch.randperm(N, generator=g).to(dev) for g in self._order]
        loss_sum = torch.zeros(E, dtype=torch.float64, device=dev)
        correct = torch.zeros(E, dtype=torch.float64, device=dev)
        X_all, T_all, y_all = data.X, data.T, data.labels
        # Running metrics are computed from the kept outputs in a few large operations per
        # chunk of batches rather than ~10 tiny ones per step (they cost ~5% of a step).
        outputs: list[torch.Tensor] = []
        done = 0  # examples whose metrics are already summed
        flush_every = max(1, (1 << 24) // max(1, E * B * net.sizes[-1]))

        def flush(end: int) -> None:
            nonlocal done
            if not outputs:
                return
            O = torch.cat(outputs, dim=1)
            outputs.clear()
            idx = [p[done:end] for p in perms]
            if len(idx) == 1:
                T = T_all.index_select(0, idx[0])
                y = None if y_all is None else y_all.index_select(0, idx[0])
            else:
                i = torch.stack(idx)
                T, y = T_all[i], None if y_all is None else y_all[i]
            loss_sum.add_(out.loss(O, T).sum(-1, dtype=torch.float64))
            if y is not None:
                correct.add_((out.predict(O) == y).sum(-1))
            done = end

        with torch.no_grad():
            for step, start in enumerate(range(0, N, B)):
                if len(perms) == 1:
                    # index_select is several times faster than advanced indexing here.
                    idx = perms[0][start:start + B]
                    X, T = X_all.index_select(0, idx), T_all.index_select(0, idx)
                else:
                    idx = torch.stack([p[start:start + B] for p in perms])
                    X, T = X_all[idx], T_all[idx]
                if self.augment is not None:
                    X = self.augment(X, self._augment_rng)
                ch.on_batch_start()
                rec = net.forward(X, train=True)
                O = rec.output
                e = out.error(T, O)
                I = ch.signals(rec, e)
                opt.step(rec, I, ch.plasticity_terms(rec, I))  # forward weights, then the channel's own
                outputs.append(O)
                if (step + 1) % flush_every == 0:
                    flush(min(start + B, N))
            flush(N)
        return loss_sum / N, correct / N

    @torch.no_grad()
    def evaluate(self, data: Dataset, chunk: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy) of every member on ``data``; accuracy is NaN without labels.
        Chunks of at most ``chunk`` examples, fewer for wide layers (a conv layer's output
        has ~65,000 units per example: 10,000 at once would take gigabytes)."""
        net, out = self.net, self.net.output_loss
        chunk = max(1, min(chunk, EVAL_UNITS // max(net.sizes)))
        loss_sum = torch.zeros(net.E, dtype=torch.float64, device=net.device)
        correct = torch.zeros(net.E, dtype=torch.float64, device=net.device)
        for i in range(0, len(data), chunk):
            O = net.forward(data.X[i:i + chunk]).output
            loss_sum += out.loss(O, data.T[i:i + chunk]).sum(-1)
            if data.labels is not None:
                correct += (out.predict(O) == data.labels[i:i + chunk]).sum(-1)
        acc = correct / len(data) if data.labels is not None else torch.full_like(correct, math.nan)
        return loss_sum / len(data), acc

    # -- the loop --------------------------------------------------------------------
    def fit(self, train: Dataset, test: Dataset | None = None, epochs: int = 1,
            checkpoint: str | os.PathLike | None = None, on_epoch=None) -> History:
        """Train until ``epochs`` epochs are done (counting epochs already in the history,
        so a resumed trainer finishes the same schedule).  With ``checkpoint``, the state is
        written atomically after every epoch."""
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        for name, data in (("train", train), ("test", test)):
            if data is not None and data.X.dtype != self.net.dtype:
                raise ValueError(
                    f"{name} data is {data.X.dtype} but the network is {self.net.dtype}: convert one of them "
                    f"(net.to({data.X.dtype}), or the data's X and T to {self.net.dtype})")
        if train.n_inputs != self.net.sizes[0] or train.n_outputs != self.net.sizes[-1]:
            raise ValueError(
                f"data has {train.n_inputs} inputs and {train.n_outputs} targets but the network is "
                f"A{self.net.sizes}: the first and last sizes must match")
        if self.epoch == 0 and self.history.initial is None and epochs > 0:
            # Epoch 0, the untrained network, so that curves start where training starts
            # (as the alignment curves do).  Evaluation draws no random numbers: the
            # training that follows is unchanged.
            tr_loss, tr_acc = self.evaluate(train)
            te_loss, te_acc = self.evaluate(test) if test is not None else (
                torch.full_like(tr_loss, math.nan), torch.full_like(tr_acc, math.nan))
            self.history.initial = {"train_loss": tr_loss.tolist(), "train_acc": tr_acc.tolist(),
                                    "test_loss": te_loss.tolist(), "test_acc": te_acc.tolist()}
        bar = None
        if self.progress and epochs > self.epoch:
            from tqdm.auto import tqdm
            bar = tqdm(total=epochs, initial=self.epoch, desc=self.desc, unit="epoch", leave=True)
        try:
            while self.epoch < epochs:
                if all(d is not None for d in self.history.diverged_at):
                    break
                t0 = time.perf_counter()
                lr = self.opt.lr_now()
                tr_loss, tr_acc = self.train_epoch(train)
                if self.train_metrics == "full":
                    tr_loss, tr_acc = self.evaluate(train)
                te_loss, te_acc = self.evaluate(test) if test is not None else (
                    torch.full_like(tr_loss, math.nan), torch.full_like(tr_acc, math.nan))
                self.epoch += 1
                values = {"train_loss": tr_loss, "train_acc": tr_acc, "test_loss": te_loss, "test_acc": te_acc}
                self._mark_divergence(values)
                self.history.append(self.epoch, {k: v.tolist() for k, v in values.items()}, lr,
                                    time.perf_counter() - t0)
                if checkpoint is not None:
                    self.save(checkpoint)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(self._postfix())
                if on_epoch is not None:
                    on_epoch(self)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _mark_divergence(self, values: dict) -> None:
        """Members whose loss is NaN/inf stop (lr factor 0); their later metrics are NaN."""
        loss = values["train_loss"]
        for e in range(self.net.E):
            if self.history.diverged_at[e] is not None:
                for v in values.values():
                    v[e] = math.nan
            elif not math.isfinite(float(loss[e])):
                self.history.diverged_at[e] = self.epoch
                self.opt.stop_member(e)

    def _postfix(self) -> dict:
        live = [e for e in range(self.net.E) if self.history.diverged_at[e] is None]
        if not live:
            return {"status": "all diverged"}
        pick = lambda m: sum(self.history.final(m)[e] for e in live) / len(live)
        post = {"loss": f"{pick('train_loss'):.4f}", "acc": f"{pick('train_acc'):.4f}"}
        test_acc = pick("test_acc")
        if not math.isnan(test_acc):
            post["test_acc"] = f"{test_acc:.4f}"
        return post

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "net_rng": self.net.rng_state(),
            "channel": self.channel.checkpoint_state(),
            "optimizer": self.opt.state_dict(),
            "order_rng": [g.get_state() for g in self._order],
            "augment_rng": [g.get_state() for g in self._augment_rng],
            "history": self.history.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])  # also takes the earlier {"weights", "biases"} format
        self.net.load_rng_state(state.get("net_rng"))
        self.channel.load_checkpoint_state(state["channel"])
        self.opt.load_state_dict(state["optimizer"])
        for g, s in zip(self._order, state["order_rng"]):
            g.set_state(s)
        saved = state.get("augment_rng", [])
        if self._augment_rng and len(saved) != len(self._augment_rng):
            raise ValueError(f"the checkpoint holds {len(saved)} augmentation generator states, this trainer "
                             f"augments with {len(self._augment_rng)}: it was saved by a run without augmentation")
        for g, s in zip(self._augment_rng, saved):
            g.set_state(s)
        self.history = History.from_dict(state["history"])
        self.epoch = int(state["epoch"])

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        self.load_state_dict(torch.load(path, weights_only=False))
