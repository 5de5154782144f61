"""The converter's algorithms as classes: how a converted layer's feedback is made, which
matrix the signal to its input travels through, and how the feedback learns.

Every mode belongs to one of three *families*, the route the error takes:

- ``bp``: through Wᵀ (autograd's own backward);
- ``rbp``: through a matrix B of W's shape that stands in for W (paper 1, eq. 6-8):
  :class:`FeedbackAlignment` (RBP, FA: B fixed random), :class:`Adaptive` (ARBP:
  ΔB = −η_c ∂loss/∂W), :class:`KolenPollack` (KP, Akrout et al. 2019: ARBP with a decay
  λ on B, ΔB = −η_c ∂loss/∂W − λB; with the same decay on W, B − W → 0),
  :class:`WeightMirror` (WM, Akrout et al. 2019: before every training pass
  B ← (1 − λ)B + η_c ξᵀ(ξWᵀ)/n with white noise ξ, so that E[ΔB] ∝ W),
  :class:`SignSymmetry` (Liao, Leibo & Poggio 2016) in biotorch's three forms,
  :class:`UniformSignFeedback` (uSF, B = s·sign(W)), :class:`FixedRandomSignFeedback`
  (frSF, B = |R|⊙sign(W) with R fixed) and :class:`BatchRandomSignFeedback` (brSF, R
  redrawn every pass);
- ``srbp``: no signal travels through any W; the error's source sends a random image
  of a vector straight to every chosen layer (paper 2, eq. 11): :class:`DirectFeedback`
  (SRBP, DFA: the output error, ∂loss/∂output·Cᵀ; ASRBP when the maps learn) and
  :class:`TargetProjection` (DRTP, Frenkel, Lefebvre & Bol 2021: the *target*, y*·Cᵀ, in
  the loss's scale; the output layer still learns from the true error).

The registry (:data:`lchannel.channels.REGISTRY`) names each mode in its entry's
``converter`` field; :func:`mode` builds one.  A mode holds no tensors: the feedback lives
in each layer's buffers (``feedback``, ``skip_feedback``), so ``state_dict`` and
``.to()`` carry it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FAMILIES = ("bp", "rbp", "srbp")


class Mode:
    """One converter algorithm.  ``family``: the route (:data:`FAMILIES`); ``needs``: the
    ``convert`` arguments it requires (``adapt_lr``: the feedback's own learning rate);
    ``uses``: the optional ones it reads (``feedback_decay``); ``compiled``: whether the
    C++ nodes may serve it (plain FA and DFA only)."""

    family = "bp"
    # The family as flags the converter reads (no string branches): the signal travels
    # through W itself (bp), through a stand-in B of W's shape (rbp), or straight from
    # the error's source to every receiving point (srbp).
    through_weight = True
    through_standin = False
    direct = False
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    compiled = False
    adaptive = False
    # the feedback distribution when convert() is given none (FeedbackInit.from_options)
    default_feedback: str | None = None

    def __init__(self, adapt_lr: float | None = None, feedback_decay: float = 0.0, scaling: str = "match"):
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
        self.adapt_lr = adapt_lr
        self.feedback_decay = feedback_decay
        self.scaling = scaling

    # -- rbp family -----------------------------------------------------------------------
    def draw(self, layer, fb, g: torch.Generator) -> None:
        """Register the layer's ``feedback`` buffer (rbp family), at the mode's scaling."""
        layer.register_buffer("feedback", rescale(draw_like(fb, layer.weight, g), layer.weight, self.scaling))

    def matrix(self, layer, channel, x: torch.Tensor) -> torch.Tensor:
        """The matrix the signal to the layer's input ``x`` travels through in this pass."""
        return layer.feedback

    def adapter(self):
        """A function ``(B, ∂loss/∂W)`` applied in backward (the feedback's learning), or None."""
        return None

    # -- srbp family ----------------------------------------------------------------------
    def source_signal(self, g: torch.Tensor, channel) -> torch.Tensor:
        """The vector, per example, that the source sends down (``(B, N_out)``); ``g`` is
        ∂loss/∂output."""
        return g

    def describe(self) -> str:
        parts = [f"adapt_lr={self.adapt_lr}"] if self.adaptive else []
        if "feedback_decay" in self.uses:
            parts.append(f"feedback_decay={self.feedback_decay}")
        return ", ".join(parts)


class Backprop(Mode):
    """BP: the signal travels through Wᵀ (eq. 3-5)."""

    family = "bp"


class FeedbackAlignment(Mode):
    """RBP (FA): a fixed random B of W's shape instead of W (paper 1, eq. 6-8)."""

    family = "rbp"
    through_weight, through_standin = False, True
    compiled = True


class Adaptive(FeedbackAlignment):
    """ARBP: B learns with the forward weights' own Hebbian product, ΔB = −η_c ∂loss/∂W,
    i.e. ΔC = η_c (O^h)ᵀ I^{h+1} (paper 1 section 3; paper 2 Theorem 7)."""

    needs = ("adapt_lr",)
    compiled = False
    adaptive = True

    def adapter(self):
        lr = self.adapt_lr
        return lambda B, gW: B.add_(gW, alpha=-lr)


class KolenPollack(Adaptive):
    """KP (Kolen & Pollack 1994; Akrout et al. 2019, eq. 16-17): B receives W's own update
    and decays like W, ``B ← (1 − λ)B − η_c ∂loss/∂W``.  Give W the same decay (the
    optimizer's ``weight_decay = λ/η``) and B − W shrinks by (1 − λ) every step."""

    uses = ("feedback_decay",)

    def adapter(self):
        lr, keep = self.adapt_lr, 1.0 - self.feedback_decay
        return lambda B, gW: B.mul_(keep).add_(gW, alpha=-lr)


class WeightMirror(FeedbackAlignment):
    """WM (Akrout et al. 2019, eq. 7 and its decay): before every training pass the layer
    is driven by white noise ξ ~ N(0, 1) (as many rows as the pass's batch), y = ξWᵀ (the
    layer's linear map, no bias), and ``B ← (1 − λ)B + η_c·yᵀξ/n``; E[yᵀξ/n] = W for a
    dense layer (for a convolution, the correlation of noise and response is W times the
    number of output positions, divided out here), so B tracks W at the rate η_c."""

    needs = ("adapt_lr",)
    uses = ("feedback_decay",)
    compiled = False
    adaptive = True

    def matrix(self, layer, channel, x):
        B = layer.feedback
        if not layer.training:
            return B  # the mirror steps between learning passes, not in evaluation
        W = layer.weight.detach()
        g = channel.stream(W.device, "mirror")
        with torch.no_grad():
            batch = x.shape[0] if x.dim() > 1 else 1
            if isinstance(layer, nn.Linear):
                xi = torch.randn((batch, W.shape[1]), generator=g, dtype=W.dtype, device=W.device)
                corr = (xi @ W.t()).t() @ xi / batch
            else:
                shape = x.shape[1:] if x.dim() == W.dim() else x.shape
                xi = torch.randn((batch, *shape), generator=g, dtype=W.dtype, device=W.device)
                with torch.enable_grad():  # the noise-response correlation is the kernel gradient
                    Wg = W.clone().requires_grad_(True)  # of <y, conv(xi, W)>, any padding mode
                    y = layer._conv_forward(xi, Wg, None)
                    corr = torch.autograd.grad(y, Wg, y.detach())[0]
                corr = corr / (batch * math.prod(y.shape[2:]))
            B.mul_(1.0 - self.feedback_decay).add_(corr, alpha=self.adapt_lr)
        return B


class SignSymmetry(FeedbackAlignment):
    """Sign-concordant feedback (Liao, Leibo & Poggio 2016), B = M ⊙ sign(W) at every
    pass (a zero weight counts as positive); the subclasses say what M is, each at the
    mode's scaling."""

    compiled = False

    def magnitudes(self, layer, channel) -> torch.Tensor:
        """M for this pass (the ``feedback`` buffer by default)."""
        return layer.feedback

    def matrix(self, layer, channel, x):
        W = layer.weight.detach()
        return self.magnitudes(layer, channel) * torch.where(W >= 0, 1.0, -1.0).to(W.dtype)


class UniformSignFeedback(SignSymmetry):
    """uSF: M = s, one number per layer: with ``scaling="distribution"`` Glorot's
    sqrt(2/(fan_in + fan_out)) times the feedback's ``scale`` (biotorch's), with "match"
    the RMS of W at conversion, with "fan_in" PyTorch's init RMS."""

    def draw(self, layer, fb, g):
        W = layer.weight
        s = TARGET_RMS[self.scaling](W)  # the RMS of s·sign(W) is s itself
        if s is None:  # "distribution": biotorch's Glorot std times the feedback's scale
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(W)
            s = math.sqrt(2.0 / (fan_in + fan_out)) * fb.scale
        layer.register_buffer("feedback", torch.as_tensor(s, dtype=W.dtype).to(W.device).detach().clone())


class FixedRandomSignFeedback(SignSymmetry):
    """frSF: M = |R|, R drawn once from the feedback distribution: by default uniform, as
    biotorch draws it (Xavier's uniform).  |R| of a uniform R varies less around its mean
    than of a normal one (coefficient of variation 0.58 against 0.76), so B = |R|⊙sign(W)
    lies closer to W's direction; measured in docs/your-own-model.md ("Against biotorch")."""

    default_feedback = "uniform"

    def draw(self, layer, fb, g):
        super().draw(layer, fb, g)
        layer.feedback.abs_()


class BatchRandomSignFeedback(FixedRandomSignFeedback):
    """brSF: M = |R_t|, R_t drawn again before every training pass from the "resample"
    stream (the engine's ``resample="sign_concordant"``)."""

    def magnitudes(self, layer, channel):
        W = layer.weight.detach()
        with torch.no_grad():
            R = draw_like(channel.feedback, W, channel.stream(W.device, "resample")).abs_()
            layer.feedback.copy_(rescale(R, W, self.scaling))
        return layer.feedback


class DirectFeedback(Mode):
    """SRBP (DFA): the output error through a fixed random C_p to every chosen layer
    (paper 2, eq. 11); ASRBP (``adaptive``): C_p learns, ΔC_p = η_c (O^p)ᵀ e."""

    family = "srbp"
    through_weight, direct = False, True
    compiled = True

    def __init__(self, adaptive: bool = False, **kw):
        super().__init__(**kw)
        self.adaptive = adaptive
        if adaptive:
            self.needs, self.compiled = ("adapt_lr",), False


class TargetProjection(Mode):
    """DRTP (Frenkel, Lefebvre & Bol 2021): every chosen layer below the output receives a
    fixed random projection of the *target* y*, ``y*·C_pᵀ`` in the loss's scale (divided
    by the batch size for a mean-reduced loss), in the place of DFA's ∂loss/∂output·C_pᵀ;
    the output layer learns from the true error.  The targets of each step are given with
    :func:`lchannel.torch.set_targets` (one-hot rows or class indices) before ``backward``."""

    family = "srbp"
    through_weight, direct = False, True
    needs = ("targets",)

    def source_signal(self, g, channel):
        T = channel.take_targets(g)
        return T / g.shape[0] if channel.reduction == "mean" else T


# The RMS a stand-in for W is scaled to (None: as drawn), by ``scaling``.
TARGET_RMS = {
    "match": lambda W: W.detach().pow(2).mean().sqrt(),  # ‖B‖_F = ‖W‖_F
    "fan_in": lambda W: 1.0 / math.sqrt(3.0 * W[0].numel()),  # PyTorch's default init of the layer
    "distribution": lambda W: None,  # the feedback distribution's own scale (the papers')
}
SCALINGS = tuple(TARGET_RMS)


def rescale(B: torch.Tensor, W: torch.Tensor, scaling: str) -> torch.Tensor:
    """A stand-in B for W at the scale ``scaling`` asks (in place; returns B):
    ``"match"``, ‖B‖_F = ‖W‖_F, so the signal a layer sends down has the size BP's would
    and does not grow or shrink geometrically with depth; ``"fan_in"``, the RMS of
    PyTorch's default initialisation of the layer, 1/sqrt(3·fan_in) (biotorch's
    "kaiming"); ``"distribution"``, as drawn (the feedback distribution's own scale: the
    papers' Glorot std for ``normal``)."""
    target = TARGET_RMS[scaling](W)
    rms = B.pow(2).mean().sqrt()
    if target is None or not rms > 0:
        return B  # as drawn, or nothing to scale (a sparse draw with n = 0)
    return B.mul_(target / rms)


def draw_like(fb, W: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random stand-in for W (RBP): drawn as the matrix C (fan_in × out) that carries the
    layer's output signal back to its inputs, the engine's C^{h} of shape (N_h, N_{h+1}),
    and laid out as W: B = Cᵀ.  Congruent feedback takes the signs of Wᵀ (section 3)."""
    M = W.detach().reshape(W.shape[0], -1)  # (out, fan_in): a conv kernel as its patch map
    fb.check(M.shape[1])
    C = fb.draw((M.shape[1], M.shape[0]), M.shape[1], M.shape[0], g, chained=True, dtype=W.dtype,
                sign_like=M.t() if fb.congruent else None)
    return C.t().reshape(W.shape).to(W.device).contiguous()


# name -> how to build its mode from convert()'s arguments
MODES = {
    "bp": lambda **kw: Backprop(**kw),
    "fa": lambda **kw: FeedbackAlignment(**kw),
    "afa": lambda **kw: Adaptive(**kw),
    "kp": lambda **kw: KolenPollack(**kw),
    "wm": lambda **kw: WeightMirror(**kw),
    "usf": lambda **kw: UniformSignFeedback(**kw),
    "frsf": lambda **kw: FixedRandomSignFeedback(**kw),
    "brsf": lambda **kw: BatchRandomSignFeedback(**kw),
    "dfa": lambda **kw: DirectFeedback(**kw),
    "adfa": lambda **kw: DirectFeedback(adaptive=True, **kw),
    "drtp": lambda **kw: TargetProjection(**kw),
}


def mode(name: str, **kw) -> Mode:
    """The converter mode registered as ``name`` (an entry's ``converter`` field)."""
    return MODES[name](**kw)
