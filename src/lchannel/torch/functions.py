"""The autograd functions of the converter.

Every weighted layer (Linear, Conv) keeps its forward pass and its local weight update,
ΔW ∝ I ⊗ O (paper 1, eq. 13): autograd's weight gradient is ``−(1/B) Σ_b I_b O_bᵀ`` for a
mean-reduced loss, whatever the channel.  What changes is the signal the layer sends to
its input (its "adjoint"):

- through Wᵀ, as autograd would (BP, eq. 3-5; plain autograd unless a transform applies);
- through a fixed random matrix (or kernel) B of W's shape instead of W (RBP, eq. 6-8;
  feedback alignment, FA): :class:`FeedbackLinearFn`, :class:`FeedbackConvFn`;
- nothing (SRBP, paper 2 eq. 11; direct feedback alignment, DFA): the layer's input is
  detached, so autograd computes its weight update and no product with Wᵀ or B at all;
  the layer below receives the output error directly through :class:`SkipSource`.

:class:`SkipSource` marks the error's source (the model output): its backward receives
∂loss/∂output and hands each receiving point its own random image of it, ``e Cᵀ``.

These are the reference.  Without transforms and adaptation, eager mode runs their C++
twins instead (``nodes.cpp``, :mod:`lchannel.torch.native`), bit-identical.
"""

from __future__ import annotations

import torch
from torch.autograd import Function


def _weight_grads(ctx, g, x):
    """∂loss/∂W and ∂loss/∂b of a linear map, ``gᵀ x`` and ``Σ g`` over every leading axis."""
    g2 = g.reshape(-1, g.shape[-1])
    gW = g2.t().mm(x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] or ctx.adapt else None
    gb = g2.sum(0) if ctx.needs_input_grad[2] else None
    return gW, gb


class FeedbackLinearFn(Function):
    """``y = x Wᵀ + b``; backward: ``∂x = g B`` (B = W for BP, random for RBP, then the
    signal transforms), ``∂W = gᵀ x``, ``∂b = Σ g``.  With ``adapt`` (a function of B and
    ∂W, :meth:`lchannel.torch.modes.Mode.adapter`) the feedback then learns: ARBP's
    ΔB = −η_c·∂W, i.e. ΔC = η_c (O^h)ᵀ I^{h+1} (paper 1 section 3; paper 2, Theorem 7: the
    feedback follows the forward weights' update), KP's decayed form."""

    @staticmethod
    def forward(ctx, x, W, b, B, channel, adapt):
        ctx.save_for_backward(x, B)
        ctx.channel, ctx.adapt = channel, adapt
        return torch.nn.functional.linear(x, W, b)

    @staticmethod
    def backward(ctx, g):
        x, B = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            gx = ctx.channel.transform_signal(g.matmul(B))
        gW, gb = _weight_grads(ctx, g, x)
        if ctx.adapt:
            ctx.adapt(B, gW)
        return gx, gW if ctx.needs_input_grad[1] else None, gb, None, None, None


class FeedbackConvFn(Function):
    """An N-d convolution (any stride, padding, dilation, groups); backward: ``∂x`` is the
    transposed convolution with the kernel B (W for BP, random for RBP), ``∂W`` the usual
    correlation of input and output gradient, which does not depend on the kernel: one
    ``convolution_backward`` call gives both.  ARBP and KP adapt B as in FeedbackLinearFn."""

    @staticmethod
    def forward(ctx, x, W, b, B, channel, adapt, stride, padding, dilation, groups):
        ctx.save_for_backward(x, B)
        ctx.channel, ctx.adapt = channel, adapt
        ctx.conf = (stride, padding, dilation, groups, None if b is None else [b.shape[0]])
        conv = (None, torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)[x.dim() - 2]
        return conv(x, W, b, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, g):
        x, K = ctx.saved_tensors
        stride, padding, dilation, groups, bias_sizes = ctx.conf
        need_x = ctx.needs_input_grad[0]
        need_W = ctx.needs_input_grad[1] or bool(ctx.adapt)
        gx, gW, gb = torch.ops.aten.convolution_backward(
            g, x, K, bias_sizes, stride, padding, dilation, False, [0] * len(stride), groups,
            [need_x, need_W, ctx.needs_input_grad[2]])
        if need_x:
            gx = ctx.channel.transform_signal(gx)
        if ctx.adapt:
            ctx.adapt(K, gW)
        return (gx, gW if ctx.needs_input_grad[1] else None, gb,
                None, None, None, None, None, None, None)


class SkipSource(Function):
    """The error's source for SRBP (paper 2 eq. 11): identity in the forward pass; its
    backward takes g = ∂loss/∂output (= −(T − O)/B for a mean-reduced softmax
    cross-entropy, eq. 5) and sends every receiving point p the signal ``g C_pᵀ``, with
    C_p fixed random of shape (values per example at p, outputs per example).  With
    ``adapt_lr`` (ASRBP) each C_p then learns by ΔC_p = η_c (O^p)ᵀ e / B = −η_c (O^p)ᵀ g."""

    @staticmethod
    def forward(ctx, channel, feedbacks, adapt_lr, y, *points):
        ctx.channel, ctx.feedbacks, ctx.adapt = channel, feedbacks, adapt_lr
        ctx.shapes = [p.shape for p in points]
        if adapt_lr:
            ctx.save_for_backward(*points)
        return y.view_as(y)

    @staticmethod
    def backward(ctx, g):
        gL = g if g.dim() == 2 else g.reshape(g.shape[0], -1)  # (B, N_L): ∂loss/∂output
        out = [None] * len(ctx.shapes)
        transform = ctx.channel.transform is not None
        # Bottom-up recording order reversed: the learning channel's order, top layer first
        # (the order the engine draws channel-dropout masks in).
        # DFA sends ∂loss/∂output; DRTP the targets in the loss's scale (modes.py).
        sent = ctx.channel.mode.source_signal(gL, ctx.channel)
        for i in reversed(range(len(out))):
            J = sent.mm(ctx.feedbacks[i].t())
            if len(ctx.shapes[i]) != 2:
                J = J.view(ctx.shapes[i])
            out[i] = ctx.channel.transform_signal(J) if transform else J
        if ctx.adapt:
            for P, C in zip(ctx.saved_tensors, ctx.feedbacks):
                C.addmm_(P.reshape(P.shape[0], -1).t(), gL, alpha=-ctx.adapt)
        return (None, None, None, g, *out)


class StraightThrough(Function):
    """``y = f(x)`` forward, ``∂x = ∂y`` backward: the derivative of an activation left out
    (the papers' "no-f'" variants, e.g. RBP (no f'), paper 1 section 4.2)."""

    @staticmethod
    def forward(ctx, x, y):
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        return g, None
