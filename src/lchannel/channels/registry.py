"""One registry of the learning channels' algorithm names.

Each name is one :class:`Algorithm` entry: the class, the fixed arguments that define
the name (``arbp`` is RBP with ``adaptive=True``), its default options, the papers'
label, and example options for the common checks (``mixed`` needs ``skip_layers``).
Every name except ``top`` also has a no-f' form ``<name>-nof`` (``derivative="none"``).

:func:`canonicalize` resolves every spelling of the same run to one canonical
``(name, options)``: ``rbp-nof`` is ``rbp`` with ``derivative="none"``, ``arbp`` is ``rbp``
with ``adaptive=True`` and its own default ``adapt_rate`` made explicit (0.1, Figure 2 of
paper 1), ``asrbp`` is ``srbp`` with ``adaptive=True``; options equal to the canonical
class's defaults (and ``adapt_rate`` without adaptation, which changes nothing) are
dropped.  Equal runs then have equal canonical forms, and different runs different ones.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from .algorithms import (
    Backprop,
    RandomBackprop,
    RandomFeedback,
    SkippedBackprop,
    SkippedRandomBackprop,
    TopLayerOnly,
)
from .base import LearningChannel
from .feedback import FeedbackInit
from ..quantize import SIGNAL_ALPHA
from .distinct import DistinctRandomBackprop, DistinctSkippedRandomBackprop
from .transforms import Chain, ChannelActivation, ChannelDropout, MagnitudeOnly, Quantize, SignalTransform, SignOnly

NOF_SUFFIX = "-nof"


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm name.

    cls: the channel class; fixed: keyword arguments the name means (they cannot be
    overridden); defaults: default options (an option given overrides them); label: the
    papers' name; example: options that make a valid channel for the common checks;
    canonical: the name whose class and fixed arguments this one is a spelling of (None:
    itself).
    """

    name: str
    cls: type
    label: str
    fixed: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    example: dict = field(default_factory=dict)
    canonical: str | None = None


REGISTRY: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("bp", Backprop, "BP"),
    Algorithm("sbp", SkippedBackprop, "SBP"),
    Algorithm("rbp", RandomBackprop, "RBP"),
    Algorithm("srbp", SkippedRandomBackprop, "SRBP"),
    # Paper 1, Figure 2: "For the ARBP algorithm, the learning rate was reduced by a factor
    # of 0.1" (of the feedback).
    Algorithm("arbp", RandomBackprop, "ARBP", {"adaptive": True}, {"adapt_rate": 0.1}, canonical="rbp"),
    Algorithm("asrbp", SkippedRandomBackprop, "ASRBP", {"adaptive": True}, canonical="srbp"),
    Algorithm("top", TopLayerOnly, "Top layer only"),
    Algorithm("mixed", RandomFeedback, "Mixed RBP/SRBP", example={"skip_layers": [1]}),  # or a topology
    Algorithm("cascade", RandomFeedback, "Cascade", {"topology": "cascade"}),
    # Paper 2, Figures 4-6 and 8: a learning channel with neurons of its own.
    Algorithm("distinct-rbp", DistinctRandomBackprop, "Distinct RBP", example={"lc_width": 3}),
    Algorithm("distinct-srbp", DistinctSkippedRandomBackprop, "Distinct SRBP", example={"lc_width": 3}),
)}


# Names that compute the same learning channel as another name by construction, with
# why: name -> (the name it coincides with, reason).  Their canonical forms stay apart
# (stored results keep their keys); figures and tables say that the two coincide
# (:func:`lchannel.plots.coinciding_runs`).  SBP differs from BP only in where f' is
# applied (``local``: at the receiving layer only, SkippedBackprop); with
# ``derivative="none"`` both run the same propagation (channels.base: I^h = G^h = J^h),
# so BP's signal (W^{h+1})ᵀ I^{h+1} unrolls to SBP's skipped product
# (W^{h+1})ᵀ⋯(W^L)ᵀ (T − O), for every option both accept.
COINCIDES: dict[str, tuple[str, str]] = {
    "sbp-nof": ("bp-nof", "with no f' anywhere, BP's backpropagated signal (W^{h+1})^T...(W^L)^T (T - O) "
                          "is SBP's skipped one"),
}


def coincident_form(algorithm: str, options: dict | None = None) -> tuple[str, dict]:
    """:func:`named_form`, with a name that coincides with another by construction
    (:data:`COINCIDES`) replaced by that one: runs with equal coincident forms compute the
    same thing (``sbp-nof`` and ``bp-nof`` give ``("bp-nof", {})``)."""
    name, opts = named_form(algorithm, options)
    return (COINCIDES[name][0] if name in COINCIDES else name), opts


def coincidence_reason(names) -> str:
    """Why runs of ``names`` (named forms with one :func:`coincident_form`) coincide: the
    declared reason of :data:`COINCIDES`, or "the same run" when the names are equal."""
    for n in names:
        if n in COINCIDES:
            return COINCIDES[n][1]
    return "the same run"


