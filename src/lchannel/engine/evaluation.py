"""Evaluation of a population on a data set, without training: outputs, mean loss and
accuracy of every member (and ROC AUC for one logistic output), in chunks of examples
that keep one layer's activity of all members at a bounded size (:data:`EVAL_UNITS`).
Evaluation draws no random numbers, so it never changes the training that follows."""

from __future__ import annotations

import math

import torch

from ..data.base import Dataset
from .metrics import roc_auc
from .nets import Network

# Evaluation holds at most about this many units of one layer per member at once (2^24
# floats, 64 MB): dense nets up to 1,677 units wide keep chunks of 10,000 examples; paper
# 1's conv net (65,536 units after its first conv) evaluates 256 images at a time, which
# measured faster than 1,024 (0.56 against 0.61 ms per image: the maps stay in cache).
EVAL_UNITS = 1 << 24


def eval_chunk(net: Network, chunk: int) -> int:
    """At most ``chunk`` examples at once, fewer for wide layers (:data:`EVAL_UNITS`)."""
    return max(1, min(chunk, EVAL_UNITS // max(net.sizes)))


@torch.no_grad()
def outputs(net: Network, data: Dataset, chunk: int = 10000) -> torch.Tensor:
    """The network's outputs on ``data``, (E, N, N_L), in chunks as :func:`evaluate`'s."""
    chunk = eval_chunk(net, chunk)
    return torch.cat([net.output(data.X[i:i + chunk]) for i in range(0, len(data), chunk)], 1)


def evaluate_auc(net: Network, data: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, accuracy, ROC AUC) of every member on ``data``, for one logistic
    output unit (:func:`lchannel.engine.metrics.roc_auc`)."""
    O = outputs(net, data)
    out = net.output_loss
    loss = out.loss(O, data.T).sum(-1, dtype=torch.float64) / len(data)
    acc = (out.predict(O) == data.labels).sum(-1, dtype=torch.float64) / len(data)
    return loss, acc, roc_auc(O[..., 0], data.labels).to(loss.device)


def is_binary(net: Network, data: Dataset | None) -> bool:
    """Whether ``data`` is labelled and ``net`` has one output unit (then the AUC is recorded)."""
    return data is not None and data.labels is not None and net.sizes[-1] == 1


@torch.no_grad()
def evaluate(net: Network, data: Dataset, chunk: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, accuracy) of every member on ``data``; accuracy is NaN without labels.
    Chunks of at most ``chunk`` examples, fewer for wide layers (a conv layer's output
    has ~65,000 units per example: 10,000 at once would take gigabytes)."""
    out = net.output_loss
    chunk = eval_chunk(net, chunk)
    loss_sum = torch.zeros(net.E, dtype=torch.float64, device=net.device)
    correct = torch.zeros(net.E, dtype=torch.float64, device=net.device)
    for i in range(0, len(data), chunk):
        O = net.output(data.X[i:i + chunk])
        loss_sum += out.loss(O, data.T[i:i + chunk]).sum(-1)
        if data.labels is not None:
            correct += (out.predict(O) == data.labels[i:i + chunk]).sum(-1)
    acc = correct / len(data) if data.labels is not None else torch.full_like(correct, math.nan)
    return loss_sum / len(data), acc
