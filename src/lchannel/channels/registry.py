"""One registry of the learning channels' algorithm names.

Each name is one :class:`Algorithm` entry: the class, the fixed arguments that define
the name (``arbp`` is RBP with ``adaptive=True``), its default options, the papers'
label, and example options for the common checks (``mixed`` needs ``skip_layers``).
Every name except ``top`` also has a no-f' form ``<name>-nof`` (``derivative="none"``).

:mod:`lchannel.channels.canonical` resolves every spelling of one run to one canonical
``(name, options)`` over these entries.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from .algorithms import RandomBackprop, RandomFeedback, SkippedRandomBackprop
from .exact import Backprop, SkippedBackprop, TopLayerOnly
from .base import LearningChannel
from ..plugins import load_plugins
from ..engine.quantize import SIGNAL_ALPHA
from .distinct import DistinctRandomBackprop, DistinctSkippedRandomBackprop
from .transforms import Chain, ChannelActivation, ChannelDropout, MagnitudeOnly, Quantize, SignalTransform, SignOnly

NOF_SUFFIX = "-nof"


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm name: everything the toolkit knows about it, in one place.

    cls: the explicit engine's channel class, or None where the algorithm exists only in
    the converter (``engine_refusal`` says why); fixed: keyword arguments the name means
    (they cannot be overridden); defaults: default options (an option given overrides
    them); label: the papers' (or the literature's) name; example: options that make a
    valid channel for the common checks; canonical: the name whose class and fixed
    arguments this one is a spelling of (None: itself); names_runs: whether a run of the
    canonical class with these fixed arguments is *named* by this entry (its cache key,
    label and plot style; ``arbp``), or keeps the canonical name (``brsf`` is RBP
    resampled sign-concordantly, the name runs had before the entry existed).

    aliases: other names users know it by (``fa`` for ``rbp``), accepted wherever the
    name is; color, marker: its look in every figure (:mod:`lchannel.report.style`; None: one
    derived from the name); converter: the mode of :mod:`lchannel.torch.modes` serving it
    in ``lchannel.torch.convert``, or None (``converter_refusal`` says why); summary: one
    line for ``lchannel algorithms``, source its reference; error_driven: every signal
    is built from the output error, so paper 1's Facts 2-3 hold (flipping the error flips
    every update; no error, no update); DRTP's hidden signal is built from the target.
    """

    name: str
    cls: type | None
    label: str
    fixed: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    example: dict = field(default_factory=dict)
    canonical: str | None = None
    names_runs: bool = True
    aliases: tuple[str, ...] = ()
    color: str | None = None
    marker: str | None = None
    converter: str | None = None
    converter_refusal: str | None = None
    engine_refusal: str | None = None
    summary: str = ""
    source: str = ""
    error_driven: bool = True


