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

A member diverges when its training loss of an epoch is NaN/inf, or when one of its
weights (forward, or the channel's own) is at the end of the epoch.  Why is found only
then, at no cost to healthy steps: the trainer keeps a copy of the training state from
the start of every epoch, replays the epoch from it with a check after every quantity a
step computes (:class:`DivergenceProbe`), stops at the first non-finite one of each
diverged member, and puts the state back.  ``History.divergence`` records it per member
(see :func:`divergence_text`): the epoch, the update (within the epoch and counted over
the run) and the quantity, e.g. ``epoch 7, update 4123 (step 523 of the epoch): W^2
after the update``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..data.base import Dataset
from .divergence import DivergenceProbe, ProbeDone, clone_state, divergence_text
from .nets import Network
from .plasticity import SGD
from .rng import MemberStreams, generator

if TYPE_CHECKING:  # the loop takes any learning channel; the engine does not import channels
    from ..channels.base import LearningChannel

BATCH_ORDERS = ("shared", "per_member")
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
# Evaluation holds at most about this many units of one layer per member at once (2^24
# floats, 64 MB): dense nets up to 1,677 units wide keep chunks of 10,000 examples; paper
# 1's conv net (65,536 units after its first conv) evaluates 256 images at a time, which
# measured faster than 1,024 (0.56 against 0.61 ms per image: the maps stay in cache).
EVAL_UNITS = 1 << 24


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


class Trainer:
    """Trains a population ``net`` with a learning ``channel`` and an optimizer.

    batch_order: ``shared`` (every member sees the same minibatches, drawn from
        ``data_seed``) or ``per_member`` (each member shuffles with its own seed).
    train_metrics: ``running`` (mean over the epoch's minibatches while training, the
        papers' Keras convention, no extra cost) or ``full`` (a separate pass over the
        training set after each epoch).
    epoch_iterations: None (an epoch is one pass over the training set) or N: an epoch is
        N updates on minibatches from a stream (:mod:`lchannel.engine.iterations`; ``fit``'s
        ``stream``, else examples of the training set drawn with replacement).
    early_stop: None, or the rise of the validation error rate over one epoch that stops
        a member (paper 2, sec. 4.2: 0.01); the best weights are kept
        (:class:`lchannel.engine.iterations.EarlyStopping`); ``fit`` then needs ``valid``.
    augment: a training-time augmentation ``augment(X, generators) -> X`` applied to every
        training minibatch (e.g. :class:`lchannel.data.RandomTranslateFlip`, paper 1,
        section 4.3), or None.  Its random numbers come from the ``augment`` stream: of
        ``data_seed`` with a shared batch order (every member sees the same images), of
        each member's seed with ``per_member``; they are saved with checkpoints.
    explain_divergence: find why a member diverged (module doc, :class:`DivergenceProbe`):
        a copy of the training state at the start of every epoch (weights, the channel's
        and the optimizer's state, random streams: one copy per epoch, nothing per step),
        and a replay of the epoch only when a member diverges.  False: record the epoch
        alone.
    """

    explain_divergence = True

    def __init__(self, net: Network, channel: LearningChannel, optimizer: SGD | None = None,
                 batch_size: int = 100, batch_order: str = "shared", data_seed: int = 0,
                 train_metrics: str = "running", progress: bool = True, desc: str = "train",
                 epoch_iterations: int | None = None, early_stop: float | None = None, augment=None):
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
        if epoch_iterations is not None and (not isinstance(epoch_iterations, int) or epoch_iterations < 1):
            raise ValueError(f"epoch_iterations must be None or an integer >= 1, got {epoch_iterations!r}")
        self.epoch_iterations = epoch_iterations
        self.early = None
        if early_stop is not None:
            from .iterations import EarlyStopping
            self.early = EarlyStopping(early_stop, net.E)

    # -- one epoch -----------------------------------------------------------------
    def train_epoch(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over ``data``; returns the running (loss, accuracy) per member."""
        net, out = self.net, self.net.output_loss
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
                outputs.append(self._step(X, T))
                if (step + 1) % flush_every == 0:
                    flush(min(start + B, N))
            flush(N)
        return loss_sum / N, correct / N

    def _step(self, X: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """One update on the minibatch (X, T): augmentation, the forward channel, the
        learning channel's signals, the optimizer (forward weights, then the channel's own);
        returns the outputs O^L."""
        if self.augment is not None:
            X = self.augment(X, self._augment_rng)
        ch = self.channel
        ch.on_batch_start()
        rec = self.net.forward(X, train=True)
        O = rec.output
        I = ch.signals(rec, self.net.output_loss.error(T, O))
        self.opt.step(rec, I, ch.plasticity_terms(rec, I))
        return O

    @torch.no_grad()
    def train_iterations(self, stream, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` updates on minibatches drawn from ``stream`` (``batch(B, generator)`` ->
        X, T, labels); returns the running (loss, accuracy) per member."""
        net, out = self.net, self.net.output_loss
        dev = net.device
        loss_sum = torch.zeros(net.E, dtype=torch.float64, device=dev)
        correct = torch.zeros(net.E, dtype=torch.float64, device=dev)
        for _ in range(n):
            draws = [stream.batch(self.batch_size, g) for g in self._order]
            if len(draws) == 1:
                X, T, y = draws[0]
            else:  # per_member order: member e trains on its own draw, (E, B, N)
                X, T = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
                y = None if draws[0][2] is None else torch.stack([d[2] for d in draws])
            O = self._step(X.to(dev, net.dtype), T.to(dev, net.dtype))
            loss_sum.add_(out.loss(O, T).sum(-1, dtype=torch.float64))
            if y is not None:
                correct.add_((out.predict(O) == y.to(dev)).sum(-1))
        count = n * self.batch_size
        return loss_sum / count, correct / count

    @torch.no_grad()
    def outputs(self, data: Dataset, chunk: int = 10000) -> torch.Tensor:
        """The network's outputs on ``data``, (E, N, N_L), in chunks as :meth:`evaluate`'s."""
        chunk = self._eval_chunk(chunk)
        return torch.cat([self.net.output(data.X[i:i + chunk]) for i in range(0, len(data), chunk)], 1)

    def _eval_chunk(self, chunk: int) -> int:
        """At most ``chunk`` examples at once, fewer for wide layers (:data:`EVAL_UNITS`)."""
        return max(1, min(chunk, EVAL_UNITS // max(self.net.sizes)))

    def evaluate_auc(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy, ROC AUC) of every member on ``data``, for one logistic
        output unit (:func:`lchannel.engine.metrics.roc_auc`)."""
        from .metrics import roc_auc
        O = self.outputs(data)
        out = self.net.output_loss
        loss = out.loss(O, data.T).sum(-1, dtype=torch.float64) / len(data)
        acc = (out.predict(O) == data.labels).sum(-1, dtype=torch.float64) / len(data)
        return loss, acc, roc_auc(O[..., 0], data.labels).to(loss.device)

    def _binary(self, data: Dataset | None) -> bool:
        return data is not None and data.labels is not None and self.net.sizes[-1] == 1

    def _params(self) -> list[torch.Tensor]:
        return list(self.net.parameters())  # every forward weight and bias, member axis first

    @torch.no_grad()
    def evaluate(self, data: Dataset, chunk: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy) of every member on ``data``; accuracy is NaN without labels.
        Chunks of at most ``chunk`` examples, fewer for wide layers (a conv layer's output
        has ~65,000 units per example: 10,000 at once would take gigabytes)."""
        net, out = self.net, self.net.output_loss
        chunk = self._eval_chunk(chunk)
        loss_sum = torch.zeros(net.E, dtype=torch.float64, device=net.device)
        correct = torch.zeros(net.E, dtype=torch.float64, device=net.device)
        for i in range(0, len(data), chunk):
            O = net.output(data.X[i:i + chunk])
            loss_sum += out.loss(O, data.T[i:i + chunk]).sum(-1)
            if data.labels is not None:
                correct += (out.predict(O) == data.labels[i:i + chunk]).sum(-1)
        acc = correct / len(data) if data.labels is not None else torch.full_like(correct, math.nan)
        return loss_sum / len(data), acc

    # -- the loop --------------------------------------------------------------------
    def fit(self, train: Dataset, test: Dataset | None = None, epochs: int = 1,
            checkpoint: str | os.PathLike | None = None, on_epoch=None, stream=None,
            valid: Dataset | None = None) -> History:
        """Train until ``epochs`` epochs are done (counting epochs already in the history,
        so a resumed trainer finishes the same schedule).  With ``checkpoint``, the state is
        written atomically after every epoch.

        With ``epoch_iterations``, minibatches come from ``stream`` (default: the training
        set sampled with replacement); with ``early_stop``, ``valid`` is the fixed
        validation sample watched (its loss and accuracy are recorded as ``valid_*``)."""
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if self.early is not None and valid is None:
            raise ValueError("early_stop needs a validation sample: pass valid= to fit")
        if stream is None and self.epoch_iterations is not None:
            from .iterations import DatasetSampler
            stream = DatasetSampler(train)
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
            if self._binary(test):
                self.history.initial["test_auc"] = self.evaluate_auc(test)[2].tolist()
            if self.early is not None:
                v_loss, v_acc = self.evaluate(valid)
                self.history.initial.update(valid_loss=v_loss.tolist(), valid_acc=v_acc.tolist())
                self.early.start((1 - v_acc).tolist(), self._params())
        bar = None
        if self.progress and epochs > self.epoch:
            from tqdm.auto import tqdm
            bar = tqdm(total=epochs, initial=self.epoch, desc=self.desc, unit="epoch", leave=True)
        try:
            while self.epoch < epochs:
                stopped = self.history.stopped_at or [None] * self.net.E
                if all(d is not None or s is not None for d, s in zip(self.history.diverged_at, stopped)):
                    break
                t0 = time.perf_counter()
                lr = self.opt.lr_now()
                if self.epoch_iterations is None:
                    run_epoch = lambda: self.train_epoch(train)  # noqa: E731
                else:
                    run_epoch = lambda: self.train_iterations(stream, self.epoch_iterations)  # noqa: E731
                # The state this epoch starts from, kept only to replay it if a member diverges.
                start = self._training_state() if self.explain_divergence else None
                tr_loss, tr_acc = run_epoch()
                if self.train_metrics == "full":
                    tr_loss, tr_acc = self.evaluate(train)
                extra = self._early_stop(valid, epochs) if self.early is not None else {}
                te_auc = None
                if self._binary(test):
                    te_loss, te_acc, te_auc = self.evaluate_auc(test)
                else:
                    te_loss, te_acc = self.evaluate(test) if test is not None else (
                        torch.full_like(tr_loss, math.nan), torch.full_like(tr_acc, math.nan))
                self.epoch += 1
                values = {"train_loss": tr_loss, "train_acc": tr_acc, "test_loss": te_loss, "test_acc": te_acc}
                if te_auc is not None:
                    extra["test_auc"] = te_auc
                newly = self._mark_divergence(values, start, run_epoch)
                for e, d in enumerate(self.history.diverged_at):
                    if d is not None:
                        for v in extra.values():
                            v[e] = math.nan
                self.history.append(self.epoch, {k: v.tolist() for k, v in values.items()}, lr,
                                    time.perf_counter() - t0, {k: v.tolist() for k, v in extra.items()})
                if checkpoint is not None:
                    self.save(checkpoint)
                if bar is not None:
                    for e in newly:  # a line that stays above the bar
                        bar.write(f"{self.desc}: seed {self.net.seeds[e]} diverged at "
                                  f"{divergence_text(self.history.divergence[e], self.epoch)}", file=bar.fp)
                    bar.update(1)
                    bar.set_postfix(self._postfix())
                if on_epoch is not None:
                    on_epoch(self)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _early_stop(self, valid: Dataset, epochs: int) -> dict:
        """Validation after epoch ``self.epoch + 1``: members whose error rose by more than
        the threshold stop and get their best weights back; at the end of the budget every
        member does.  The test metrics that follow are those of the kept weights."""
        v_loss, v_acc = self.evaluate(valid)
        epoch = self.epoch + 1
        stopping = self.early.update(epoch, (1 - v_acc).tolist(), self._params())
        live = [e for e in range(self.net.E) if self.history.diverged_at[e] is None]
        restore = [e for e in live if e in stopping or (epoch >= epochs and self.early.stopped_at[e] is None)]
        self.early.restore(self._params(), restore)
        for e in stopping:
            self.opt.stop_member(e)
        self.history.stopped_at = list(self.early.stopped_at)
        return {"valid_loss": v_loss.clone(), "valid_acc": v_acc.clone()}

    def _mark_divergence(self, values: dict, start: dict | None = None, replay=None) -> list[int]:
        """Members whose training loss is NaN/inf, or whose weights (forward or the
        channel's) are, stop (lr factor 0) and are recorded as diverged, with the cause
        (:meth:`_explain`); metrics of members that diverged before are NaN.  ``start``:
        the training state at the start of the epoch (:meth:`_training_state`) and
        ``replay`` a callable that trains the epoch again, to find the cause.  Returns the
        members that diverged in this epoch."""
        loss = values["train_loss"]
        finite = self._finite_members()
        newly = []
        for e in range(self.net.E):
            if self.history.diverged_at[e] is not None:
                for v in values.values():
                    v[e] = math.nan
            elif not math.isfinite(float(loss[e])) or not finite[e]:
                newly.append(e)
        if newly:
            causes = self._explain(newly, start, replay, values)
            for e in newly:
                self.history.diverged_at[e] = self.epoch
                self.history.divergence[e] = causes[e]
                self.opt.stop_member(e)
        return newly

    def _finite_members(self) -> list[bool]:
        """Per member: are all its weights finite (the forward blocks' and the channel's own
        matrices)?  One reduction per tensor, once per epoch."""
        E = self.net.E
        tensors = [*self.net.parameters(),
                   *(b for b in self.channel.buffers() if b.is_floating_point() and b.dim() and b.shape[0] == E)]
        if not tensors:
            return [True] * E
        return torch.stack([torch.isfinite(t).reshape(E, -1).all(1) for t in tensors]).all(0).tolist()

    def _explain(self, members: list[int], start: dict | None, replay, values: dict) -> dict[int, dict]:
        """Why ``members`` diverged in this epoch: the epoch is replayed from ``start`` with
        :class:`DivergenceProbe` in place of :meth:`_step` (the same random streams, so the
        same minibatches and the same numbers), then the state at the end of the epoch is
        put back.  Members the replay does not explain (or every member, without
        ``start``) get the epoch and what was seen at its end."""
        found: dict[int, dict] = {}
        note = None
        if start is not None and replay is not None:
            end = self._training_state()
            probe = DivergenceProbe(self, members, self.epoch, int(start["optimizer"]["t"]))
            try:
                self._load_training_state(start)
                self._step = probe  # an instance attribute: train_epoch/train_iterations call it
                try:
                    replay()
                except ProbeDone:
                    pass
            except Exception as err:  # the cause is a diagnosis: never lose the run for it
                note = f"the replay of the epoch failed: {type(err).__name__}: {err}"
            finally:
                self.__dict__.pop("_step", None)
                self._load_training_state(end)
            found = probe.found
            if note is None:
                note = "no quantity of a step was non-finite when the epoch was replayed"
        loss = values["train_loss"]
        out = {}
        for e in members:
            if e in found:
                out[e] = found[e]
            elif not math.isfinite(float(loss[e])):
                out[e] = {"epoch": self.epoch, "step": None, "update": None, "quantity": "train loss",
                          "what": "the training loss of the epoch", **({"note": note} if note else {})}
            else:
                out[e] = {"epoch": self.epoch, "step": None, "update": None, "quantity": "weights",
                          "what": "a weight at the end of the epoch",
                          **({"note": note} if note else {})}
        return out

    def _training_state(self) -> dict:
        """A copy of what training changes (weights, the channel's and the optimizer's
        state, the random streams), enough to train an epoch again from here."""
        return clone_state(self._trained_state())

    def _trained_state(self) -> dict:
        """What training changes, as checkpoints store it (shared by :meth:`state_dict`)."""
        return {
            "net": self.net.state_dict(),
            "net_rng": self.net.rng_state(),
            "channel": self.channel.checkpoint_state(),
            "optimizer": self.opt.state_dict(),
            "order_rng": [g.get_state() for g in self._order],
            "augment_rng": [g.get_state() for g in self._augment_rng],
        }

    def _load_training_state(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.net.load_rng_state(clone_state(state["net_rng"]))
        self.channel.load_checkpoint_state(clone_state(state["channel"]))
        self.opt.load_state_dict(clone_state(state["optimizer"]))
        for g, s in zip(self._order, state["order_rng"]):
            g.set_state(s)
        for g, s in zip(self._augment_rng, state["augment_rng"]):
            g.set_state(s)

    def _postfix(self) -> dict:
        live = [e for e in range(self.net.E) if self.history.diverged_at[e] is None]
        gone = "; ".join(f"seed {s} at {divergence_text(c, short=True)}" for _, s, c in self.history.diverged())
        if not live:
            return {"status": "all diverged", "diverged": gone}
        pick = lambda m: sum(self.history.final(m)[e] for e in live) / len(live)
        post = {"loss": f"{pick('train_loss'):.4f}", "acc": f"{pick('train_acc'):.4f}"}
        test_acc = pick("test_acc")
        if not math.isnan(test_acc):
            post["test_acc"] = f"{test_acc:.4f}"
        if gone:
            post["diverged"] = gone
        return post

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            **self._trained_state(),
            "history": self.history.to_dict(),
            **({"early_stop": self.early.state_dict()} if self.early is not None else {}),
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
        if self.early is not None and "early_stop" in state:
            self.early.load_state_dict(state["early_stop"])

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        self.load_state_dict(torch.load(path, weights_only=False))
