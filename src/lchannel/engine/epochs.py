"""The minibatch loops of :class:`~lchannel.engine.train.Trainer`: an epoch as one pass
over the training set (:func:`train_epoch`) or as ``n`` updates on minibatches drawn from a
stream (:func:`train_iterations`, :mod:`.iterations`).  Each minibatch goes through the
trainer's step (``Trainer._step``: eq. 5/8's error, the learning channel's signals, the
plasticity of eq. 13), which the divergence replay replaces with its probe; the running
loss and accuracy of every member come from the outputs the steps return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..data.base import Dataset

if TYPE_CHECKING:  # the trainer calls these; they only read its fields
    from .train import Trainer


def train_epoch(trainer: Trainer, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of ``trainer`` over ``data`` in its batch order; returns the running (loss,
    accuracy) per member."""
    net, out = trainer.net, trainer.net.output_loss
    E, N, B = net.E, len(data), trainer.batch_size
    dev = net.device
    perms = [torch.randperm(N, generator=g).to(dev) for g in trainer._order]
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
            outputs.append(trainer._step(X, T))
            if (step + 1) % flush_every == 0:
                flush(min(start + B, N))
        flush(N)
    return loss_sum / N, correct / N


@torch.no_grad()
def train_iterations(trainer: Trainer, stream, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` updates of ``trainer`` on minibatches drawn from ``stream`` (``batch(B,
    generator)`` -> X, T, labels); returns the running (loss, accuracy) per member."""
    net, out = trainer.net, trainer.net.output_loss
    dev = net.device
    loss_sum = torch.zeros(net.E, dtype=torch.float64, device=dev)
    correct = torch.zeros(net.E, dtype=torch.float64, device=dev)
    for _ in range(n):
        draws = [stream.batch(trainer.batch_size, g) for g in trainer._order]
        if len(draws) == 1:
            X, T, y = draws[0]
        else:  # per_member order: member e trains on its own draw, (E, B, N)
            X, T = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
            y = None if draws[0][2] is None else torch.stack([d[2] for d in draws])
        O = trainer._step(X.to(dev, net.dtype), T.to(dev, net.dtype))
        loss_sum.add_(out.loss(O, T).sum(-1, dtype=torch.float64))
        if y is not None:
            correct.add_((out.predict(O) == y.to(dev)).sum(-1))
    count = n * trainer.batch_size
    return loss_sum / count, correct / count