_NO_CHAIN = "a module graph has no numbered chain of layers"
REGISTRY: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("bp", Backprop, "BP", color="#1f77b4", marker="o", converter="bp", aliases=("backprop",),
              summary="backpropagation: the error through the transposed forward weights", source="paper 1, eq. 3-5"),
    Algorithm("sbp", SkippedBackprop, "SBP", color="#ff7f0e", marker="s",
              converter_refusal="skipped BP sends the error through the product of the transposed forward maps "
                                "between the output and each layer; a module graph (batch norm, residual additions, "
                                "pooling) has no such matrix",
              summary="skipped BP: the output error through the product of transposed forward maps",
              source="paper 1, section 3"),
    Algorithm("rbp", RandomBackprop, "RBP", color="#2ca02c", marker="^", converter="fa", aliases=("fa",),
              summary="random backpropagation (feedback alignment): a fixed random matrix in place of each W^T",
              source="paper 1, eq. 6-8; Lillicrap et al. 2016"),
    Algorithm("srbp", SkippedRandomBackprop, "SRBP", color="#d62728", marker="v", converter="dfa", aliases=("dfa",),
              summary="skipped RBP (direct feedback alignment): the output error through a fixed random matrix "
                      "straight to every layer", source="paper 1, eq. 9; paper 2, eq. 11; Nokland 2016"),
    # Paper 1, Figure 2: "For the ARBP algorithm, the learning rate was reduced by a factor
    # of 0.1" (of the feedback).
    Algorithm("arbp", RandomBackprop, "ARBP", {"adaptive": True}, {"adapt_rate": 0.1}, canonical="rbp",
              color="#bcbd22", marker="D", converter="afa",
              summary="adaptive RBP: the feedback learns by the forward weights' Hebbian rule",
              source="paper 1, section 3; paper 2, section 3.4"),
    Algorithm("asrbp", SkippedRandomBackprop, "ASRBP", {"adaptive": True}, canonical="srbp",
              color="#9467bd", marker="P", converter="adfa",
              summary="adaptive SRBP: the direct feedback learns by the Hebbian rule", source="paper 2, section 3.4"),
    Algorithm("top", TopLayerOnly, "Top layer only", color="#7f7f7f", marker="X",
              converter_refusal="top-layer-only needs no converter: freeze the other layers with requires_grad_(False)",
              summary="only the top layer learns", source="paper 1, section 4"),
    Algorithm("mixed", RandomFeedback, "Mixed RBP/SRBP", example={"skip_layers": [1]},  # or a topology
              color="#8c564b", marker="*",
              converter_refusal=f"the mixed RBP/SRBP channel numbers hidden layers of a chain; {_NO_CHAIN}: use srbp "
                                f"with receivers=[...] to choose which layers receive the output error",
              summary="RBP on some layers, SRBP on others (or any topology)", source="paper 1, section 4.2"),
    Algorithm("cascade", RandomFeedback, "Cascade", {"topology": "cascade"}, color="#e377c2", marker="h",
              converter_refusal=f"cascading needs a feedback matrix between every pair of layers of a chain; {_NO_CHAIN}",
              summary="every layer sends to every layer below", source="paper 1, section 4.2"),
    # Paper 2, Figures 4-6 and 8: a learning channel with neurons of its own.
    Algorithm("distinct-rbp", DistinctRandomBackprop, "Distinct RBP", example={"lc_width": 3},
              color="#17becf", marker="<",
              converter_refusal="a Distinct channel has neurons of its own between the layers of a chain; "
                                f"{_NO_CHAIN}",
              summary="RBP through a learning channel with neurons of its own", source="paper 2, Figures 4-6"),
    Algorithm("distinct-srbp", DistinctSkippedRandomBackprop, "Distinct SRBP", example={"lc_width": 3},
              color="#393b79", marker=">",
              converter_refusal="a Distinct channel has neurons of its own between the layers of a chain; "
                                f"{_NO_CHAIN}",
              summary="SRBP through a learning channel with neurons of its own", source="paper 2, Figures 4-6"),
    # The literature's relatives (issue 27): sign symmetry, Kolen-Pollack, weight mirror, DRTP.
    Algorithm("usf", RandomBackprop, "uSF", {"resample": "sign_concordant", "feedback": {"distribution": "sign"}},
              canonical="rbp", names_runs=False, color="#aec7e8", marker="1", converter="usf",
              summary="uniform sign-concordant feedback: B = sign(W) (the converter scales it by Glorot's std, "
                      "as biotorch does)", source="Liao, Leibo & Poggio 2016; paper 1, section 4.2 item 2"),
    Algorithm("frsf", RandomBackprop, "frSF", {"resample": "signs"}, canonical="rbp", names_runs=False,
              color="#98df8a", marker="2", converter="frsf",
              summary="fixed random-magnitude sign-concordant feedback: B = |R| * sign(W), R drawn once",
              source="Liao, Leibo & Poggio 2016 (biotorch's frSF)"),
    Algorithm("brsf", RandomBackprop, "brSF", {"resample": "sign_concordant"}, canonical="rbp", names_runs=False,
              color="#ff9896", marker="3", converter="brsf",
              summary="batchwise random-magnitude sign-concordant feedback: B = |R| * sign(W), R redrawn every "
                      "minibatch", source="Liao, Leibo & Poggio 2016; paper 1, section 4.2 item 2"),
    Algorithm("kp", None, "KP", color="#c5b0d5", marker="4", converter="kp",
              engine_refusal="Kolen-Pollack decays the forward weights with the feedback, and the explicit "
                             "engine's SGD has no weight decay; its ARBP at adapt_rate=1 is KP with no decay",
              summary="Kolen-Pollack: the feedback receives W's update and both decay, so B -> W",
              source="Kolen & Pollack 1994; Akrout et al. 2019"),
    Algorithm("wm", None, "WM", color="#c49c94", marker="8", converter="wm",
              engine_refusal="weight mirroring drives every layer with noise between updates, a pass the explicit "
                             "engine's training loop does not have",
              summary="weight mirror: the feedback learns W from the layer's response to white noise",
              source="Akrout et al. 2019"),
    Algorithm("drtp", SkippedRandomBackprop, "DRTP", {"projected": "target"}, canonical="srbp",
              color="#f7b6d2", marker="d", converter="drtp", error_driven=False,
              summary="direct random target projection: a fixed random image of the target, not the error, to "
                      "every hidden layer", source="Frenkel, Lefebvre & Bol 2021"),
)}

