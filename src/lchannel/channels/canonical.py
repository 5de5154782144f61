"""Canonical forms of runs: every spelling of one run resolves to one ``(name, options)``.

:func:`canonicalize` resolves every spelling of the same run to one canonical
``(name, options)``: ``rbp-nof`` is ``rbp`` with ``derivative="none"``, ``arbp`` is ``rbp``
with ``adaptive=True`` and its own default ``adapt_rate`` made explicit (0.1, Figure 2 of
paper 1), ``asrbp`` is ``srbp`` with ``adaptive=True``; options equal to the canonical
class's defaults (and ``adapt_rate`` without adaptation, which changes nothing) are
dropped.  Equal runs then have equal canonical forms, and different runs different ones.
:func:`named_form` spells the canonical run with the registry's own names (the cache keys,
labels and plot styles), :func:`coincident_form` merges names that compute the same
channel by construction (:data:`COINCIDES`).
"""

from __future__ import annotations

import inspect

from ..engine.quantize import SIGNAL_ALPHA
from .feedback import FeedbackInit
from .registry import NOF_SUFFIX, REGISTRY, build_channel, split_name
from .sources import SIGN_RESAMPLES


# Names that compute the same learning channel as another name by construction, with
# why: name -> (the name it coincides with, reason).  Their canonical forms stay apart
# (stored results keep their keys); figures and tables say that the two coincide
# (:func:`lchannel.report.plots.coinciding_runs`).  SBP differs from BP only in where f' is
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
        if entry.canonical == name and entry.names_runs and all(opts.get(k) == v for k, v in entry.fixed.items()):
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
        if opts.get("resample") in SIGN_RESAMPLES:
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
