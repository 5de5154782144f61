"""``convert(model, "rbp")``: make any ``torch.nn.Module`` learn through a learning channel.

The user's model, loss, optimizer and training loop stay as they are (``loss.backward()``,
any ``torch.optim`` optimizer, any device, ``state_dict``).  Each chosen layer (Linear,
Conv1d/2d/3d) keeps its forward pass and its local weight update I ⊗ O (paper 1,
eq. 13); the learning channel decides how the output error reaches it:

=========  ===================================================================  ==============
name       signal reaching the chosen layers                                    a.k.a.
=========  ===================================================================  ==============
bp         through Wᵀ (autograd's own, eq. 3-5)                                  backprop
rbp        through a fixed random B of W's shape instead of W (eq. 6-8)          FA
arbp       rbp, and B learns: ΔB = −adapt_lr ∂loss/∂W (ΔC = η (O^h)ᵀ I^{h+1})    adaptive FA
srbp       the output error, through a fixed random map C_p, straight to the     DFA
           input of every chosen layer; nothing travels through Wᵀ (paper 2
           eq. 11); the local derivative f' is applied on the way down
asrbp      srbp, and C_p learns: ΔC_p = η (O^p)ᵀ e                                adaptive DFA
*-nof      no f': bp/rbp/arbp skip the derivative of every activation module;
           srbp delivers the error to each chosen layer's *output* instead
=========  ===================================================================  ==============

Everything between the chosen layers (batch norm, residual additions, pooling, reshapes,
activations) passes signals as autograd defines it.  Feedback weights are buffers of the
layers (saved in ``state_dict``, moved by ``.to()``, never in ``parameters()``), drawn
from ``lchannel.rng.generator(seed, "feedback")`` with lchannel's distributions
(:class:`~lchannel.channels.FeedbackInit`); signal transforms
(:mod:`lchannel.channels.transforms`: quantization eq. 19, channel dropout) act on the
signal each layer sends down (RBP) or receives (SRBP).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from ..channels import FeedbackInit, SignalTransform, transforms_from_options
from ..channels.transforms import Chain
from ..rng import generator
from . import native
from .functions import SkipSource, StraightThrough
from .layers import CONVERTED, ChannelLayer

BASES = ("bp", "rbp", "arbp", "srbp", "asrbp")
ALGORITHMS = BASES + ("bp-nof", "rbp-nof", "arbp-nof", "srbp-nof")

# Names of the explicit engine's channels that a module graph cannot serve, and why.
REFUSED = {
    "sbp": "skipped BP sends the error through the product of the transposed forward maps between the output "
           "and each layer; a module graph (batch norm, residual additions, pooling) has no such matrix",
    "top": "top-layer-only needs no converter: freeze the other layers with requires_grad_(False)",
    "mixed": "the mixed RBP/SRBP channel numbers hidden layers of a chain, which a module graph does not have; "
             "use srbp with receivers=[...] to choose which layers receive the output error",
    "cascade": "cascading needs a feedback matrix between every pair of layers of a chain; a module graph has no "
               "such chain",
    "asrbp-nof": "the adaptive rule ΔC = η (O^h)ᵀ e needs the activity O^h of the neurons receiving the error; "
                 "without f' the error arrives at a layer's pre-activation, which has no such activity",
}
REFUSED_OPTIONS = {
    "per_synapse": "a random feedback weight per synapse (paper 1 section 4.2 item 7) is defined for dense "
                   "layers of the explicit engine; a convolution shares its synapses across positions",
    "resample": "redrawing the feedback before every minibatch needs the explicit engine's training loop",
    "feedback_samples": "averaging K channels needs K backward passes; use the explicit engine",
    "topology": "a module graph has no numbered chain of layers; choose rbp or srbp (and receivers)",
    "skip_layers": "a module graph has no numbered chain of layers; use srbp with receivers=[...]",
    "derivative": "the derivative policy is part of the name: use the '-nof' forms (rbp-nof, srbp-nof, ...)",
    "adaptive": "adaptivity is part of the name: use arbp or asrbp (with adapt_lr)",
    "adapt_rate": "give the feedback's own learning rate as adapt_lr (the engine's η·adapt_rate)",
}

# Elementwise transfer functions whose derivative the '-nof' forms leave out.
ACTIVATIONS = (nn.Tanh, nn.Sigmoid, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softsign,
               nn.LogSigmoid, nn.Tanhshrink)


class _PassMode:
    """A channel attribute that changes how a pass runs (probing, alignment's BP pass,
    signal capture): setting it recomputes ``channel.lean``, the one flag the converted
    layers read on SRBP's hot path."""

    def __set_name__(self, owner, name):
        self.key = "_" + name

    def __get__(self, ch, owner=None):
        return self if ch is None else ch.__dict__[self.key]

    def __set__(self, ch, value):
        ch.__dict__[self.key] = value
        d = ch.__dict__
        ch.lean = (ch.base == "srbp" and not d.get("_measuring_bp") and d.get("_probing") is None
                   and d.get("_capture") is None)