# Every other name of an entry (``fa`` -> ``rbp``).
ALIASES: dict[str, str] = {alias: a.name for a in REGISTRY.values() for alias in a.aliases}


def register(entry: Algorithm, replace: bool = False) -> Algorithm:
    """Add an algorithm to the registry (a plugin's, ``docs/extending.md``): its name and
    aliases become accepted everywhere (``build_channel``, ``TrainConfig``, specs, the CLI,
    labels, plot styles; the converter when ``entry.converter`` names a mode of
    :data:`lchannel.torch.modes.MODES`).  A name or alias already taken is refused unless
    ``replace``."""
    if not isinstance(entry, Algorithm):
        raise ValueError(f"register: an Algorithm entry is needed, got {type(entry).__name__}")
    names = [entry.name, *entry.aliases]
    bad = [n for n in names if not isinstance(n, str) or not n or n.endswith(NOF_SUFFIX)]
    if bad:
        raise ValueError(f"register: names {bad} are not accepted (a non-empty string not ending in {NOF_SUFFIX!r})")
    taken = sorted(n for n in names if n in REGISTRY or n in ALIASES)
    if taken and not replace:
        raise ValueError(f"register: {taken} already registered; pass replace=True to replace")
    if entry.cls is None and not entry.engine_refusal:
        raise ValueError(f"register: {entry.name!r} has no engine class; say why in engine_refusal")
    REGISTRY[entry.name] = entry
    for alias in entry.aliases:
        ALIASES[alias] = entry.name
    return entry


def algorithm_names() -> list[str]:
    """Every algorithm name the explicit engine accepts, including the ``-nof`` (no f')
    variants (not the aliases, nor the converter-only entries)."""
    names = [n for n, a in REGISTRY.items() if a.cls is not None]
    return names + [n + NOF_SUFFIX for n in names if n != "top"]


def is_engine_name(name: str) -> bool:
    """Whether the explicit engine runs ``name`` (a name, an alias, a ``-nof`` form)."""
    try:
        return resolve(name)[0].cls is not None
    except ValueError:
        return False


def engine_refusal(name) -> str | None:
    """Why the explicit engine refuses a name the registry knows (None otherwise)."""
    try:
        entry = resolve(name)[0]
    except ValueError:
        return None
    return None if entry.cls is not None else f"{entry.label} runs only in lchannel.torch.convert: " \
                                               f"{entry.engine_refusal}"


def converter_names() -> list[str]:
    """Every algorithm name ``lchannel.torch.convert`` accepts (aliases included; the
    ``-nof`` forms of these too, except where a form is refused)."""
    names = [n for n, a in REGISTRY.items() if a.converter is not None]
    return names + [alias for alias, n in ALIASES.items() if REGISTRY[n].converter is not None]


def resolve(name: str) -> tuple[Algorithm, bool]:
    """``(registry entry, no-f')`` of any accepted spelling: a name, an alias, either with
    the ``-nof`` suffix; ValueError naming every accepted name for an unknown one."""
    nof = isinstance(name, str) and name.endswith(NOF_SUFFIX)
    base = name[: -len(NOF_SUFFIX)] if nof else name
    base = ALIASES.get(base, base) if isinstance(base, str) else base
    if isinstance(base, str) and base not in REGISTRY and load_plugins():
        return resolve(name)  # a plugin registered since: look again
    if not isinstance(base, str) or base not in REGISTRY or (nof and base == "top"):
        raise ValueError(f"algorithm must be one of {algorithm_names()} (or an alias: {sorted(ALIASES)}), "
                         f"got {name!r}")
    return REGISTRY[base], nof


def split_name(name: str) -> tuple[str, bool]:
    """``(registered name, no-f')`` of an algorithm name or alias that the explicit engine
    runs; ValueError for an unknown one, or one that only the converter serves (why)."""
    entry, nof = resolve(name)
    if entry.cls is None:
        raise ValueError(f"algorithm {name!r} ({entry.label}) is not available in the explicit engine: "
                         f"{entry.engine_refusal}; it is available in lchannel.torch.convert")
    return entry.name, nof


def label(name: str, options: dict | None = None) -> str:
    """The papers' label for an algorithm name, e.g. ``rbp-nof`` -> ``RBP (no f')``; with
    ``options``, ``derivative="none"`` also reads as no f'."""
    entry, nof = resolve(name)
    nof = nof or (options or {}).get("derivative") == "none"
    stdp = (options or {}).get("rule") == "stdp"  # ARBP/ASRBP under the STDP-like rule (paper 2 sec. 3.6)
    return entry.label + (" (STDP)" if stdp else "") + (" (no f')" if nof else "")


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


def _accepted_options(cls) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {k for k, p in params.items() if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
