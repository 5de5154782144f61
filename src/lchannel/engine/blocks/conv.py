"""The convolutional block of the forward channel, Conv2d (weighted), with the member axis
E first (paper 1, section 4.3); the weightless ones are :mod:`.pool` and :mod:`.flatten`.

A :class:`Conv2d` knows the same four things as :class:`~lchannel.engine.blocks.dense.Dense`:

``forward(O_prev)``
    S^h = W^h ⋆ O^{h-1} + b^h (a cross-correlation, as ``torch.nn.functional.conv2d``),
    O^h = f(S^h); signals have shape ``(E, B, C, H, W)``.
``adjoint(G)``
    the signal at the output carried to the input through the transposed convolution
    with W (BP's route, eq. 4 with (W^h)ᵀ the transposed convolution).
``random_adjoint(...)``
    a random kernel of W's shape ``(C_out, C_in, K, K)`` drawn with the conv's fan-in
    C_in·K·K and fan-out C_out·K·K; the route applies it with the same transposed
    convolution (RBP, eq. 6-8).
``weight_update(I, O_prev)``
    eq. 13 for shared weights: ΔW/η = (1/B) Σ_b Σ_positions I_b(p) O_b(p + ·), the
    convolution weight-gradient, and Δb/η = (1/B) Σ_b Σ_p I_b(p) (the bias is the weight
    of the unit clamped to one at every position).

Layout: a conv layer's feature maps of all E members are **one channels-last tensor
with the members as channel groups**, ``(B, E·C, H, W)`` stored as ``(B, H, W, E, C)``
(:func:`grouped`); the record and the learning channels see it through the view
``(E, B, C, H, W)`` (:func:`members`), so outside this module only
``ConvRecord.arrive`` knows the layout (it puts a skip map's signal into it).  Member
e's convolution is group e of one grouped ``conv2d`` (``groups = E``; a shared input,
the usual first layer, is one ``conv2d`` with E·C_out output channels), its transposed
convolution and weight gradient group e of one ``convolution_backward``, and pooling, un-pooling and the transfer functions are one
call over all members.  Channels-last is what the CPU's oneDNN kernels compute in
(paper net, batch 128, two threads: first conv 27 → 17 ms, 3×3/2 max-pooling with
argmax 32 → 14 ms; ``benchmarks/bench_cifar.py``), and the grouped form writes no
per-member copies.
A member's result equals a single run with its seed **within float rounding**, not
bit for bit: the grouped kernel blocks its sums as it chooses (tested in float64).

The transposed convolution and the weight gradient are ``aten.convolution_backward``,
the kernels autograd itself calls for ``nn.Conv2d``; max-pooling records its argmax
(``return_indices``) and un-pools with ``max_pool2d_with_indices_backward``, which adds
the contributions of overlapping windows (3×3 windows at stride 2 overlap).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..activations import Activation
from ..blockspec import BlockSpec, Piece, block_kind, window
from .layout import _CL, grouped, members
from .standins import TORCH_ACTIVATIONS, draw_feedback

_conv_backward = torch.ops.aten.convolution_backward


def _piece(where: str, m: re.Match, shape: tuple, specs: list) -> list[BlockSpec]:
    """``conv<C>k<K>[s<S>][p<P>]``: C output channels, K×K kernel, stride S (default 1),
    zero padding P (default (K−1)//2: "same" size for odd K at stride 1)."""
    C, K = int(m[1]), int(m[2])
    S = int(m[3]) if m[3] is not None else 1
    P = int(m[4]) if m[4] is not None else (K - 1) // 2
    out = window(where, shape, C, K, S, P)
    return [BlockSpec("conv", m[0], shape, out, channels=C, kernel=K, stride=S, padding=P)]


def _conv_input(O_prev: torch.Tensor, E: int) -> tuple[torch.Tensor, int]:
    """A conv block's input as the grouped convolution takes it, with its ``groups``: one
    input shared by every member (``(B, C, H, W)``, or expanded with a zero member stride)
    is one channels-last batch convolved with all E·C_out kernels (groups 1); per-member
    inputs are the members as channel groups (groups E)."""
    if O_prev.dim() == 4:
        return O_prev.contiguous(memory_format=_CL), 1
    if O_prev.stride(0) == 0:
        return O_prev[0].contiguous(memory_format=_CL), 1
    return grouped(O_prev), E


@block_kind
class Conv2d(nn.Module):
    """E convolution layers ``S = W ⋆ O_prev + b``, ``O = f(S)`` with W ``(E, C_out, C_in, K, K)``.

    weight: the initial W; the bias ``(E, C_out)`` starts at zero.
    in_shape: ``(C_in, H, W)`` of one example's input.
    stride, padding: of the convolution (zero padding).
    activation: the transfer function f (identity, logistic, tanh, relu).
    """

    grammar = Piece("conv", "conv<C>k<K>[s<S>][p<P>]", re.compile(r"conv(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?"),
                    _piece, image_input=True, rank=0, weighted=True,
                    weight_shape=lambda s: (s.channels, s.in_shape[0], s.kernel, s.kernel),
                    fan_in=lambda s: s.in_shape[0] * s.kernel * s.kernel,
                    fan_out=lambda s: s.channels * s.kernel * s.kernel,
                    multiplications=lambda s: s.n_out * s.fan_in)

    @classmethod
    def from_spec(cls, spec: BlockSpec, weight: torch.Tensor, activation: Activation | None = None,
                  output=None) -> "Conv2d":
        """The block of a parsed piece with its initial ``weight`` (E, *spec.weight_shape)."""
        return cls(weight, spec.in_shape, spec.stride, spec.padding, activation)

    def __init__(self, weight: torch.Tensor, in_shape, stride: int = 1, padding: int = 0,
                 activation: Activation | None = None):
        super().__init__()
        if weight.dim() != 5 or weight.shape[3] != weight.shape[4]:
            raise ValueError(f"Conv2d weight must have shape (E, C_out, C_in, K, K), got {tuple(weight.shape)}")
        if activation is None:
            raise ValueError("Conv2d needs a transfer function (a conv block cannot be the output layer)")
        E, C_out, C_in, K, _ = weight.shape
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3 or in_shape[0] != C_in:
            raise ValueError(f"Conv2d in_shape must be (C_in={C_in}, H, W), got {in_shape}")
        self.weight = nn.Parameter(weight, requires_grad=False)  # W^h (E, C_out, C_in, K, K)
        self.bias = nn.Parameter(torch.zeros(E, C_out, dtype=weight.dtype, device=weight.device),
                                 requires_grad=False)  # b^h (E, C_out)
        self.activation = activation
        self.output = None
        self.in_shape = in_shape
        self.stride, self.padding = int(stride), int(padding)
        H, W = in_shape[1:]
        self.out_shape = (C_out, (H + 2 * self.padding - K) // self.stride + 1,
                          (W + 2 * self.padding - K) // self.stride + 1)
        self._cache_views()

    def _cache_views(self) -> None:
        self._W = self.weight.detach()
        self._b = self.bias.detach()

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        self._cache_views()
        return out

    @property
    def kernel(self) -> int:
        return self.weight.shape[3]

    @property
    def n_in(self) -> int:
        return self.in_shape[0] * self.in_shape[1] * self.in_shape[2]

    @property
    def n_out(self) -> int:
        return self.out_shape[0] * self.out_shape[1] * self.out_shape[2]

    @property
    def fan_in(self) -> int:
        """C_in·K·K: the inputs of one unit (Glorot's fan-in, sparse feedback's density base)."""
        return self.weight.shape[2] * self.kernel ** 2

    @property
    def fan_out(self) -> int:
        """C_out·K·K (Glorot's fan-out)."""
        return self.weight.shape[1] * self.kernel ** 2

    def _geometry(self):
        return [self.stride] * 2, [self.padding] * 2, [1, 1]

    # -- forward channel --------------------------------------------------------------
    def forward(self, O_prev: torch.Tensor, keep_S: bool = True) -> tuple[torch.Tensor | None, torch.Tensor, None]:
        """``(S, O, None)`` for ``O_prev`` ``(E, B, C_in, H, W)`` or shared ``(B, C_in, H, W)``.

        ``keep_S=False`` (the network's training pass) computes O in place in S's buffer
        and returns ``(None, O, None)``: the learning channel needs only O = f(S) for the
        named transfer functions (f' from O), and not keeping S saves one feature map per
        layer (a few % of a step on the paper's net, from memory traffic)."""
        W, b = self._W, self._b
        E = W.shape[0]
        X, groups = _conv_input(O_prev, E)
        S = F.conv2d(X, W.reshape(E * W.shape[1], *W.shape[2:]), b.reshape(-1), self.stride, self.padding, 1,
                     groups)
        if not keep_S and not S.requires_grad:
            O = self.activation.fused_(S)
            if O is not None:
                return None, members(O, E), None
        return members(S, E), members(transfer(self.activation, S), E), None

    def pre_activation(self, Z: torch.Tensor) -> torch.Tensor:
        """S (the conv block keeps S itself)."""
        return Z

    # -- learning channel routes ------------------------------------------------------------
    def transposed(self, G: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """``G`` ``(E, B, C_out, H', W')`` through the transposed convolution with kernels
        ``K`` ``(E, C_out, C_in, K, K)``: ``(E, B, C_in, H, W)``."""
        stride, padding, dilation = self._geometry()
        E, B = G.shape[0], G.shape[1]
        like = G.new_empty(1).expand(B, E * self.in_shape[0], *self.in_shape[1:])
        # A channels-last kernel makes oneDNN keep the channels-last layout (``like`` only
        # gives the shape); the copy is of the kernel, |W| numbers.
        Kg = K.reshape(E * K.shape[1], *K.shape[2:]).contiguous(memory_format=_CL)
        J = _conv_backward(grouped(G), like, Kg, None, stride, padding, dilation, False, [0, 0], E,
                           (True, False, False))[0]
        return members(J, E)

    def adjoint(self, G: torch.Tensor) -> torch.Tensor:
        """BP's route: the transposed convolution with W (the VJP of the convolution)."""
        return self.transposed(G, self._W)

    def random_adjoint(self, feedback, generators, chained: bool, sign_like: torch.Tensor | None = None,
                       synapses: int | None = None) -> torch.Tensor:
        """RBP's route: a random kernel of W's shape ``(E, C_out, C_in, K, K)``, one draw per
        member, with the conv's fan-in C_in·K·K and fan-out C_out·K·K (``sign_like``, for
        congruent feedback, is W itself: the kernel stands in for W in the transposed
        convolution)."""
        if synapses is not None:
            raise ValueError("per_synapse feedback is not defined for conv layers (a conv weight is shared by "
                             "every position, so it has no single synapse to give its own feedback)")
        return draw_feedback(feedback, tuple(self.weight.shape[1:]), self.fan_in, self.fan_out, generators,
                             chained, self.weight.dtype, self.weight.device, sign_like)

    # -- plasticity (eq. 13) ----------------------------------------------------------------
    def _weight_grad(self, I: torch.Tensor, O_prev: torch.Tensor):
        """(Σ_b ΔW_b, Σ_b Δb_b) of every member, ``(E, C_out, C_in, K, K)`` and ``(E, C_out)``:
        the convolution weight-gradient of the batch, one grouped call."""
        stride, padding, dilation = self._geometry()
        E, C_out = self._W.shape[:2]
        X, groups = _conv_input(O_prev, E)
        W = self._W.reshape(E * C_out, *self._W.shape[2:])
        _, dW, db = _conv_backward(grouped(I), X, W, [E * C_out], stride, padding, dilation, False,
                                   [0, 0], groups, (False, True, True))
        return dW.reshape(self._W.shape), db.view(E, C_out)

    def weight_update(self, I: torch.Tensor, O_prev: torch.Tensor, per_example=None,
                      lr: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ΔW, Δb)/η``: the minibatch means of the conv weight-gradient for ``I``
        ``(E, B, C_out, H', W')`` and ``O_prev`` ``(E, B, C_in, H, W)`` (eq. 13).

        ``per_example`` (eq. 19's :class:`~lchannel.engine.quantize.Quantizer`) is applied to each
        example's own update η ΔW_b (or ΔW_b, as its reading says) before the mean or sum
        (section 5.2).  Cost: the per-example weight gradients are
        one grouped convolution (the examples as groups) of the same multiplications as
        the batch gradient, but it writes B kernels (B·|W| numbers) instead of one; it is
        done in chunks of examples to bound memory (~8 MB per chunk)."""
        E, B = I.shape[0], I.shape[1]
        if per_example is None:
            dW, db = self._weight_grad(I, O_prev)
            return dW.div_(B), db.div_(B)
        stride, padding, dilation = self._geometry()
        C_out, C_in, K = self.weight.shape[1], self.weight.shape[2], self.kernel
        chunk = max(1, (1 << 21) // (C_out * C_in * K * K))
        dW = torch.zeros_like(self._W)
        s = per_example.reading.scale(lr)  # η inside eq. 19, or 1
        for e in range(E):
            for b0 in range(0, B, chunk):
                Ib, Ob = I[e, b0:b0 + chunk], O_prev[e, b0:b0 + chunk]
                n = Ib.shape[0]
                # Examples as groups: (1, n·C_out, H', W') against (1, n·C_in, H, W).
                like = Ib.new_empty(1).expand(n * C_out, C_in, K, K)
                u = _conv_backward(Ib.reshape(1, n * C_out, *Ib.shape[2:]), Ob.reshape(1, n * C_in, *Ob.shape[2:]),
                                   like, None, stride, padding, dilation, False, [0, 0], n,
                                   (False, True, False))[1].view(n, C_out, C_in, K, K)
                dW[e].add_(per_example(u.mul_(s)).sum(0))
        return per_example.from_sum(dW, B, lr), per_example.examples_direction(I.sum((3, 4)), lr)

    def apply_update_(self, I: torch.Tensor, O_prev: torch.Tensor, lr: float) -> None:
        """W += η (1/B) ΣΔW_b, b += η (1/B) ΣΔb_b in place."""
        dW, db = self._weight_grad(I, O_prev)
        self._W.add_(dW, alpha=lr / I.shape[1])
        self._b.add_(db, alpha=lr / I.shape[1])

    def add_(self, dW: torch.Tensor, db: torch.Tensor, alpha: float) -> None:
        self._W.add_(dW, alpha=alpha)
        self._b.add_(db, alpha=alpha)

    # -- members and export -------------------------------------------------------------------
    def member(self, e: int) -> "Conv2d":
        block = Conv2d(self.weight[e:e + 1].detach().clone(), self.in_shape, self.stride, self.padding,
                       self.activation)
        block._b.copy_(self._b[e:e + 1])
        return block

    def to_torch(self, e: int) -> list[nn.Module]:
        """Member ``e`` as ``nn.Conv2d`` and its activation module."""
        C_out, C_in, K = self.weight.shape[1], self.weight.shape[2], self.kernel
        conv = nn.Conv2d(C_in, C_out, K, self.stride, self.padding, dtype=self.weight.dtype,
                         device=self.weight.device)
        with torch.no_grad():
            conv.weight.copy_(self._W[e])
            conv.bias.copy_(self._b[e])
        return [conv, TORCH_ACTIVATIONS[self.activation.name]()]

    def extra_repr(self) -> str:
        E, C_out, C_in, K, _ = self.weight.shape
        return (f"members={E}, in={self.in_shape}, out_channels={C_out}, kernel={K}, stride={self.stride}, "
                f"padding={self.padding}, activation={self.activation.name}")


def transfer(f: Activation, S: torch.Tensor) -> torch.Tensor:
    """``f(S)`` in one kernel where ``f`` has one (:meth:`Activation.fused`), by ``f`` itself
    when autograd is recording."""
    return f(S) if S.requires_grad else f.fused(S)


def times_derivative(f: Activation, J: torch.Tensor, S: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``J ⊙ f'(S)`` given ``A = f(S)``, one kernel for the activations that have one."""
    if f.fused_derivative:
        return f.fused_times_derivative(J, A)
    return f.times_derivative(J, S if f.uses_S else None, A)