class ModuleChannel:
    """The learning channel of a converted model: its options and per-pass state.

    Shared by every converted layer (``layer.lc_channel``) and reachable as
    ``lchannel.torch.channel_of(model)``.  ``native`` is the module of compiled autograd
    nodes in use (:mod:`lchannel.torch.native`), or None for the Python autograd
    functions; set it to None to compare the two.
    """

    probing = _PassMode()  # SRBP's probe pass in convert(): receiving points found here
    measuring_bp = _PassMode()  # alignment(): the same model, learning through true BP
    capture = _PassMode()  # alignment(): signals reaching each chosen layer

    def __init__(self, name, feedback, seed, transform, adapt_lr, reduction):
        self.name = name
        base = name.removesuffix("-nof")
        self.nof = name.endswith("-nof")
        self.adaptive = base in ("arbp", "asrbp")
        self.base = base[1:] if self.adaptive else base  # bp | rbp | srbp
        self.adapt_lr = adapt_lr
        self.feedback = feedback
        self.seed = seed
        self.transform = transform
        self.reduction = reduction
        # SRBP receives at each chosen layer's input (f' of the layer below applies on the
        # way down, paper 2 eq. 11), or at its output without f'.
        self.point_at = None if self.base != "srbp" else ("output" if self.nof else "input")
        self.layers: list[tuple[str, ChannelLayer]] = []
        self.points: list = []  # (layer, tensor) receiving points recorded in this forward pass
        self.probing, self.measuring_bp, self.capture = None, False, None
        self._generators: dict = {}
        self._checked: list = []  # the shapes of the last pass whose points were checked
        self.native = None  # set by convert() once the options are checked

    def wants_native(self) -> bool:
        """The compiled nodes serve plain RBP and SRBP: no transforms, no adaptation."""
        return self.base in ("rbp", "srbp") and not self.adaptive and self.transform is None

    def compiled(self):
        """The compiled nodes if they serve this pass (eager mode, see
        :func:`lchannel.torch.native.usable`), else None: use the Python functions."""
        return self.native if self.native is not None and native.usable() else None

    def describe(self) -> str:
        opts = [f"seed={self.seed}"]
        if self.base != "bp":
            opts.append(f"feedback={self.feedback}")
        if self.adaptive:
            opts.append(f"adapt_lr={self.adapt_lr}")
        if self.transform is not None:
            opts.append(f"transforms={self.transform!r}")
        return f"{self.name}({', '.join(opts)}; {len(self.layers)} layers)"

    __repr__ = describe

    # -- signal transforms -----------------------------------------------------------
    def transform_signal(self, J: torch.Tensor) -> torch.Tensor:
        """Apply the transforms to a signal in autograd's scale.  Autograd carries
        ``−J/B`` for a mean-reduced loss (``−J`` for a summed one), where J is the papers'
        signal (built on e = T − O); scale-dependent transforms such as Quantize (eq. 19)
        must see J itself, so the signal is mapped to J and back."""
        if self.transform is None or self.measuring_bp:
            return J
        scale = -(J.shape[0] if self.reduction == "mean" else 1)
        gens = [self._generator(J.device)] if self.transform.needs_rng else None
        return self.transform((J * scale).unsqueeze(0), 0, gens)[0] / scale

    def _generator(self, device) -> torch.Generator:
        # The "channel" stream of the seed, one generator per device (dropout masks).
        key = str(device)
        if key not in self._generators:
            self._generators[key] = generator(self.seed, "channel", device)
        return self._generators[key]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_generators"], state["points"], state["_capture"], state["_checked"] = {}, [], None, []
        state["native"] = None  # a compiled module does not pickle; found again on load
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.native = native.nodes() if self.wants_native() else None

    # -- hooks on the model ----------------------------------------------------------
    def start_pass(self, module, inputs):
        """Forward pre-hook of the model: a new pass records its own receiving points."""
        self.points = []

    def source_hook(self, module, inputs, output):
        """Forward hook of the error's source (the model output by default): links every
        receiving point recorded in this pass to it, so that its backward can deliver the
        output error there (SRBP)."""
        points, self.points = self.points, []
        if self.measuring_bp or self.probing is not None or not points or not torch.is_grad_enabled():
            return None
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"source: the error's source must return a tensor, got {type(output).__name__}; "
                             f"name a submodule that does with convert(..., source='name')")
        key = [output.shape] + [(layer, t.shape) for layer, t in points]
        if key != self._checked:
            self._check_points(points, output)
            self._checked = key
        feedbacks = [layer._buffers["skip_feedback"] for layer, _ in points]
        nodes = self.compiled()
        if nodes is not None:
            return nodes.skip_source(output, [t for _, t in points], feedbacks)
        lr = self.adapt_lr if self.adaptive else None
        return SkipSource.apply(self, feedbacks, lr, output, *[t for _, t in points])

    def _check_points(self, points, output) -> None:
        n_out = _per_example(output)
        for layer, t in points:
            C = layer.skip_feedback
            if C.shape[0] != _per_example(t) or C.shape[1] != n_out:
                raise ValueError(
                    f"srbp: layer {_name_of(self, layer)!r} receives {_per_example(t)} values per example from "
                    f"{n_out} outputs, but its feedback was drawn for {C.shape[0]} from {C.shape[1]} (from "
                    f"example_input): the SRBP feedback is tied to the input size the model was converted with")

    def straight_through_hook(self, module, inputs, output):
        """Forward hook of an activation module for the '-nof' forms: keep f(x), drop f'."""
        x = inputs[0]
        if self.measuring_bp or not torch.is_grad_enabled() or not x.requires_grad:
            return None
        return StraightThrough.apply(x, output.detach())


