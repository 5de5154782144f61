"""Converted layers: ``nn.Linear`` and ``nn.Conv{1,2,3}d`` whose backward goes through the
learning channel.

:func:`lchannel.torch.convert` swaps the class of each chosen layer *in place* for the
subclass below: parameters, names, ``state_dict`` keys, ``isinstance`` checks and the
user's references to the layer all stay as they were; the layer gains buffers
``feedback`` (RBP: a random matrix or kernel of W's shape) or ``skip_feedback`` (SRBP:
the map from the output error to the point this layer receives it at).
"""

from __future__ import annotations

import torch
from torch import nn

from .functions import FeedbackConvFn, FeedbackLinearFn


class ChannelLayer:
    """What the converted layers share: which matrix the input signal travels through,
    and recording the receiving point of SRBP (the layer's input, or its output for the
    no-f' form)."""

    lc_channel = None  # the model's ModuleChannel, set by convert()

    def _route(self, x):
        """The matrix the input-gradient travels through, or None (SRBP: nothing travels).
        An input that needs no gradient (the first layer, fed with data) sends nothing, and
        the channel's matrix is not made for it (a weight mirror does not step for it)."""
        ch = self.lc_channel
        if ch.measuring_bp or ch.mode.through_weight or not x.requires_grad:
            return self.weight
        if ch.mode.direct:
            return None
        return ch.mode.matrix(self, ch, x)

    def _adapter(self):
        """The feedback's learning in backward (ARBP, KP), or None."""
        ch = self.lc_channel
        return ch.mode.adapter() if (ch.mode.through_standin and not ch.measuring_bp) else None

    def _record(self, t: torch.Tensor) -> None:
        ch = self.lc_channel
        if ch.probing is not None:
            ch.probing.append((self, t))
        elif "skip_feedback" in self._buffers and not ch.measuring_bp and t.requires_grad:
            ch.points.append((self, t))

    def forward(self, x):
        ch = self.lc_channel
        if ch.lean:
            # SRBP training pass (no probe, no BP measurement, no capture): the input is cut
            # from the graph and the receiving point recorded, nothing else.
            y = self._native(x.detach())
            t = x if ch.point_at == "input" else y
            if t.requires_grad and "skip_feedback" in self._buffers:
                ch.points.append((self, t))
            return y
        if ch.point_at == "input":
            self._record(x)
        route = self._route(x)
        if route is None:
            # SRBP: the input is cut from the graph, so autograd computes the local weight
            # update and no product through Wᵀ; the layer below hears from SkipSource.
            y = self._native(x.detach())
        elif not x.requires_grad or (route is self.weight and (ch.transform is None or ch.measuring_bp)):
            # No signal to send below (e.g. the first layer, fed with data), or BP without
            # transforms: autograd's own backward is the channel's.
            y = self._native(x)
        else:
            y = self._apply_channel(x, route, self._adapter())
        if ch.capture is not None and y.requires_grad:
            y.register_hook(lambda g, layer=self: ch.capture.setdefault(layer, []).append(g))
        if ch.point_at == "output":
            self._record(y)
        return y


class FeedbackLinear(ChannelLayer, nn.Linear):
    """``nn.Linear`` learning through the channel (RBP eq. 6-8, SRBP paper 2 eq. 11)."""

    _native = nn.Linear.forward

    def _apply_channel(self, x, B, adapt):
        nodes = self.lc_channel.compiled()
        if nodes is not None:  # plain RBP: the compiled node
            return nodes.feedback_linear(x, self.weight, self.bias, B)
        return FeedbackLinearFn.apply(x, self.weight, self.bias, B, self.lc_channel, adapt)


class _FeedbackConv(ChannelLayer):
    def _apply_channel(self, x, B, adapt):
        if x.dim() == self.weight.dim() - 1:  # an unbatched input: a batch of one
            return self._apply_channel(x.unsqueeze(0), B, adapt).squeeze(0)
        padding = self.padding
        if self.padding_mode != "zeros" or isinstance(padding, str):
            # Non-zero padding modes and 'same' padding: pad explicitly (autograd carries
            # the signal back through the pad), then convolve without padding.
            if padding != "valid":
                mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
                x = nn.functional.pad(x, self._reversed_padding_repeated_twice, mode=mode)
            padding = (0,) * len(self.stride)
        conf = (list(self.stride), list(padding), list(self.dilation), self.groups)
        nodes = self.lc_channel.compiled()
        if nodes is not None:  # plain RBP: the compiled node
            return nodes.feedback_conv(x, self.weight, self.bias, B, *conf)
        return FeedbackConvFn.apply(x, self.weight, self.bias, B, self.lc_channel, adapt, *conf)


class FeedbackConv1d(_FeedbackConv, nn.Conv1d):
    """``nn.Conv1d`` learning through the channel."""

    _native = nn.Conv1d.forward


class FeedbackConv2d(_FeedbackConv, nn.Conv2d):
    """``nn.Conv2d`` learning through the channel: RBP sends the signal back through the
    transposed convolution with a random kernel of W's shape (same stride, padding,
    dilation and groups)."""

    _native = nn.Conv2d.forward


class FeedbackConv3d(_FeedbackConv, nn.Conv3d):
    """``nn.Conv3d`` learning through the channel."""

    _native = nn.Conv3d.forward


CONVERTED: dict[type, type] = {
    nn.Linear: FeedbackLinear, nn.Conv1d: FeedbackConv1d, nn.Conv2d: FeedbackConv2d, nn.Conv3d: FeedbackConv3d,
}
