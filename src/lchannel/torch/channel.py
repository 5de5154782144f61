"""The learning channel of a converted model (:class:`ModuleChannel`): its options, the
per-pass state the converted layers share, and the model hooks that start a pass, link
SRBP's receiving points to the error's source and drop f' for the no-f' forms.

:func:`lchannel.torch.convert` builds one per model; ``lchannel.torch.channel_of(model)``
returns it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..channels import NOF_SUFFIX
from ..engine.rng import generator
from . import native
from .direct import calibrate, draw_points, per_example
from .functions import SkipSource, StraightThrough
from .layers import ChannelLayer


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
        ch.lean = (ch.mode.direct and not d.get("_measuring_bp") and d.get("_probing") is None
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

    def __init__(self, name, mode, feedback, seed, transform, reduction):
        self.name = name
        self.mode = mode  # a lchannel.torch.modes.Mode: how the feedback is made and learns
        self.nof = name.endswith(NOF_SUFFIX)
        self.base = mode.family  # bp | rbp | srbp: the route the error takes
        self.adaptive = mode.adaptive
        self.adapt_lr = mode.adapt_lr
        self.feedback = feedback
        self.seed = seed
        self.transform = transform
        self.reduction = reduction
        # SRBP receives at each chosen layer's input (f' of the layer below applies on the
        # way down, paper 2 eq. 11), or at its output without f'.
        self.point_at = None if not self.mode.direct else ("output" if self.nof else "input")
        self.layers: list[tuple[str, ChannelLayer]] = []
        self.points: list = []  # (layer, tensor) receiving points recorded in this forward pass
        self.probing, self.measuring_bp, self.capture = None, False, None
        self.lazy = None  # SRBP without example_input: (receivers,) until the first pass draws the maps
        self.direct_maps = "dense"  # convert()'s direct_maps: how a conv feature map's positions share C_p
        self.targets = None  # DRTP: the targets of the coming backward pass (set_targets)
        self.source_name = None  # the module whose output is the error's source (None: the model)
        self.calibrate_pending = False  # scaling "match" of the direct maps: at the first learning pass
        self._generators: dict = {}
        self._checked: list = []  # the shapes of the last pass whose points were checked
        self.native = None  # set by convert() once the options are checked

    def wants_native(self) -> bool:
        """The compiled nodes serve plain RBP (FA) and SRBP (DFA): no transforms, no adaptation."""
        return self.mode.compiled and self.transform is None

    def compiled(self):
        """The compiled nodes if they serve this pass (eager mode, see
        :func:`lchannel.torch.native.usable`), else None: use the Python functions."""
        return self.native if self.native is not None and native.usable() else None

    def take_targets(self, g: torch.Tensor) -> torch.Tensor:
        """DRTP: the targets set for this backward pass as rows like ``g`` (B, N_out), then
        forgotten, so that a step never reuses an earlier step's targets."""
        T, self.targets = self.targets, None
        if T is None:
            raise ValueError(f"{self.name}: no targets for this backward pass; call "
                             f"lchannel.torch.set_targets(model, y) after the forward pass and before backward()")
        if T.dim() == 1:
            if T.dtype.is_floating_point:
                raise ValueError("set_targets: a 1-d target must hold class indices (an integer tensor)")
            T = torch.nn.functional.one_hot(T.long(), g.shape[1])
        T = T.reshape(T.shape[0], -1).to(g.dtype).to(g.device)
        if T.shape != g.shape:
            raise ValueError(f"set_targets: targets of shape {tuple(T.shape)} for an output of {tuple(g.shape)} "
                             f"values per batch (one row per example, one value per output)")
        return T

    def describe(self) -> str:
        opts = [f"seed={self.seed}"]
        if not self.mode.through_weight:
            opts.append(f"feedback={self.feedback}")
        if self.mode.describe():
            opts.append(self.mode.describe())
        if self.mode.direct:
            opts.append(f"direct_maps={self.direct_maps!r}")
        if self.transform is not None:
            opts.append(f"transforms={self.transform!r}")
        return f"{self.name}({', '.join(opts)}; {len(self.layers)} layers)"

    __repr__ = describe

    def summary(self) -> str:
        """Which layers learn through the channel and which modules with parameters still
        learn by BP (layer types the converter does not convert, or excluded ones)."""
        lines = [f"{self.name}: {len(self.layers)} layer(s) learn through the channel"]
        lines += [f"  {n or '(model)'}  {type(m).__name__}" for n, m in self.layers]
        left = getattr(self, "left_on_bp", [])
        lines.append(f"{len(left)} module(s) with parameters learn by BP" + (":" if left else ""))
        lines += [f"  {n}  {t}" for n, t in left]
        return "\n".join(lines)

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
        return self.stream(device, "channel")  # dropout masks

    def stream(self, device, name: str) -> torch.Generator:
        """The seed's continuing stream ``name`` (lchannel.engine.rng), one generator per device."""
        key = (name, str(device))
        if key not in self._generators:
            self._generators[key] = generator(self.seed, name, device)
        return self._generators[key]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_generators"], state["points"], state["_capture"], state["_checked"] = {}, [], None, []
        state["targets"] = None
        state.pop("_first", None)
        state["native"] = None  # a compiled module does not pickle; found again on load
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.native = native.nodes() if self.wants_native() else None

    # -- hooks on the model ----------------------------------------------------------
    def start_pass(self, module, inputs):
        """Forward pre-hook of the model: a new pass records its own receiving points."""
        self.points = []
        if self.lazy is not None:
            self.probing = []  # SRBP's maps are not drawn yet: record every point
        if self.calibrate_pending:
            self._first = (module, inputs)  # the batch to calibrate the maps on ("match")

    def state_loaded(self, *args, **kwargs):
        """Load-state-dict pre-hook of the model: loaded feedback is kept as it is."""
        self.calibrate_pending = False

    def source_hook(self, module, inputs, output):
        """Forward hook of the error's source (the model output by default): links every
        receiving point recorded in this pass to it, so that its backward can deliver the
        output error there (SRBP)."""
        if self.lazy is not None or self.calibrate_pending:
            if not torch.is_grad_enabled() or self.measuring_bp:
                return None  # nothing learns in this pass; the maps wait for one that does
            if self.lazy is not None:
                self._draw_lazily(output)
            if self.calibrate_pending:
                self.calibrate_pending = False
                model, inputs = self.__dict__.pop("_first")
                kept = self.points  # this pass's points (the nested pass records its own)
                calibrate(model, self, inputs, self.source_name)
                self.points = kept
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

    def _draw_lazily(self, output) -> None:
        """SRBP converted without ``example_input``: the first pass that learns finds the
        receiving points and draws their maps (as PyTorch's lazy modules find their shapes)."""
        (receivers,) = self.lazy
        recorded, self.probing, self.lazy = self.probing or [], None, None
        draw_points(self, recorded, output, self.feedback, generator(self.seed, "feedback"), receivers)
        self.points = [(layer, t) for layer, t in recorded if "skip_feedback" in layer._buffers and t.requires_grad]

    def _check_points(self, points, output) -> None:
        n_out = per_example(output)
        for layer, t in points:
            C = layer.skip_feedback
            if C.shape[0] != per_example(t) or C.shape[1] != n_out:
                raise ValueError(
                    f"srbp: layer {_name_of(self, layer)!r} receives {per_example(t)} values per example from "
                    f"{n_out} outputs, but its feedback was drawn for {C.shape[0]} from {C.shape[1]} (from "
                    f"example_input): the SRBP feedback is tied to the input size the model was converted with")

    def straight_through_hook(self, module, inputs, output):
        """Forward hook of an activation module for the '-nof' forms: keep f(x), drop f'."""
        x = inputs[0]
        if self.measuring_bp or not torch.is_grad_enabled() or not x.requires_grad:
            return None
        return StraightThrough.apply(x, output.detach())


def _name_of(ch: ModuleChannel, layer) -> str:
    return next((n for n, m in ch.layers if m is layer), "?")


def channel_of(model: nn.Module) -> ModuleChannel:
    """The learning channel of a converted model (ValueError if it was not converted)."""
    ch = getattr(model, "_lc_channel", None)
    if ch is None:
        raise ValueError("model: not converted; call lchannel.torch.convert(model, ...) first")
    return ch