def _per_example(t: torch.Tensor) -> int:
    """Values per example of a batch-first tensor (t[0].numel() without making a view)."""
    return t.numel() // t.shape[0] if t.shape[0] else math.prod(t.shape[1:])


def _name_of(ch: ModuleChannel, layer) -> str:
    return next((n for n, m in ch.layers if m is layer), "?")


def channel_of(model: nn.Module) -> ModuleChannel:
    """The learning channel of a converted model (ValueError if it was not converted)."""
    ch = getattr(model, "_lc_channel", None)
    if ch is None:
        raise ValueError("model: not converted; call lchannel.torch.convert(model, ...) first")
    return ch


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise ValueError(f"algorithm must be a string, one of {list(ALGORITHMS)}, got {name!r}")
    if name in REFUSED or name.removesuffix("-nof") in REFUSED:
        raise ValueError(f"algorithm {name!r} is not available for a module graph: "
                         f"{REFUSED.get(name) or REFUSED[name.removesuffix('-nof')]}")
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {name!r}")
    return name


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
            adapt_lr: float | None = None, transforms=None, reduction: str = "mean", **options) -> nn.Module:
    """Make ``model`` learn through the learning channel ``algorithm``; returns ``model``
    (converted in place).

    algorithm: one of :data:`ALGORITHMS` (table in the module docstring); the engine's
        ``sbp``, ``top``, ``mixed``, ``cascade`` are refused with the reason.
    feedback: the distribution of the random feedback (:class:`FeedbackInit`, a dict of
        its fields or a name: normal, uniform, sign, sparse with n, non-zero mean, scale,
        congruent).  A conv kernel is drawn as the (C_in/groups·k…) × C_out matrix of
        its patch map; congruent RBP feedback takes the signs of W.
    seed: the feedback is drawn from ``lchannel.rng.generator(seed, "feedback")`` layer by
        layer in ``named_modules()`` order; channel dropout uses the "channel" stream.
    layers: the layer types to convert, among nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d.
    exclude: module names (as in ``named_modules()``) whose layers, and those under them,
        keep plain backprop.
    example_input: an input batch (srbp/asrbp only, required): one forward pass in eval
        mode finds the receiving points and their shapes, so the feedback maps exist as
        buffers before training (and can be loaded from a ``state_dict``).
    source: the module whose output is the error's source (srbp; default: the model).
    receivers: names of the chosen layers that receive the output error (srbp; default:
        all that can).
    adapt_lr: the feedback's own learning rate η_c (arbp/asrbp, required), the engine's
        η·adapt_rate; adaptation happens during ``backward()``.
    transforms: signal transforms (Quantize, ChannelDropout, SignOnly, ...), or the
        engine's shortcuts ``quantize_bits``, ``quantize_alpha``, ``lc_dropout``,
        ``sign_only``, ``magnitude_only``.
    reduction: how the loss reduces over the batch, ``"mean"`` (PyTorch's default) or
        ``"sum"``: scale-dependent transforms (Quantize) need the papers' signal scale.
    """
    # -- validate everything before touching the model ---------------------------------
    name = _check_name(algorithm)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if getattr(model, "_lc_channel", None) is not None:
        raise ValueError(f"model: already converted ({model._lc_channel}); convert the original model once")
    transform = _transform(transforms, options)
    layers = tuple(layers) if isinstance(layers, (list, tuple)) else (layers,)
    bad = [t for t in layers if t not in CONVERTED]
    if not layers or bad:
        raise ValueError(f"layers must name layer types among {[t.__name__ for t in CONVERTED]}, got {layers!r}")
    exclude = {exclude} if isinstance(exclude, str) else set(exclude)
    names = dict(model.named_modules())
    unknown = sorted(x for x in exclude if x not in names)
    if unknown:
        raise ValueError(f"exclude: no module named {unknown} in the model")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    ch = ModuleChannel(name, None, seed, transform, None, reduction)
    if ch.base == "bp" and feedback is not None:
        raise ValueError(f"feedback: {name!r} sends signals through W itself; it takes no feedback distribution")
    fb = FeedbackInit.from_options(feedback)
    if ch.base == "srbp" and fb.congruent:
        raise ValueError("feedback congruent: congruent SRBP feedback takes the signs of the product of the forward "
                         "maps between a layer and the output, which a module graph does not have as a matrix")
    ch.feedback = fb
    if ch.adaptive:
        if isinstance(adapt_lr, bool) or not isinstance(adapt_lr, (int, float)) or not adapt_lr > 0 \
                or not math.isfinite(adapt_lr):
            raise ValueError(f"adapt_lr: {name!r} needs the feedback's learning rate, a number > 0 "
                             f"(the engine's η·adapt_rate), got {adapt_lr!r}")
        ch.adapt_lr = float(adapt_lr)
    elif adapt_lr is not None:
        raise ValueError(f"adapt_lr applies only to arbp, arbp-nof and asrbp, not {name!r}")
    chosen = [(n, m) for n, m in model.named_modules() if isinstance(m, layers) and not _excluded(n, exclude)]
    for n, m in chosen:
        if type(m) not in CONVERTED:
            raise ValueError(f"layers: module {n!r} is a {type(m).__name__}, a subclass with its own behaviour; "
                             f"exclude it (exclude=[{n!r}]) or use a plain {[t.__name__ for t in layers]}")
    if not chosen:
        raise ValueError(f"layers: the model has no {[t.__name__ for t in layers]} outside exclude={sorted(exclude)}")
    if ch.base == "srbp":
        if example_input is None:
            raise ValueError(f"example_input: {name!r} needs an input batch to find where the output error is "
                             f"received and the shapes of the feedback maps")
        if source is not None and source not in names:
            raise ValueError(f"source: no module named {source!r} in the model")
        if receivers is not None:
            receivers = [receivers] if isinstance(receivers, str) else list(receivers)
            bad = sorted(set(receivers) - {n for n, _ in chosen})
            if bad:
                raise ValueError(f"receivers: {bad} are not converted layers; choose among {[n for n, _ in chosen]}")
    elif source is not None or receivers is not None or example_input is not None:
        raise ValueError(f"source, receivers and example_input apply only to srbp/asrbp, not {name!r}")

    ch.native = native.nodes() if ch.wants_native() else None  # may build it once (~20 s)

    # -- convert ----------------------------------------------------------------------
    ch.layers = chosen
    for _, m in chosen:
        m.__class__ = CONVERTED[type(m)]
        m.lc_channel = ch
    model._lc_channel = ch
    g = generator(seed, "feedback")
    try:
        if ch.base == "rbp":
            for _, m in chosen:
                m.register_buffer("feedback", _draw_kernel(fb, m.weight, g))
        elif ch.base == "srbp":
            _draw_skip_maps(model, ch, fb, g, example_input, source, receivers)
    except BaseException:
        _undo(model, ch)
        raise
    model._lc_hooks = [model.register_forward_pre_hook(ch.start_pass)]
    if ch.base == "srbp":
        model._lc_hooks.append(names[source or ""].register_forward_hook(ch.source_hook))
    if ch.nof and ch.base != "srbp":
        for n, m in model.named_modules():
            if isinstance(m, ACTIVATIONS) and not _excluded(n, exclude):
                if getattr(m, "inplace", False):
                    m.inplace = False  # an in-place f would overwrite the input whose f' is skipped
                model._lc_hooks.append(m.register_forward_hook(ch.straight_through_hook))
    return model


