"""How well a learning channel lines up with backpropagation: angles, per member and layer.

For a network, a learning channel and a fixed probe batch (X, T), one forward pass gives
the record ``{S^h, O^h}`` and the output error ``e = T − O^L``.  On that same record:

- ``B^h``: the true backpropagated error (:class:`~lchannel.channels.Backprop`, paper 1
  eq. 3-5), so that ``−∂E/∂W^h = (1/B) Σ_b B^h_b (O^{h-1}_b)ᵀ``;
- ``I^h``: the channel's postsynaptic signal (eq. 13), with its transforms
  (quantization, dropout, ...) exactly as in training.

Metrics, each an angle in degrees in [0, 180] per member (0 = same direction, 90 =
orthogonal, i.e. no information about the gradient), for every hidden layer h:

``signal``
    ∠(I^h, B^h), both flattened over the probe batch and the layer's units.
``update``
    ∠(ΔW^h, −∇_{W^h} E): the channel's weight update ``(1/B) Σ_b I^h_b (O^{h-1}_b)ᵀ``
    against the true negative gradient.  With quantized updates (``SGD.update_bits``)
    the channel's update is quantized per example as in training.
``feedback`` (random channels only; on conv nets the chained routes only: a random
kernel against W^k, a dense route's matrix against (W^k)ᵀ)
    ∠(C^{h,k}, (W^k ⋯ W^{h+1})ᵀ): the feedback matrix carrying layer k's signal to
    layer h against the product of the transposed forward matrices it stands in for;
    for chained RBP (k = h+1) this is ∠(C^h, (W^{h+1})ᵀ), for SRBP (k = L) the
    product of all transposed forward matrices above h.  When a layer receives from
    several layers the metric is named ``feedback_from_k``.

A layer with no signal (top-layer-only, frozen layers) gives NaN.  Measuring never
changes the training: the channel's state (random streams included) is restored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
import math

import torch

from ..channels import Backprop
from ..engine.plasticity import SGD

METRICS = ("signal", "update", "feedback")


def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The angle in degrees between ``a[e]`` and ``b[e]`` for every member e (leading
    axis), all other axes flattened; NaN where either vector is zero."""
    a = a.reshape(a.shape[0], -1).double()
    b = b.reshape(b.shape[0], -1).double()
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = (a * b).sum(1) / (na * nb)
    cos = torch.where((na > 0) & (nb > 0), cos.clamp(-1.0, 1.0), torch.full_like(cos, math.nan))
    return torch.rad2deg(torch.arccos(cos))


def _forward_product_T(net, h: int, k: int) -> torch.Tensor:
    """``(W^k ⋯ W^{h+1})ᵀ = (W^{h+1})ᵀ ⋯ (W^k)ᵀ``, shape ``(E, N_h, N_k)``."""
    P = net.W(h + 1).transpose(1, 2)
    for j in range(h + 2, k + 1):
        P = torch.bmm(P, net.W(j).transpose(1, 2))
    return P


@torch.no_grad()
def alignment_angles(net, channel, X: torch.Tensor, T: torch.Tensor,
                     optimizer=None) -> dict[tuple[str, int], torch.Tensor]:
    """``{(metric, h): angles per member}`` for every hidden layer h (see module doc).

    ``channel`` must be bound to ``net``; ``optimizer`` (an :class:`~lchannel.engine.plasticity.SGD`)
    is used for quantized updates and frozen layers when given.
    """
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    saved = copy.deepcopy(channel.checkpoint_state())
    try:
        I = channel.signals(rec, e)
    finally:
        channel.load_checkpoint_state(saved)
    B = Backprop().bind(net).signals(rec, e)
    E, L = net.E, net.L
    opt = optimizer if optimizer is not None else SGD().bind(net)
    frozen = set(opt.frozen)
    nan = torch.full((E,), math.nan, dtype=torch.float64)
    out: dict[tuple[str, int], torch.Tensor] = {}
    for h in range(1, L):
        if I[h] is None:
            out[("signal", h)] = nan.clone()
            out[("update", h)] = nan.clone()
            continue
        per_neuron = opt.rule_for(I[h]).per_neuron
        # Per-synapse feedback (section 4.2 item 7) sends no per-neuron signal: only its
        # update can be compared with the gradient.
        out[("signal", h)] = angle(I[h], B[h]).cpu() if per_neuron else nan.clone()
        if h in frozen:
            out[("update", h)] = nan.clone()
        else:
            O = rec.presynaptic(h, E)
            # The optimizer's own ΔW/η (quantized per example, per-synapse, ...).
            dW = opt.direction(I[h], O, opt.lr_now(), h)[0]
            if B[h].dim() == 3:
                grad = torch.bmm(B[h].transpose(1, 2), O) / O.shape[1]
            else:  # a conv block: the convolution weight-gradient in W's layout
                grad = net.block(h).weight_update(B[h], O)[0]
            out[("update", h)] = angle(dW, grad).cpu()
    C = getattr(channel, "C", None)
    if isinstance(C, Mapping):
        per_layer: dict[int, list[int]] = {}
        for (h, k) in C:
            per_layer.setdefault(h, []).append(k)
        reference = getattr(net, "adjoint_reference", None)
        for (h, k), M in sorted(C.items()):
            name = "feedback" if len(per_layer[h]) == 1 else f"feedback_from_{k}"
            if reference is not None:
                # A block (conv) network: a chained route's kernel or matrix against the W^k
                # (or (W^k)ᵀ) it stands in for; a skip map to a conv layer has no fixed
                # forward matrix to compare with (un-pooling depends on the input).
                if k == h + 1 and isinstance(M, torch.Tensor) and M.shape == reference(k).shape:
                    out[(name, h)] = angle(M, reference(k)).cpu()
                continue
            if not (isinstance(M, torch.Tensor) and M.dim() == 3 and 1 <= h < k <= L
                    and tuple(M.shape[1:]) == (net.sizes[h], net.sizes[k])):
                continue  # a channel whose matrices are not (N_h, N_k) maps (per-synapse...)
            out[(name, h)] = angle(M, _forward_product_T(net, h, k)).cpu()
    return out


class AlignmentProbe:
    """Measures :func:`alignment_angles` on a fixed probe batch (the first ``n`` examples
    of a data set) for a :class:`~lchannel.engine.train.Trainer`; use it from ``on_epoch``."""

    def __init__(self, data, n: int = 1000):
        n = min(int(n), len(data))
        self.X = data.X[:n]
        self.T = data.T[:n]

    def __call__(self, trainer) -> list[tuple[int, str, list[float]]]:
        """``[(layer, metric, [angle per member]), ...]`` sorted by layer and metric."""
        angles = alignment_angles(trainer.net, trainer.channel, self.X, self.T, trainer.opt)
        dead = [d is not None for d in trainer.history.diverged_at]
        rows = []
        for (metric, h), v in sorted(angles.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            vals = [math.nan if dead[e] else float(x) for e, x in enumerate(v.tolist())]
            rows.append((h, metric, vals))
        return rows
