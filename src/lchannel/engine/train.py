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

The loop is this module; its parts are modules of their own: :mod:`.history` (what is
recorded), :mod:`.epochs` (the minibatch loops of an epoch), :mod:`.evaluation` (loss,
accuracy and AUC without training) and :mod:`.divergence_check` (which members diverged
and why, with :mod:`.divergence`).  Their public names are importable from here too.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

import torch

from ..data.base import Dataset
from . import epochs as _epochs
from . import evaluation as _evaluation
from .divergence import clone_state, divergence_text
from .divergence_check import mark_divergence
from .evaluation import EVAL_UNITS  # noqa: F401  (re-exported)
from .history import METRICS, History  # noqa: F401  (re-exported)
from .iterations import DatasetSampler, EarlyStopping
from .nets import Network
from .plasticity import SGD
from .rng import MemberStreams, generator

if TYPE_CHECKING:  # the loop takes any learning channel; the engine does not import channels
    from ..channels.base import LearningChannel

BATCH_ORDERS = ("shared", "per_member")


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
            self.early = EarlyStopping(early_stop, net.E)

    # -- one epoch -----------------------------------------------------------------
    def train_epoch(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over ``data``; returns the running (loss, accuracy) per member
        (:func:`lchannel.engine.epochs.train_epoch`)."""
        return _epochs.train_epoch(self, data)

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

    def train_iterations(self, stream, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` updates on minibatches drawn from ``stream`` (``batch(B, generator)`` ->
        X, T, labels); returns the running (loss, accuracy) per member
        (:func:`lchannel.engine.epochs.train_iterations`)."""
        return _epochs.train_iterations(self, stream, n)

    # -- evaluation (lchannel.engine.evaluation) ----------------------------------------
    def outputs(self, data: Dataset, chunk: int = 10000) -> torch.Tensor:
        """The network's outputs on ``data``, (E, N, N_L), in chunks as :meth:`evaluate`'s."""
        return _evaluation.outputs(self.net, data, chunk)

    def evaluate_auc(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy, ROC AUC) of every member on ``data``, for one logistic
        output unit (:func:`lchannel.engine.metrics.roc_auc`)."""
        return _evaluation.evaluate_auc(self.net, data)

    def evaluate(self, data: Dataset, chunk: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy) of every member on ``data``; accuracy is NaN without labels
        (:func:`lchannel.engine.evaluation.evaluate`, in chunks of at most ``chunk``)."""
        return _evaluation.evaluate(self.net, data, chunk)

    def _test_metrics(self, test: Dataset | None, like: tuple[torch.Tensor, torch.Tensor]):
        """(loss, accuracy) on ``test``; NaN shaped as ``like`` without a test set."""
        if test is None:
            return torch.full_like(like[0], math.nan), torch.full_like(like[1], math.nan)
        return self.evaluate(test)

    def _params(self) -> list[torch.Tensor]:
        return list(self.net.parameters())  # every forward weight and bias, member axis first

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
        stream = self._check_fit(train, test, epochs, stream, valid)
        if self.epoch == 0 and self.history.initial is None and epochs > 0:
            self._record_initial(train, test, valid)
        bar = None
        if self.progress and epochs > self.epoch:
            bar = tqdm(total=epochs, initial=self.epoch, desc=self.desc, unit="epoch", leave=True)
        try:
            while self.epoch < epochs and not self._all_stopped():
                newly = self._fit_epoch(train, test, epochs, stream, valid)
                if checkpoint is not None:
                    self.save(checkpoint)
                if bar is not None:
                    self._show_epoch(bar, newly)
                if on_epoch is not None:
                    on_epoch(self)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _check_fit(self, train: Dataset, test: Dataset | None, epochs: int, stream, valid: Dataset | None):
        """Refuse arguments :meth:`fit` cannot train with; returns the minibatch stream
        (with ``epoch_iterations`` and none given, the training set sampled with replacement)."""
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if self.early is not None and valid is None:
            raise ValueError("early_stop needs a validation sample: pass valid= to fit")
        if stream is None and self.epoch_iterations is not None:
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
        return stream

    def _record_initial(self, train: Dataset, test: Dataset | None, valid: Dataset | None) -> None:
        """Epoch 0, the untrained network, so that curves start where training starts (as
        the alignment curves do).  Evaluation draws no random numbers: the training that
        follows is unchanged."""
        tr_loss, tr_acc = self.evaluate(train)
        te_loss, te_acc = self._test_metrics(test, (tr_loss, tr_acc))
        self.history.initial = {"train_loss": tr_loss.tolist(), "train_acc": tr_acc.tolist(),
                                "test_loss": te_loss.tolist(), "test_acc": te_acc.tolist()}
        if _evaluation.is_binary(self.net, test):
            self.history.initial["test_auc"] = self.evaluate_auc(test)[2].tolist()
        if self.early is not None:
            v_loss, v_acc = self.evaluate(valid)
            self.history.initial.update(valid_loss=v_loss.tolist(), valid_acc=v_acc.tolist())
            self.early.start((1 - v_acc).tolist(), self._params())

    def _all_stopped(self) -> bool:
        """Whether every member has diverged or stopped early (nothing is left to train)."""
        stopped = self.history.stopped_at or [None] * self.net.E
        return all(d is not None or s is not None for d, s in zip(self.history.diverged_at, stopped))

    def _fit_epoch(self, train: Dataset, test: Dataset | None, epochs: int, stream, valid: Dataset | None) -> list[int]:
        """One epoch of :meth:`fit`: train, early stopping, test, divergence, one row of the
        history.  Returns the members that diverged in it."""
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
        if _evaluation.is_binary(self.net, test):
            te_loss, te_acc, te_auc = self.evaluate_auc(test)
        else:
            te_loss, te_acc = self._test_metrics(test, (tr_loss, tr_acc))
        self.epoch += 1
        values = {"train_loss": tr_loss, "train_acc": tr_acc, "test_loss": te_loss, "test_acc": te_acc}
        if te_auc is not None:
            extra["test_auc"] = te_auc
        newly = mark_divergence(self, values, start, run_epoch)
        for e, d in enumerate(self.history.diverged_at):
            if d is not None:
                for v in extra.values():
                    v[e] = math.nan
        self.history.append(self.epoch, {k: v.tolist() for k, v in values.items()}, lr,
                            time.perf_counter() - t0, {k: v.tolist() for k, v in extra.items()})
        return newly

    def _show_epoch(self, bar, newly: list[int]) -> None:
        """The progress bar after an epoch: a line that stays above the bar for every
        member that diverged in it, then the bar and its metrics."""
        for e in newly:
            bar.write(f"{self.desc}: seed {self.net.seeds[e]} diverged at "
                      f"{divergence_text(self.history.divergence[e], self.epoch)}", file=bar.fp)
        bar.update(1)
        bar.set_postfix(self._postfix())

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