def _undo(model, ch) -> None:
    inverse = {v: k for k, v in CONVERTED.items()}
    for _, m in ch.layers:
        m.__class__ = inverse[type(m)]
        for key in ("feedback", "skip_feedback"):
            m._buffers.pop(key, None)
        m.__dict__.pop("lc_channel", None)
    model.__dict__.pop("_lc_channel", None)


@torch.no_grad()
def _draw_kernel(fb: FeedbackInit, W: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random stand-in for W (RBP): drawn as the matrix C (fan_in × out) that carries the
    layer's output signal back to its inputs, the engine's C^{h} of shape (N_h, N_{h+1}),
    and laid out as W: B = Cᵀ.  Congruent feedback takes the signs of Wᵀ (section 3)."""
    M = W.detach().reshape(W.shape[0], -1)  # (out, fan_in): a conv kernel as its patch map
    fb.check(M.shape[1])
    C = fb.draw((M.shape[1], M.shape[0]), M.shape[1], M.shape[0], g, chained=True, dtype=W.dtype,
                sign_like=M.t() if fb.congruent else None)
    return C.t().reshape(W.shape).to(W.device).contiguous()


@torch.no_grad()
def _probe(model, ch, example_input, source):
    """One forward pass in eval mode with gradients on: where the receiving points are."""
    modes = {m: m.training for m in model.modules()}
    src = dict(model.named_modules())[source or ""]
    seen = {}
    handle = src.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    ch.probing = []
    model.eval()
    try:
        with torch.enable_grad():
            args = example_input if isinstance(example_input, tuple) else (example_input,)
            model(*args)
    except Exception as err:
        raise ValueError(f"example_input: the model failed on it ({type(err).__name__}: {err})") from err
    finally:
        handle.remove()
        for m, t in modes.items():
            m.train(t)
        points, ch.probing = ch.probing, None
    out = seen.get("out")
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"source: the error's source must return a tensor, got {type(out).__name__}; "
                         f"name a submodule that does with convert(..., source='name')")
    return points, out


def _draw_skip_maps(model, ch, fb, g, example_input, source, receivers) -> None:
    """SRBP: one random map C_p (values per example at the point × outputs) per chosen layer
    that can receive the error (a point that needs a gradient, is not the output itself or
    the output layer's own output, and is not already some other layer's point), drawn in
    recording order."""
    points, out = _probe(model, ch, example_input, source)
    calls: dict = {}
    taken: set[int] = set()
    for layer, t in points:
        calls[layer] = calls.get(layer, 0) + 1
    shared = [n for n, m in ch.layers if calls.get(m, 0) > 1]
    if shared:
        raise ValueError(f"srbp: layers {shared} run more than once per forward pass; SRBP needs one receiving "
                         f"point per layer: exclude them")
    wanted = None if receivers is None else {m for n, m in ch.layers if n in receivers}
    n_out = _per_example(out)
    if ch.point_at == "output" and points:
        # The last layer to run is the output layer: the true error reaches it, through
        # whatever follows it (e.g. a LogSoftmax module), so it is never a receiver.
        points = points[:-1]
    for layer, t in points:
        if not t.requires_grad or t is out or id(t) in taken or (wanted is not None and layer not in wanted):
            continue
        taken.add(id(t))
        fb.check(_per_example(t))
        n_in = _per_example(t)
        C = fb.draw((n_in, n_out), n_in, n_out, g, chained=False, dtype=layer.weight.dtype)
        # Stored column-major: the backward product g Cᵀ then reads Cᵀ as a contiguous
        # matrix, which MKL multiplies ~20% faster at these sizes (same values, same shape).
        layer.register_buffer("skip_feedback", C.to(layer.weight.device).t().contiguous().t())
    if not taken:
        raise ValueError("srbp: no chosen layer can receive the output error (no point needing a gradient "
                         "below the output); check layers, exclude and receivers")