def algorithm_names() -> list[str]:
    """Every accepted algorithm name, including the ``-nof`` (no f') variants."""
    names = list(REGISTRY)
    return names + [n + NOF_SUFFIX for n in names if n != "top"]


def split_name(name: str) -> tuple[str, bool]:
    """``(registered name, no-f')`` of an algorithm name; ValueError for an unknown one."""
    nof = isinstance(name, str) and name.endswith(NOF_SUFFIX)
    base = name[: -len(NOF_SUFFIX)] if nof else name
    if base not in REGISTRY or (nof and base == "top"):
        raise ValueError(f"algorithm must be one of {algorithm_names()}, got {name!r}")
    return base, nof


def label(name: str, options: dict | None = None) -> str:
    """The papers' label for an algorithm name, e.g. ``rbp-nof`` -> ``RBP (no f')``; with
    ``options``, ``derivative="none"`` also reads as no f'."""
    base, nof = split_name(name)
    nof = nof or (options or {}).get("derivative") == "none"
    stdp = (options or {}).get("rule") == "stdp"  # ARBP/ASRBP under the STDP-like rule (paper 2 sec. 3.6)
    return REGISTRY[base].label + (" (STDP)" if stdp else "") + (" (no f')" if nof else "")


def class_defaults(cls: type) -> dict:
    """The keyword defaults of a channel class's constructor, through its bases."""
    out: dict = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.default is not p.empty:
                out[p.name] = p.default
    return out


# Convenience options turned into signal transforms, applied in this order.
TRANSFORM_OPTIONS = ("lc_activation", "sign_only", "magnitude_only", "quantize_bits", "quantize_alpha", "lc_dropout")


def transforms_from_options(options: dict) -> list[SignalTransform]:
    """Pop the convenience transform options from ``options`` and build the transforms:
    ``lc_activation`` (a transfer function in the learning channel, paper 2 Figure 7;
    ``identity`` adds nothing), ``sign_only``/``magnitude_only`` (bool), ``quantize_bits`` (+ ``quantize_alpha``,
    default 2⁻³, eq. 19), ``lc_dropout`` (probability p, section 6.1)."""
    out: list[SignalTransform] = []
    g = options.pop("lc_activation", None)
    if g is not None and g != "identity":
        out.append(ChannelActivation(g))
    elif g is not None:
        ChannelActivation(g)  # validates the name
    sign_only, magnitude_only = options.pop("sign_only", False), options.pop("magnitude_only", False)
    for key, v in (("sign_only", sign_only), ("magnitude_only", magnitude_only)):
        if not isinstance(v, bool):
            raise ValueError(f"{key} must be true or false, got {v!r}")
    if sign_only and magnitude_only:
        raise ValueError("sign_only and magnitude_only exclude each other (together they leave a constant 1)")
    if sign_only:
        out.append(SignOnly())
    if magnitude_only:
        out.append(MagnitudeOnly())
    bits = options.pop("quantize_bits", None)
    alpha = options.pop("quantize_alpha", None)
    if bits is not None:
        out.append(Quantize(SIGNAL_ALPHA if alpha is None else alpha, bits))
    elif alpha is not None:
        raise ValueError("quantize_alpha needs quantize_bits")
    p = options.pop("lc_dropout", None)
    if p:
        out.append(ChannelDropout(p))
    return out


def build_channel(name: str, **options) -> LearningChannel:
    """A learning channel from its name (see :data:`REGISTRY`; ``-nof`` = no f').

    ``options`` are passed to the class: ``derivative`` (all | local | none),
    ``transforms``; for the random channels ``feedback`` (dict of :class:`FeedbackInit`
    fields: distribution, n, mean, sparse_scale, scale, congruent), ``adaptive``,
    ``adapt_rate``, ``resample`` (zero_mean | sign_concordant), ``feedback_samples``,
    ``per_synapse``, and for ``mixed`` (RandomFeedback) ``skip_layers`` or ``topology``
    (chain | skip | cascade | {h: [k, ...]}); plus the transform shortcuts of :data:`TRANSFORM_OPTIONS`
    (sign_only, magnitude_only, quantize_bits, quantize_alpha, lc_dropout).  Unknown or
    invalid options raise ValueError naming them.
    """
    base, nof = split_name(name)
    entry = REGISTRY[base]
    cls, fixed = entry.cls, entry.fixed
    options = dict(options)
    for key, value in fixed.items():
        if key in options and options[key] != value:
            raise ValueError(f"algorithm {name!r} means {key}={value!r}; it cannot take {key}={options[key]!r}")
    # A channel with neurons of its own (Distinct) takes lc_activation as its neurons'
    # transfer function; for the others it is a transform of the summed signal.
    native = {k: options.pop(k) for k in ("lc_activation",) if k in options and k in _accepted_options(cls)}
    extra = transforms_from_options(options)
    options.update(native)
    if extra:
        given = options.pop("transforms", None) or []
        given = list(given.transforms) if isinstance(given, Chain) else list(given) if isinstance(given, (list, tuple)) else [given]
        options["transforms"] = given + extra
    kwargs = {**entry.defaults, **options, **fixed}
    if nof:
        if kwargs.get("derivative", "none") != "none":
            raise ValueError(f"{name!r} is the no-f' variant; it cannot take derivative={kwargs['derivative']!r}")
        kwargs["derivative"] = "none"
    accepted = _accepted_options(cls)
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        shortcuts = [k for k in TRANSFORM_OPTIONS if "transforms" in accepted]
        raise ValueError(f"algorithm {name!r} does not accept the option(s) {unknown}; "
                         f"accepted: {sorted(accepted - set(fixed)) + shortcuts}")
    return cls(**kwargs)


