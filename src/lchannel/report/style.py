"""One look per algorithm in every figure: colour, line style and marker.

Every figure that draws algorithms (``lchannel compare``'s comparison.png, the report's
accuracy, final-accuracy and alignment figures) takes its lines' looks from
:func:`algorithm_style`, so RBP is the same green everywhere.  A no-f' variant
(``rbp-nof``, ``channel.derivative = "none"``) keeps its base's colour and marker with a
dashed line and hollow markers.  An adaptive channel under paper 2's STDP-like rule
(``rule = "stdp"``: ARBP (STDP), ASRBP (STDP)) keeps its algorithm's colour with a
dash-dot line and a marker of its own, so that the Hebbian and the STDP form of one
algorithm (p2-figure11) can be told apart; its style key is the name with
:data:`STDP_SUFFIX` (``asrbp+stdp``).  Lines that are levels of one setting rather than
algorithms (quantization bits, dropout, sparsity n) take colours from one sequential
colormap, by the level's position on its axis (:func:`line_styles`), so a level has the
same colour in every panel.  An algorithm's colour and marker are its registry entry's
(:data:`lchannel.channels.REGISTRY`); an entry without them (a plugin's) gets ones
derived from its name.

This module does not import matplotlib until a colormap is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import hashlib

from ..channels import REGISTRY, algorithm_names, label, named_form, resolve

# Looks for an entry that brings none (a plugin's): a colour and a marker derived from its
# name, stable across runs and machines.
FALLBACK_COLORS = ("#8dd3c7", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd",
                   "#ccebc5", "#ffed6f")
FALLBACK_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p")


def _fallback(name: str, choices: tuple) -> str:
    return choices[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(choices)]


def algorithm_color(name: str) -> str:
    """The colour of a registered algorithm (its registry entry's, else one derived from its name)."""
    entry = resolve(name)[0]
    return entry.color or _fallback(entry.name, FALLBACK_COLORS)


def algorithm_marker(name: str) -> str:
    """The marker of a registered algorithm (its registry entry's, else one derived from its name)."""
    entry = resolve(name)[0]
    return entry.marker or _fallback(entry.name, FALLBACK_MARKERS)


# The registry's looks as tables (tab10 colours; BP, SBP, RBP, SRBP keep the order blue,
# orange, green, red of the earliest comparison plots); views, kept for importers.
ALGORITHM_COLORS: dict[str, str] = {n: algorithm_color(n) for n in REGISTRY}
ALGORITHM_MARKERS: dict[str, str] = {n: algorithm_marker(n) for n in REGISTRY}
NOF_LINESTYLE = "--"
# Adaptive channels under the STDP-like rule (paper 2, section 3.6): the algorithm's colour,
# a dash-dot line and a marker no other algorithm uses.
STDP_SUFFIX = "+stdp"
STDP_LINESTYLE = "-."
STDP_MARKERS: dict[str, str] = {"arbp": "p", "asrbp": "H"}
# Lines that are levels of a setting: viridis without its pale yellow end.
LEVEL_CMAP = "viridis"
LEVEL_RANGE = (0.0, 0.85)
LEVEL_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p")


@dataclass(frozen=True)
class LineStyle:
    """How one line is drawn; :meth:`kwargs` are ``Axes.plot`` keyword arguments."""

    color: str | tuple
    linestyle: str = "-"
    marker: str = "o"
    filled: bool = True

    def kwargs(self) -> dict:
        kw = {"color": self.color, "linestyle": self.linestyle, "marker": self.marker}
        if not self.filled:
            kw["markerfacecolor"] = "white"
        return kw


def algorithm_key(algorithm: str, channel: dict | None = None) -> str:
    """The style key of a run: the name of its registry named form
    (:func:`lchannel.channels.named_form`: ``rbp`` + ``adaptive`` -> ``arbp``,
    ``derivative = "none"`` -> ``-nof``), so every spelling of one run looks the same;
    with :data:`STDP_SUFFIX` when the channel adapts by the STDP-like rule
    (``asrbp`` + ``rule = "stdp"`` -> ``asrbp+stdp``)."""
    name, opts = named_form(algorithm, channel)
    return name + STDP_SUFFIX if opts.get("rule") == "stdp" else name


def split_key(key: str) -> tuple[str, dict]:
    """``(algorithm name, options)`` of a style key: ``asrbp+stdp`` -> ``("asrbp", {"rule":
    "stdp"})``, ``rbp-nof`` -> ``("rbp-nof", {})``; the name is a registry name
    (:func:`lchannel.channels.split_name` accepts it)."""
    if key.endswith(STDP_SUFFIX):
        return key[: -len(STDP_SUFFIX)], {"rule": "stdp"}
    return key, {}


def key_base(key: str) -> str:
    """The registered algorithm of a style key (``asrbp+stdp`` -> ``asrbp``, ``rbp-nof`` -> ``rbp``)."""
    return resolve(split_key(key)[0])[0].name


def key_label(key: str) -> str:
    """The papers' label of a style key (``asrbp+stdp`` -> ``ASRBP (STDP)``)."""
    return label(*split_key(key))


def algorithm_style(name: str) -> LineStyle:
    """The look of algorithm ``name`` (e.g. ``srbp``, ``rbp-nof``), or of a style key
    (:func:`algorithm_key`, e.g. ``asrbp+stdp``)."""
    name, opts = split_key(name)
    entry, nof = resolve(name)
    color = algorithm_color(entry.name)
    if opts.get("rule") == "stdp":
        return LineStyle(color, STDP_LINESTYLE, STDP_MARKERS[entry.name], not nof)
    return LineStyle(color, NOF_LINESTYLE if nof else "-", algorithm_marker(entry.name), not nof)


_BY_LABEL = {label(n): n for n in algorithm_names() + [n for n, a in REGISTRY.items() if a.cls is None]}
_BY_LABEL.update({label(n, {"rule": "stdp"}): n + STDP_SUFFIX for n in STDP_MARKERS})


def algorithm_of_label(text: str) -> str | None:
    """The style key whose papers' label is ``text`` (``"RBP (no f')"`` -> ``rbp-nof``,
    ``"ASRBP (STDP)"`` -> ``asrbp+stdp``), or None."""
    return _BY_LABEL.get(text)


def level_color(position: int, count: int) -> tuple:
    """The colour of level ``position`` of ``count`` on a sequential colormap."""
    # lazy: matplotlib loads only when a figure is drawn, not at every CLI start
    import matplotlib

    lo, hi = LEVEL_RANGE
    frac = lo + (hi - lo) * (position / (count - 1) if count > 1 else 0.0)
    return tuple(matplotlib.colormaps[LEVEL_CMAP](frac))


def line_styles(lines: dict[str, tuple[str | None, int, int]]) -> dict[str, LineStyle]:
    """The look of every line of a figure from ``{label: (algorithm key or None, level
    position, level count)}``.

    Lines that are different algorithms get their algorithms' looks; lines of one
    algorithm (or of unknown ones) get sequential colours by level position; when several
    lines share an algorithm and the algorithms differ too, a line keeps its algorithm's
    colour and line style and its level picks the marker.
    """
    algos = [a for a, _, _ in lines.values()]
    known = None not in algos
    if known and len(set(algos)) == len(algos):
        return {lab: algorithm_style(a) for lab, (a, _, _) in lines.items()}
    if not known or len(set(algos)) == 1:
        return {lab: LineStyle(level_color(p, n), "-", LEVEL_MARKERS[p % len(LEVEL_MARKERS)])
                for lab, (_, p, n) in lines.items()}
    out = {}
    for lab, (a, p, _) in lines.items():
        s = algorithm_style(a)
        out[lab] = LineStyle(s.color, s.linestyle, LEVEL_MARKERS[p % len(LEVEL_MARKERS)], s.filled)
    return out


def styles_for_labels(labels: list[str]) -> dict[str, LineStyle]:
    """Looks for lines named by label only: algorithm looks when every label is an
    algorithm's papers' label (:func:`lchannel.channels.label`), else sequential by order."""
    return line_styles({lab: (algorithm_of_label(lab), i, len(labels)) for i, lab in enumerate(labels)})
