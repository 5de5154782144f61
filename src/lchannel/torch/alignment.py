"""How far a converted model's learning channel is from backprop, measured on one batch.

For every chosen layer, from one pass through the channel and one through true BP (the
same model, the same batch, the same random state):

``update``  ∠(∂W through the channel, ∂W through BP): the angle between the weight
            updates (paper 1, eq. 13 against eq. 3-5), in degrees;
``signal``  ∠(signal reaching the layer's output through the channel, BP's ∂loss/∂S);
``feedback`` (rbp/arbp) ∠(B, W): the feedback kernel against the weights it stands in for
            (it falls as the forward weights align with the feedback, paper 1 section 3).

0° is the same direction and 90° carries no information about the gradient.  Measuring
never changes training: buffers (batch-norm statistics, adaptive feedback), the random
state and ``.grad`` are as they were.
"""

from __future__ import annotations

import math

import torch

from ..report.alignment import angle
from .channel import channel_of


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(angle(a.reshape(1, -1), b.reshape(1, -1))[0])


def _pass(model, ch, batch, loss_fn, bp: bool):
    """Weight gradients and output signals of the chosen layers, through BP or the channel."""
    x, target = batch
    weights = [(n, m) for n, m in ch.layers if m.weight.requires_grad]
    ch.measuring_bp, ch.capture = bp, {}
    try:
        loss = loss_fn(model(x), target)
        grads = torch.autograd.grad(loss, [m.weight for _, m in weights], allow_unused=True)
        signals = {m: torch.cat([s.reshape(-1) for s in ss]) for m, ss in ch.capture.items()}
    finally:
        ch.measuring_bp, ch.capture = False, None
    return {n: (gW, signals.get(m)) for (n, m), gW in zip(weights, grads)}


def alignment(model: torch.nn.Module, batch, loss_fn) -> dict[str, dict[str, float]]:
    """``{layer name: {"update": degrees, "signal": degrees[, "feedback": degrees]}}`` for
    every converted layer with trainable weights; ``batch`` is ``(inputs, targets)`` and
    ``loss_fn(model(inputs), targets)`` the training loss.  NaN where a layer gets no
    signal (e.g. an SRBP layer that is not a receiver)."""
    ch = channel_of(model)
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError("batch must be a pair (inputs, targets)")
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    gens = {k: g.get_state() for k, g in ch._generators.items()}
    results = []
    try:
        for bp in (False, True):
            # The same random state for both passes (dropout masks), and none consumed.
            with torch.random.fork_rng(devices=devices):
                results.append(_pass(model, ch, batch, loss_fn, bp))
            with torch.no_grad():
                for b, v in saved:
                    b.copy_(v)
    finally:
        for k, s in gens.items():
            ch._generators[k].set_state(s)
    out = {}
    for name, (gW, sig) in results[0].items():
        gW_bp, sig_bp = results[1][name]
        row = {"update": math.nan if gW is None or gW_bp is None else _angle(gW, gW_bp),
               "signal": math.nan if sig is None or sig_bp is None else _angle(sig, sig_bp)}
        layer = dict(ch.layers)[name]
        if "feedback" in layer._buffers:
            row["feedback"] = _angle(layer.feedback, layer.weight.detach())
        out[name] = row
    return out
