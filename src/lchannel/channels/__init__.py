"""Learning channels: how the output error reaches the deep synapses.

Use :func:`build_channel` with an algorithm name, or the classes directly::

    from lchannel.channels import RandomBackprop, SkippedRandomBackprop
    ch = SkippedRandomBackprop()                 # SRBP = direct feedback alignment
    ch = RandomBackprop(derivative="none")       # RBP (no f') = feedback alignment without f'
"""

from __future__ import annotations

from .algorithms import (
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
from .transforms import (
    Chain,
    ChannelDropout,
    MagnitudeOnly,
    Quantize,
    SignalTransform,
    SignOnly,
    quantize,
)

# name -> (class, fixed keyword arguments)
ALGORITHMS: dict[str, tuple[type, dict]] = {
    "bp": (Backprop, {}),
    "sbp": (SkippedBackprop, {}),
    "rbp": (RandomBackprop, {}),
    "srbp": (SkippedRandomBackprop, {}),
    "arbp": (RandomBackprop, {"adaptive": True}),
    "asrbp": (SkippedRandomBackprop, {"adaptive": True}),
    "top": (TopLayerOnly, {}),
    "mixed": (RandomFeedback, {}),
    "cascade": (RandomFeedback, {"topology": "cascade"}),
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
    if options.pop("sign_only", False):
        out.append(SignOnly())
    if options.pop("magnitude_only", False):
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

    ``options`` are passed to the class (derivative, feedback, adaptive, adapt_rate,
    transforms, topology, skip_layers, ...), plus the transform shortcuts of
    :data:`TRANSFORM_OPTIONS`.  Unknown options raise ValueError naming them.
    """
    base, nof = split_name(name)
    cls, fixed = ALGORITHMS[base]
    options = dict(options)
    extra = transforms_from_options(options)
    if extra:
        given = options.pop("transforms", None) or []
        given = list(given.transforms) if isinstance(given, Chain) else list(given) if isinstance(given, (list, tuple)) else [given]
        options["transforms"] = given + extra
    kwargs = {**fixed, **options}
    if nof:
        if kwargs.get("derivative", "none") != "none":
            raise ValueError(f"{name!r} is the no-f' variant; it cannot take derivative={kwargs['derivative']!r}")
        kwargs["derivative"] = "none"
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"algorithm {name!r} does not accept these options: {sorted(options)} ({err})") from None


__all__ = [
    "ALGORITHMS", "Backprop", "Chain", "ChannelDropout", "DERIVATIVES", "DISTRIBUTIONS",
    "FeedbackInit", "LearningChannel", "MagnitudeOnly", "Quantize", "RandomBackprop",
    "RandomFeedback", "SignOnly", "SignalTransform", "SkippedBackprop",
    "SkippedRandomBackprop", "TopLayerOnly", "algorithm_names", "build_channel", "label",
    "mixed_topology", "quantize", "split_name", "topology_sources",
]
