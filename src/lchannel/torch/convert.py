"""``convert(model, "rbp")``: make any ``torch.nn.Module`` learn through a learning channel.

The user's model, loss, optimizer and training loop stay as they are (``loss.backward()``,
any ``torch.optim`` optimizer, any device, ``state_dict``).  Each chosen layer (Linear,
Conv1d/2d/3d) keeps its forward pass and its local weight update I ⊗ O (paper 1,
eq. 13); the learning channel decides how the output error reaches it:

=========  ===================================================================  ==============
name       signal reaching the chosen layers                                    a.k.a.
=========  ===================================================================  ==============
bp         through Wᵀ (autograd's own, eq. 3-5)                                  backprop
rbp        through a fixed random B of W's shape instead of W (eq. 6-8)          fa
arbp       rbp, and B learns: ΔB = −adapt_lr ∂loss/∂W (ΔC = η (O^h)ᵀ I^{h+1})    adaptive FA
kp         arbp with a decay: B ← (1 − λ)B − adapt_lr ∂loss/∂W                   Kolen-Pollack
wm         B ← (1 − λ)B + adapt_lr ξᵀ(ξWᵀ)/n before every pass (noise ξ)         weight mirror
usf        B = s·sign(W), s Glorot's std (biotorch's scaling)                   sign symmetry
frsf       B = |R|⊙sign(W), R fixed                                             sign symmetry
brsf       B = |R|⊙sign(W), R redrawn every pass                                sign symmetry
srbp       the output error, through a fixed random map C_p, straight to the     dfa
           input of every chosen layer; nothing travels through Wᵀ (paper 2
           eq. 11); the local derivative f' is applied on the way down
asrbp      srbp, and C_p learns: ΔC_p = η (O^p)ᵀ e                                adaptive DFA
drtp       srbp with the *target* y* in place of the error (set_targets)        DRTP
*-nof      no f': the rbp-like forms skip the derivative of every activation
           module; srbp/drtp deliver the signal to each chosen layer's *output*
=========  ===================================================================  ==============

The names, their aliases and which engine class each corresponds to are entries of the
one algorithm registry (:data:`lchannel.channels.REGISTRY`, ``lchannel algorithms``);
each converter algorithm is a class of :mod:`lchannel.torch.modes`.

Everything between the chosen layers (batch norm, residual additions, pooling, reshapes,
activations) passes signals as autograd defines it.  Feedback weights are buffers of the
layers (saved in ``state_dict``, moved by ``.to()``, never in ``parameters()``), drawn
from ``lchannel.engine.rng.generator(seed, "feedback")`` with lchannel's distributions
(:class:`~lchannel.channels.FeedbackInit`); signal transforms
(:mod:`lchannel.channels.transforms`: quantization eq. 19, channel dropout) act on the
signal each layer sends down (RBP) or receives (SRBP).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable

import torch
from torch import nn

from ..channels import NOF_SUFFIX, REGISTRY, FeedbackInit, SignalTransform, converter_names, resolve, \
    transforms_from_options
from ..channels.transforms import Chain
from ..engine.rng import generator
from . import native
from .modes import MODES, SCALINGS, TargetProjection
from .channel import ModuleChannel, channel_of
from .direct import DIRECT_MAPS, draw_points, probe
from .layers import CONVERTED

def _accepted() -> tuple[str, ...]:
    names = converter_names()
    return tuple(names + [n + NOF_SUFFIX for n in names if n + NOF_SUFFIX not in NOF_REFUSED])


# The '-nof' forms a module graph cannot serve, and why.
NOF_REFUSED = {
    "asrbp-nof": "the adaptive rule ΔC = η (O^h)ᵀ e needs the activity O^h of the neurons receiving the error; "
                 "without f' the error arrives at a layer's pre-activation, which has no such activity",
}
# Every name convert() accepts (registry entries with a converter mode, their aliases and
# '-nof' forms) and every registry name it refuses, with why.
ALGORITHMS = _accepted()
REFUSED = {**{n: a.converter_refusal for n, a in REGISTRY.items() if a.converter is None}, **NOF_REFUSED}
REFUSED_OPTIONS = {
    "per_synapse": "a random feedback weight per synapse (paper 1 section 4.2 item 7) is defined for dense "
                   "layers of the explicit engine; a convolution shares its synapses across positions",
    "resample": "redrawing the feedback before every minibatch needs the explicit engine's training loop",
    "feedback_samples": "averaging K channels needs K backward passes; use the explicit engine",
    "topology": "a module graph has no numbered chain of layers; choose rbp or srbp (and receivers)",
    "skip_layers": "a module graph has no numbered chain of layers; use srbp with receivers=[...]",
    "derivative": "the derivative policy is part of the name: use the '-nof' forms (rbp-nof, srbp-nof, ...)",
    "adaptive": "adaptivity is part of the name: use arbp, asrbp, kp or wm (with adapt_lr)",
    "projected": "what the direct channel sends is part of the name: srbp (the error) or drtp (the target)",
    "adapt_rate": "give the feedback's own learning rate as adapt_lr (the engine's η·adapt_rate)",
}

# Elementwise transfer functions whose derivative the '-nof' forms leave out.
ACTIVATIONS = (nn.Tanh, nn.Sigmoid, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softsign,
               nn.LogSigmoid, nn.Tanhshrink)


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise ValueError(f"algorithm must be a string, one of {list(ALGORITHMS)}, got {name!r}")
    if name in REFUSED:
        raise ValueError(f"algorithm {name!r} is not available for a module graph: {REFUSED[name]}")
    try:
        entry, nof = resolve(name)
    except ValueError:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {name!r}") from None
    if entry.converter is None:
        raise ValueError(f"algorithm {name!r} is not available for a module graph: {entry.converter_refusal}")
    return entry.name + (NOF_SUFFIX if nof else "")


def _transform(transforms, options: dict) -> SignalTransform | None:
    for key, why in REFUSED_OPTIONS.items():
        if key in options:
            raise ValueError(f"option {key!r} is not available for a module graph: {why}")
    options = dict(options)
    extra = transforms_from_options(options)  # sign_only, quantize_bits, lc_dropout, ... (pops them)
    if options:
        raise ValueError(f"unknown option(s) {sorted(options)}; accepted: feedback, seed, layers, exclude, "
                         f"example_input, source, receivers, adapt_lr, transforms, reduction, sign_only, "
                         f"magnitude_only, quantize_bits, quantize_alpha, lc_dropout")
    if transforms is None:
        transforms = []
    elif isinstance(transforms, SignalTransform):
        transforms = [transforms]
    if not isinstance(transforms, (list, tuple)) or not all(isinstance(t, SignalTransform) for t in transforms):
        raise ValueError(f"transforms must be a list of lchannel.channels.transforms.SignalTransform "
                         f"(Quantize, ChannelDropout, ...), got {transforms!r}")
    chain = list(transforms) + extra
    return None if not chain else chain[0] if len(chain) == 1 else Chain(*chain)


def _excluded(name: str, exclude: set[str]) -> bool:
    return any(name == x or name.startswith(x + ".") for x in exclude)


def convert(model: nn.Module, algorithm: str = "rbp", *, feedback: FeedbackInit | dict | str | None = None,
            seed: int = 0, layers: Iterable[type] = (nn.Linear, nn.Conv2d), exclude: Iterable[str] = (),
            example_input=None, source: str | None = None, receivers: Iterable[str] | None = None,
            adapt_lr: float | None = None, feedback_decay: float = 0.0, scaling: str = "match",
            direct_maps: str = "auto", transforms=None,
            reduction: str = "mean", warn: bool = True, **options) -> nn.Module:
    """Make ``model`` learn through the learning channel ``algorithm``; returns ``model``
    (converted in place).

    Every algorithm takes the same arguments; an argument an algorithm does not use is
    ignored (``feedback`` under bp, ``example_input`` under rbp), so switching algorithm
    changes one word.

    algorithm: one of :data:`ALGORITHMS` (table in the module docstring; aliases ``fa``,
        ``dfa``); the engine's ``sbp``, ``top``, ``mixed``, ``cascade`` and the Distinct
        channels are refused with the reason (:data:`REFUSED`).
    feedback: the distribution of the random feedback (:class:`FeedbackInit`, a dict of
        its fields or a name: normal, uniform, sign, sparse with n, non-zero mean, scale,
        congruent; default normal, and uniform for the magnitudes of frsf and brsf, as
        biotorch draws them).  A conv kernel is drawn as the (C_in/groups·k…) × C_out
        matrix of its patch map; congruent RBP feedback takes the signs of W.
    seed: the feedback is drawn from ``lchannel.engine.rng.generator(seed, "feedback")`` layer by
        layer in ``named_modules()`` order; channel dropout uses the "channel" stream,
        brSF's redraws the "resample" stream, the weight mirror's noise the "mirror" stream.
    layers: the layer types to convert, among nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d.
    exclude: module names (as in ``named_modules()``) whose layers, and those under them,
        keep plain backprop.
    example_input: an input batch for the direct forms (srbp, asrbp, drtp): one forward
        pass in eval mode finds the receiving points and their shapes, so the feedback maps
        exist as buffers before training (and can be loaded from a ``state_dict``).
        Without it the first forward pass with gradients on finds them (as PyTorch's lazy
        modules do); load a ``state_dict`` after that pass.
    source: the module whose output is the error's source (direct forms; default: the model).
    receivers: names of the chosen layers that receive the output error (direct forms;
        default: all that can).
    adapt_lr: the feedback's own learning rate η_c (arbp, asrbp, kp, wm: required), the
        engine's η·adapt_rate; adaptation happens during ``backward()`` (wm: before
        every training pass).
    feedback_decay: λ of kp and wm, the feedback's decay per step (default 0).
    scaling: the size of the random feedback.  ``"match"`` (default): each B as large as
        its W (‖B‖_F = ‖W‖_F), each direct map C_p calibrated on the first learning
        pass's batch so that it delivers a signal as large as BP's at its point (a
        ``state_dict`` loaded before that pass is kept as saved); the signals then neither
        grow nor vanish with depth.
        ``"fan_in"``: the RMS of PyTorch's default initialisation, 1/sqrt(3·fan_in)
        (biotorch's default; a direct map counts the outputs as its fan-in).
        ``"distribution"``: as ``feedback`` draws it (the papers' Glorot scale: RBP's
        signal then grows about (std of B / std of W) per layer, e.g. 2.3x per 32-channel
        3x3 conv with PyTorch's default init).
    direct_maps: the direct forms' maps at a conv layer's feature map.  ``"auto"``
        (default): ``"kernel"``, and ``"dense"`` for the no-f' forms.  ``"kernel"``:
        biotorch's DFA for convolutions exactly, a random kernel (outputs × the layer's
        input channels × its kernel) sent back through the receiving layer's transposed
        convolution (buffer ``skip_kernel``), so the signal is constant over each
        channel's positions away from the borders; not for the no-f' forms, whose points
        are the layers' outputs.  ``"dense"``: one random weight per value of the map
        (paper 2's SRBP, eq. 11, as the engine's conv nets use; what the tests comparing
        the converter with the engine choose).  ``"channel"``: one random row per
        channel, shared by all the map's positions.  Measured against each other and
        biotorch in docs/your-own-model.md, "Against biotorch".  Dense layers' points are
        dense in every case; the buffer ``skip_feedback`` has the full (values × outputs)
        shape, and asrbp's learning updates every row of it.
    transforms: signal transforms (Quantize, ChannelDropout, SignOnly, ...), or the
        engine's shortcuts ``quantize_bits``, ``quantize_alpha``, ``lc_dropout``,
        ``sign_only``, ``magnitude_only``.
    reduction: how the loss reduces over the batch, ``"mean"`` (PyTorch's default) or
        ``"sum"``: scale-dependent transforms (Quantize) and DRTP need the loss's scale.
    warn: warn when modules with parameters stay on BP (layer types that are not
        converted: LSTM, Embedding, attention's packed projections, ...);
        :meth:`ModuleChannel.summary` lists them either way.
    """
    # -- validate everything before touching the model ---------------------------------
    name = _check_name(algorithm)
    _check_model(model)
    transform = _transform(transforms, options)
    layers = _check_layers(layers)
    exclude = {exclude} if isinstance(exclude, str) else set(exclude)
    names = dict(model.named_modules())
    unknown = sorted(x for x in exclude if x not in names)
    if unknown:
        raise ValueError(f"exclude: no module named {unknown} in the model")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if direct_maps not in DIRECT_MAPS:
        raise ValueError(f"direct_maps must be one of {DIRECT_MAPS}, got {direct_maps!r}")
    ch = ModuleChannel(name, _mode(name, adapt_lr, feedback_decay, scaling), None, seed, transform, reduction)
    ch.source_name = source
    if direct_maps == "auto":  # biotorch's convolutional DFA where the points allow it (measured: docs)
        direct_maps = "dense" if ch.mode.direct and ch.nof else "kernel"
    ch.direct_maps = direct_maps
    if direct_maps == "kernel" and ch.mode.direct and ch.nof:
        raise ValueError(f"direct_maps 'kernel' shapes a map by the receiving layer's transposed convolution, "
                         f"which the points of {name!r} (each layer's output, no f') are not behind: use "
                         f"'dense' or 'channel'")
    if ch.mode.through_weight:
        feedback = None  # the signal travels through W itself: nothing is drawn
    fb = FeedbackInit.from_options(ch.mode.default_feedback if feedback is None else feedback)
    if ch.mode.direct and fb.congruent:
        raise ValueError("feedback congruent: congruent SRBP feedback takes the signs of the product of the forward "
                         "maps between a layer and the output, which a module graph does not have as a matrix")
    ch.feedback = fb
    chosen = _chosen_layers(model, layers, exclude)
    _check_sequence_first(model, ch, exclude)
    if ch.mode.direct:
        receivers = _check_direct(names, chosen, source, receivers)
    ch.native = native.nodes() if ch.wants_native() else None  # may build it once (~20 s)

    # -- convert ----------------------------------------------------------------------
    _attach(model, ch, chosen, fb, seed, example_input, source, receivers, scaling)
    _install_hooks(model, ch, names, source, exclude)
    ch.left_on_bp = _left_on_bp(model, ch)
    if warn and ch.left_on_bp:
        warnings.warn(f"lchannel.torch.convert: {len(ch.left_on_bp)} module(s) with parameters still learn by BP "
                      f"under {name!r}: {', '.join(f'{n} ({t})' for n, t in ch.left_on_bp)}; "
                      f"channel_of(model).summary() lists the converted layers", stacklevel=2)
    return model


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if getattr(model, "_lc_channel", None) is not None:
        raise ValueError(f"model: already converted ({model._lc_channel}); convert the original model once")


def _check_layers(layers) -> tuple:
    layers = tuple(layers) if isinstance(layers, (list, tuple)) else (layers,)
    bad = [t for t in layers if t not in CONVERTED]
    if not layers or bad:
        raise ValueError(f"layers must name layer types among {[t.__name__ for t in CONVERTED]}, got {layers!r}")
    return layers


def _mode(name: str, adapt_lr, feedback_decay, scaling: str):
    """The algorithm's mode object (:mod:`.modes`), its options checked: ``adapt_lr`` where
    the mode adapts its feedback (ignored elsewhere), ``feedback_decay``, ``scaling``."""
    kind = MODES[resolve(name)[0].converter]
    if "adapt_lr" in kind().needs:
        if isinstance(adapt_lr, bool) or not isinstance(adapt_lr, (int, float)) or not adapt_lr > 0 \
                or not math.isfinite(adapt_lr):
            raise ValueError(f"adapt_lr: {name!r} needs the feedback's learning rate, a number > 0 "
                             f"(the engine's η·adapt_rate), got {adapt_lr!r}")
        adapt_lr = float(adapt_lr)
    else:
        adapt_lr = None
    if isinstance(feedback_decay, bool) or not isinstance(feedback_decay, (int, float)) \
            or not 0 <= feedback_decay < 1:
        raise ValueError(f"feedback_decay must be a number in [0, 1), got {feedback_decay!r}")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {list(SCALINGS)}, got {scaling!r}")
    return kind(adapt_lr=adapt_lr, feedback_decay=float(feedback_decay), scaling=scaling)


def _chosen_layers(model: nn.Module, layers: tuple, exclude: set) -> list:
    """``(name, module)`` of every layer to convert; every refusal named at once."""
    # nn.MultiheadAttention reads its out_proj's weight itself (F.multi_head_attention_forward)
    # and never calls out_proj: its projections stay on BP and are reported as such.
    attention = {n for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)}
    chosen, refused = [], []
    for n, m in model.named_modules():
        if isinstance(m, layers) and not _excluded(n, exclude) and not _excluded(n, attention):
            if type(m) in CONVERTED:
                chosen.append((n, m))
            else:
                refused.append(f"{n!r}: a {type(m).__name__}, a subclass of {_base_type(m, layers).__name__} "
                               f"with its own behaviour")
    if refused:
        skip = sorted({r.split(":")[0].strip("'") for r in refused})
        raise ValueError(f"layers: {len(refused)} module(s) cannot be converted: " + "; ".join(refused)
                         + f". Skip them with exclude={skip!r} (they then learn by BP), or use plain "
                           f"{[t.__name__ for t in layers]}")
    if not chosen:
        raise ValueError(f"layers: the model has no {[t.__name__ for t in layers]} outside exclude={sorted(exclude)}")
    return chosen


def _check_direct(names: dict, chosen: list, source, receivers):
    """The direct forms' ``source`` and ``receivers``, checked against the model."""
    if source is not None and source not in names:
        raise ValueError(f"source: no module named {source!r} in the model")
    if receivers is not None:
        receivers = [receivers] if isinstance(receivers, str) else list(receivers)
        bad = sorted(set(receivers) - {n for n, _ in chosen})
        if bad:
            raise ValueError(f"receivers: {bad} are not converted layers; choose among {[n for n, _ in chosen]}")
    return receivers


def _attach(model, ch, chosen, fb, seed, example_input, source, receivers, scaling) -> None:
    """Swap the chosen layers' classes and draw their feedback (undone on any error)."""
    ch.layers = chosen
    for _, m in chosen:
        m.__class__ = CONVERTED[type(m)]
        m.lc_channel = ch
    model._lc_channel = ch
    g = generator(seed, "feedback")
    try:
        if ch.mode.through_standin:
            for _, m in chosen:
                ch.mode.draw(m, fb, g)
        elif ch.mode.direct:
            if example_input is not None:
                points, out = probe(model, ch, example_input, source)
                draw_points(ch, points, out, fb, g, receivers)
            else:
                ch.lazy = (receivers,)  # a tuple: receivers=None (all that can) is a value
            # "match": calibrated on the first learning pass's batch (a real batch, not the
            # two examples of example_input); a state_dict loaded before it cancels it.
            ch.calibrate_pending = scaling == "match"
    except BaseException:
        _undo(model, ch)
        raise


def _install_hooks(model, ch, names: dict, source, exclude: set) -> None:
    """The model's hooks: each pass starts the channel; a loaded state_dict reaches it; the
    direct forms read the source's output; the no-f' forms pass activations straight through."""
    model._lc_hooks = [model.register_forward_pre_hook(ch.start_pass),
                       model._register_load_state_dict_pre_hook(ch.state_loaded)]
    if ch.mode.direct:
        model._lc_hooks.append(names[source or ""].register_forward_hook(ch.source_hook))
    if ch.nof and not ch.mode.direct:
        for n, m in model.named_modules():
            if isinstance(m, ACTIVATIONS) and not _excluded(n, exclude):
                if getattr(m, "inplace", False):
                    m.inplace = False  # an in-place f would overwrite the input whose f' is skipped
                model._lc_hooks.append(m.register_forward_hook(ch.straight_through_hook))


def set_targets(model: nn.Module, targets: torch.Tensor) -> None:
    """DRTP: the targets of the coming ``backward()`` (one-hot rows, or class indices),
    set after the forward pass; they are used by one backward pass and then forgotten."""
    ch = channel_of(model)
    if not isinstance(ch.mode, TargetProjection):
        raise ValueError(f"set_targets: the model learns by {ch.name!r}, which takes no targets (drtp does)")
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"set_targets: targets must be a tensor, got {type(targets).__name__}")
    ch.targets = targets.detach()


def _base_type(m, layers):
    return next(t for t in layers if isinstance(m, t))


def _left_on_bp(model, ch) -> list[tuple[str, str]]:
    """Modules that own parameters directly and are not converted (they learn by BP)."""
    converted = {id(m) for _, m in ch.layers}
    out = []
    for n, m in model.named_modules():
        if id(m) in converted or isinstance(m, _NORMS):
            continue
        if any(True for _ in m.parameters(recurse=False)):
            out.append((n or "(model)", type(m).__name__))
    return out


# Normalisation layers' affine parameters learn from the signal that reaches them, through
# whatever channel delivered it: they are not a route of the error, so not "left on BP".
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _check_sequence_first(model, ch, exclude) -> None:
    """Refuse, before training, a direct form on a model with sequence-first attention or
    recurrent modules: the error's source is batch-first (one row per example), their
    outputs are not, so a receiving point's rows would not be examples."""
    if not ch.mode.direct:
        return
    bad = [n for n, m in model.named_modules() if not _excluded(n, exclude)
           and isinstance(m, (nn.MultiheadAttention, nn.RNNBase)) and not m.batch_first]
    if bad:
        raise ValueError(f"{ch.name}: modules {bad} are sequence-first (batch_first=False): the direct channel "
                         f"sends each example's error to a row of the receiving tensor, and in their outputs rows are "
                         f"time steps; build them with "
                         f"batch_first=True, or exclude them (exclude={bad!r})")


def _undo(model, ch) -> None:
    inverse = {v: k for k, v in CONVERTED.items()}
    for _, m in ch.layers:
        m.__class__ = inverse[type(m)]
        for key in ("feedback", "skip_feedback"):
            m._buffers.pop(key, None)
        m.__dict__.pop("lc_channel", None)
    model.__dict__.pop("_lc_channel", None)


