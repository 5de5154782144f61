"""Learning channels: how the output error reaches the deep synapses.

Use :func:`build_channel` with an algorithm name, or the classes directly::

    from lchannel.channels import RandomBackprop, SkippedRandomBackprop
    ch = SkippedRandomBackprop()                 # SRBP = direct feedback alignment
    ch = RandomBackprop(derivative="none")       # RBP (no f') = feedback alignment without f'
    ch = build_channel("srbp", feedback={"distribution": "sparse", "n": 2}, lc_dropout=0.1)

Every variant of paper 1 (sections 3-6) is an option of :func:`build_channel`; see
docs/channels.md for the list, the equation each implements, and the CLI spelling.
"""

from __future__ import annotations

from .algorithms import (
    RESAMPLE,
    TOPOLOGIES,
    Backprop,
    RandomBackprop,
    RandomFeedback,
    SkippedBackprop,
    SkippedRandomBackprop,
    TopLayerOnly,
    mixed_topology,
    topology_sources,
)
from .base import DERIVATIVES, LearningChannel
from .feedback import DISTRIBUTIONS, FeedbackInit
from .synapse import SynapseSignal
from .transforms import (
    Chain,
    ChannelDropout,
    MagnitudeOnly,
    Quantize,
    SignalTransform,
    SignOnly,
    quantize,
)

# name -> (class, fixed keyword arguments: what the name means, cannot be overridden)
ALGORITHMS: dict[str, tuple[type, dict]] = {
    "bp": (Backprop, {}),
    "sbp": (SkippedBackprop, {}),
    "rbp": (RandomBackprop, {}),
    "srbp": (SkippedRandomBackprop, {}),
    "arbp": (RandomBackprop, {"adaptive": True}),
    "asrbp": (SkippedRandomBackprop, {"adaptive": True}),
    "top": (TopLayerOnly, {}),
    "mixed": (RandomFeedback, {}),  # needs skip_layers or topology
    "cascade": (RandomFeedback, {"topology": "cascade"}),
}

# name -> default keyword arguments (options override them).  Paper 1, Figure 2: "For the
# ARBP algorithm, the learning rate was reduced by a factor of 0.1" (of the feedback).
DEFAULT_OPTIONS: dict[str, dict] = {
    "arbp": {"adapt_rate": 0.1},
}

NOF_SUFFIX = "-nof"

LABELS = {
    "bp": "BP", "sbp": "SBP", "rbp": "RBP", "srbp": "SRBP", "arbp": "ARBP",
    "asrbp": "ASRBP", "top": "Top layer only", "mixed": "Mixed RBP/SRBP", "cascade": "Cascade",
}


def algorithm_names() -> list[str]:
    """Every accepted algorithm name, including the ``-nof`` (no f') variants."""
    names = list(ALGORITHMS)
    return names + [n + NOF_SUFFIX for n in names if n != "top"]


def label(name: str) -> str:
    """The papers' label for an algorithm name, e.g. ``rbp-nof`` -> ``RBP (no f')``."""
    base, nof = split_name(name)
    return LABELS[base] + (" (no f')" if nof else "")


def split_name(name: str) -> tuple[str, bool]:
    nof = name.endswith(NOF_SUFFIX)
    base = name[: -len(NOF_SUFFIX)] if nof else name
    if base not in ALGORITHMS or (nof and base == "top"):
        raise ValueError(f"algorithm must be one of {algorithm_names()}, got {name!r}")
    return base, nof


# Convenience options turned into signal transforms, applied in this order.
TRANSFORM_OPTIONS = ("sign_only", "magnitude_only", "quantize_bits", "quantize_alpha", "lc_dropout")


def transforms_from_options(options: dict) -> list[SignalTransform]:
    """Pop the convenience transform options from ``options`` and build the transforms:
    ``sign_only``/``magnitude_only`` (bool), ``quantize_bits`` (+ ``quantize_alpha``,
    default 2⁻³, eq. 19), ``lc_dropout`` (probability p, section 6.1)."""
    out: list[SignalTransform] = []
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
        out.append(Quantize(2.0 ** -3 if alpha is None else alpha, bits))
    elif alpha is not None:
        raise ValueError("quantize_alpha needs quantize_bits")
    p = options.pop("lc_dropout", None)
    if p:
        out.append(ChannelDropout(p))
    return out


def build_channel(name: str, **options) -> LearningChannel:
    """A learning channel from its name (see :data:`ALGORITHMS`; ``-nof`` = no f').

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
    cls, fixed = ALGORITHMS[base]
    options = dict(options)
    for key, value in fixed.items():
        if key in options and options[key] != value:
            raise ValueError(f"algorithm {name!r} means {key}={value!r}; it cannot take {key}={options[key]!r}")
    extra = transforms_from_options(options)
    if extra:
        given = options.pop("transforms", None) or []
        given = list(given.transforms) if isinstance(given, Chain) else list(given) if isinstance(given, (list, tuple)) else [given]
        options["transforms"] = given + extra
    kwargs = {**DEFAULT_OPTIONS.get(base, {}), **options, **fixed}
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


def _accepted_options(cls) -> set[str]:
    import inspect

    params = inspect.signature(cls.__init__).parameters
    return {k for k, p in params.items() if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


__all__ = [
    "ALGORITHMS", "Backprop", "Chain", "ChannelDropout", "DEFAULT_OPTIONS", "DERIVATIVES",
    "DISTRIBUTIONS", "FeedbackInit", "LearningChannel", "MagnitudeOnly", "Quantize", "RESAMPLE",
    "RandomBackprop", "RandomFeedback", "SignOnly", "SignalTransform", "SkippedBackprop",
    "SkippedRandomBackprop", "SynapseSignal", "TOPOLOGIES", "TopLayerOnly", "algorithm_names",
    "build_channel", "label", "mixed_topology", "quantize", "split_name", "topology_sources",
]