def named_form(algorithm: str, options: dict | None = None) -> tuple[str, dict]:
    """The canonical run (:func:`canonicalize`) spelled with the registry's own names:
    ``rbp`` with ``adaptive=True`` is ``arbp`` (its ``adapt_rate`` 0.1 left implicit, any
    other rate explicit), ``derivative="none"`` is the ``-nof`` suffix.  Every spelling of
    one run has the same named form, and the usual spelling is its own named form, so cache
    keys, labels and plot styles built from it agree across spellings and stay what they
    were for the names people write."""
    name, opts = canonicalize(algorithm, options)
    opts = dict(opts)
    for entry in REGISTRY.values():
        if entry.canonical == name and all(opts.get(k) == v for k, v in entry.fixed.items()):
            implicit = class_defaults(REGISTRY[name].cls)
            for k in entry.fixed:
                opts.pop(k)
            for k, v in entry.defaults.items():
                current = opts.pop(k, implicit.get(k))
                if current != v:
                    opts[k] = current
            name = entry.name
            break
    if opts.get("derivative") == "none" and name != "top":
        opts.pop("derivative")
        name += NOF_SUFFIX
    return name, dict(sorted(opts.items()))


def _accepted_options(cls) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {k for k, p in params.items() if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


# Options whose value None/False/0 means "not used", like their default.
_TRANSFORM_DEFAULTS = {"lc_activation": "identity", "sign_only": False, "magnitude_only": False, "quantize_bits": None,
                       "quantize_alpha": None, "lc_dropout": None}


def canonicalize(algorithm: str, options: dict | None = None) -> tuple[str, dict]:
    """The canonical ``(name, options)`` of a run of ``algorithm`` with channel ``options``
    (the names :func:`~lchannel.channels.build_channel` accepts).  Invalid input raises
    the ValueError of ``build_channel``, before anything else."""
    options = dict(options or {})
    build_channel(algorithm, **options)  # refuses what it would refuse
    base, nof = split_name(algorithm)
    entry = REGISTRY[base]
    opts = {**entry.defaults, **options, **entry.fixed}
    if nof:
        opts["derivative"] = "none"
    name = entry.canonical or base
    cls = REGISTRY[name].cls
    if name == "mixed" and opts.get("skip_layers") is None and opts.get("topology") in ("chain", "skip", "cascade"):
        # The general random channel on a named topology is the named algorithm; its
        # derivative default is "all" (srbp's is "local"), so it is made explicit.
        name = {"chain": "rbp", "skip": "srbp", "cascade": "cascade"}[opts.pop("topology")]
        opts.setdefault("derivative", "all")
        opts.pop("skip_layers", None)  # None here
        cls = REGISTRY[name].cls
    opts.update(REGISTRY[name].fixed)
    defaults = {**class_defaults(cls), **_TRANSFORM_DEFAULTS, "derivative": cls.default_derivative}
    if opts.get("resample") in ("none", False):
        opts["resample"] = None
    if opts.get("quantize_bits") is not None and opts.get("quantize_alpha") == SIGNAL_ALPHA:
        opts.pop("quantize_alpha")  # the default α of the quantized signal (eq. 19)
    if opts.get("lc_dropout") == 0:
        opts.pop("lc_dropout")
    if "feedback" in opts:
        fb = FeedbackInit.from_options(opts["feedback"]).to_dict()
        plain = FeedbackInit().to_dict()
        opts["feedback"] = {k: v for k, v in fb.items() if v != plain[k]}
        if opts.get("resample") == "sign_concordant":
            opts["feedback"].pop("congruent", None)  # sign-concordant draws are congruent anyway
        if not opts["feedback"]:
            opts.pop("feedback")
    if not opts.get("adaptive", False):
        opts.pop("adapt_rate", None)  # without adaptation the rate changes nothing
    if isinstance(opts.get("lc_width"), (list, tuple)) and len(set(opts["lc_width"])) == 1:
        opts["lc_width"] = opts["lc_width"][0]  # one width for every hidden layer
    if "skip_layers" in opts and opts["skip_layers"] is not None:
        opts["skip_layers"] = sorted({int(h) for h in opts["skip_layers"]})
    fixed = REGISTRY[name].fixed  # what the name means is in the name, not in the options
    out = {k: v for k, v in opts.items() if k not in fixed and (k not in defaults or v != defaults[k])}
    if name == "mixed" and out.get("skip_layers") is not None:
        out.pop("topology", None)
    return name, dict(sorted(out.items()))
