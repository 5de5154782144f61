"""Accuracy figures in the style of paper 1's Figures 1-3 and 7-9, and the pieces every
run figure shares (the report's final-accuracy and alignment figures use them too).

Conventions (docs/plots.md): one line per run, the mean over its seeds (members) with a
±1 sample-standard-deviation band where at least two seeds are finite; markers on the
points (at most about a dozen per line), so that a one-epoch run still shows something;
curves start at epoch 0, the untrained network, when the run recorded it
(``History.initial``); one look per algorithm (:mod:`lchannel.report.style`); the legend
outside the axes, to the right; the title on top and a caption with the options that
define the comparison (:func:`describe_runs`) at the bottom.  Seeds that diverged (NaN)
drop out of the mean from the epoch they diverged; a line with no finite value is left
out and the caption says so.

Accuracy figures also make lines that end close together readable: a panel to the right
zooms on the final epochs (its y-range fitted to the lines there; a line far below the
others is named rather than squeezing the range), the legend is a table of every line's
final mean accuracy, and lines that coincide by construction (the registry's declared
equivalences, e.g. BP (no f') and SBP (no f'), :func:`coinciding_runs`) are named in the
caption when their recorded curves are identical, the first drawn wider underneath.
The caption's text is :mod:`.captions`, the zoom :mod:`.zoom` (both re-exported here).

Every ``*_figure`` function returns the :class:`matplotlib.figure.Figure` (tests inspect
its artists); every ``plot_*`` function draws, saves a PNG and closes it.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.lines
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .captions import (  # noqa: E402, F401  (re-exported: the figures' callers import them from here)
    coincidence_note, coincident_lines, coinciding_runs, describe_runs, identical_curves, same_values,
)
from .style import LineStyle, styles_for_labels  # noqa: E402
from .zoom import finish_zoom_panels, zoom_range, zoom_start  # noqa: E402, F401  (zoom_range re-exported)
from ..engine.train import History  # noqa: E402

MAX_MARKERS = 12
BAND_NOTE = "Lines: mean over seeds; bands: ±1 sd."


# ------------------------------------------------------------------------------ shared pieces
def member_stats(values) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over members (``values[point][member]``, NaN/inf = diverged) and the sample
    standard deviation where at least two members are finite (None where nowhere)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    if v.size == 0:
        return np.full(len(v), np.nan), None
    finite = np.isfinite(v)
    v = np.where(finite, v, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points
        mean = np.nanmean(v, axis=1)
        sd = np.where(finite.sum(axis=1) > 1, np.nanstd(v, axis=1, ddof=1), np.nan)
    return mean, (sd if np.isfinite(sd).any() else None)


def draw_line(ax, x, values, style: LineStyle, label: str, scale: float = 1.0, max_markers: int | None = MAX_MARKERS,
              widen: float = 1.0):
    """Draw one run on ``ax``: mean line with markers (on every point, or at most about
    ``max_markers``) and a ±1 sd band; the Line2D, or None (nothing drawn) when no point
    is finite.  ``widen`` > 1 draws a wider line with bigger markers (a line that another
    one covers exactly, drawn underneath it)."""
    mean, sd = member_stats(values)
    if not np.isfinite(mean).any():
        return None
    x = np.asarray(x, dtype=float)
    every = max(1, math.ceil(len(x) / max_markers)) if max_markers else 1
    (line,) = ax.plot(x, scale * mean, label=label, lw=1.6 * widen, ms=5 * widen ** 0.7, markevery=every,
                      **style.kwargs())
    if sd is not None and len(x) > 1:
        ax.fill_between(x, scale * (mean - sd), scale * (mean + sd), color=style.color, alpha=0.15, lw=0)
    return line


def band_note(axes) -> str:
    """The caption's note on bands, when ``axes`` show one."""
    return BAND_NOTE if any(ax.collections for ax in np.ravel(axes)) else ""


def epoch_axis(ax) -> None:
    """Integer epoch ticks; a single epoch gets some room on both sides."""
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
    lo, hi = ax.dataLim.intervalx
    if np.isfinite([lo, hi]).all() and hi - lo < 1:
        ax.set_xlim(lo - 0.5, hi + 0.5)


def legend_outside(fig, axes, columns: dict[str, Sequence[str]] | None = None,
                   header: Sequence[str] = ()) -> object | None:
    """One legend for all ``axes`` (each label once), outside them on the right.

    ``columns`` makes the legend a table: ``{label: cells}`` adds the cells after each
    label, aligned in a monospace font under ``header`` (a first row without a line
    sample: the label column's name, then the cells' names)."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if not handles:
        return None
    kw: dict = {}
    if columns:
        rows = [[lab, *columns.get(lab, ())] for lab in labels]
        head = list(header)
        ncell = max(len(r) for r in [*rows, head])
        rows = [r + [""] * (ncell - len(r)) for r in rows]
        head = head + [""] * (ncell - len(head))
        widths = [max(len(r[i]) for r in [*rows, head]) for i in range(ncell)]

        def line(r):
            return "  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))]).rstrip()

        labels = [line(r) for r in rows]
        if header:
            handles.insert(0, matplotlib.lines.Line2D([], [], linestyle="none", marker=None))
            labels.insert(0, line(head))
        kw["prop"] = {"family": "monospace", "size": 8}
    else:
        kw["fontsize"] = 8
    return fig.legend(handles, labels, loc="outside right upper", frameon=False,
                      ncol=1 if len(labels) <= 18 else 2, **kw)


def annotate(fig, title: str = "", caption: str = "", notes: Sequence[str] = ()) -> None:
    """Title on top; caption and notes (wrapped to the figure's width) at the bottom."""
    if title:
        fig.suptitle(title, fontsize=11)
    caption = caption.strip()
    if caption and caption[-1] not in ".;:!?":
        caption += "."
    text = " ".join(t for t in (caption, *notes) if t)
    if text:
        width = max(40, int(fig.get_figwidth() * 15))
        fig.supxlabel(textwrap.fill(text, width), fontsize=8, color="0.2")


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def left_out_note(labels: Sequence[str], why: str) -> str:
    return f"Left out ({why}): {', '.join(labels)}." if labels else ""


# ------------------------------------------------------------------------------ accuracy
ACCURACY_METRICS = ("train_acc", "test_acc")
# Lines that cover another one exactly are drawn this much wider underneath it.
COVERED_WIDEN = 2.6


def _diverged_suffix(hist: History) -> str:
    n = sum(d is not None for d in hist.diverged_at)
    return f" ({n}/{len(hist.diverged_at)} diverged)" if n else ""


def accuracy_figure(curves: dict[str, History], title: str = "", caption: str = "",
                    styles: dict[str, LineStyle] | None = None,
                    coincide: Sequence[tuple[Sequence[str], str]] | None = None, zoom: bool = True):
    """Training (upper) and test (lower) accuracy per epoch, one line per run: the mean
    over its seeds with a ±1 sd band, as in paper 1, Figures 1-3 and 7-9 ("training
    (upper) and test (lower) accuracy, as a function of training epoch").  Curves start at
    epoch 0 (the untrained network) when ``History.initial`` was recorded.  ``styles``
    maps a label to its look (default: :func:`lchannel.report.style.styles_for_labels`);
    ``caption`` is printed under the axes (e.g. :func:`describe_runs`).

    Readability of lines that end close together: with three or more points per curve
    and ``zoom``, a second column zooms on the final epochs (:func:`zoom_start`, y-range
    :func:`zoom_range`; its window is outlined on the full panels); the legend is a table
    of each line's final mean training and test accuracy; ``coincide`` (groups of labels
    with the reason, :func:`coinciding_runs`) names lines that coincide by construction in
    the caption, when their curves are identical (:func:`coincident_lines`), and draws all
    but the last of each group wider, underneath it.

    Axes: ``fig.axes[0]``/``[1]`` the full training/test panels, ``[2]``/``[3]`` the zoomed
    ones (when drawn)."""
    styles = styles or styles_for_labels(list(curves))
    same = coincident_lines(curves, coincide)
    widen = {lab: COVERED_WIDEN for labs, _ in same for lab in labs[:-1]}
    xs = [x for h in curves.values() for m in ACCURACY_METRICS for x in h.curve(m)[0]]
    x0 = zoom_start(xs) if zoom else None
    fig, axes, zaxes = _accuracy_axes(zoomed=x0 is not None)
    finals, zoomed, empty = _draw_accuracy_lines(curves, axes, zaxes, x0, styles, widen)
    axes[0].set_ylabel("training accuracy (%)")
    axes[1].set_ylabel("test accuracy (%)")
    axes[1].set_xlabel("epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        epoch_axis(ax)
    notes = [band_note([*axes, *zaxes])]
    if zaxes:
        notes.append(finish_zoom_panels(zaxes, axes, zoomed, x0, max(xs)))
    legend_outside(fig, [*axes, *zaxes], columns=finals, header=("final mean %", "train", "test"))
    notes += [coincidence_note(same), left_out_note(empty, "no finite values")]
    annotate(fig, title, caption, notes)
    return fig


def _accuracy_axes(zoomed: bool):
    """The figure and its panels: full training/test accuracy on the left, and their
    zoomed panels on the right when ``zoomed`` (an empty list otherwise)."""
    if not zoomed:
        fig, axes = plt.subplots(2, 1, figsize=(9, 8), sharex=True, layout="constrained")
        return fig, axes, []
    fig = plt.figure(figsize=(14, 8), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(3, 2))
    axes = [fig.add_subplot(gs[0, 0])]
    axes.append(fig.add_subplot(gs[1, 0], sharex=axes[0]))
    zaxes = [fig.add_subplot(gs[0, 1])]
    zaxes.append(fig.add_subplot(gs[1, 1], sharex=zaxes[0]))
    for ax in (axes[0], zaxes[0]):
        ax.tick_params(labelbottom=False)
    return fig, axes, zaxes


def _draw_accuracy_lines(curves: dict[str, History], axes, zaxes, x0: float | None,
                         styles: dict[str, LineStyle], widen: dict[str, float]):
    """Every run's training and test lines (and, from ``x0``, their zoomed copies).
    Returns the legend table's final mean accuracies ``{shown label: [train, test]}``, the
    zoomed panels' mean values ``[{shown label: values in %}]`` and the labels left out
    (no finite value)."""
    drawn, empty, finals = set(), [], {}
    zoomed: list[dict[str, np.ndarray]] = [{}, {}]
    for label, hist in curves.items():
        shown = label + _diverged_suffix(hist)
        for i, (ax, metric) in enumerate(zip(axes, ACCURACY_METRICS)):
            x, vals = hist.curve(metric)
            if not x:
                continue
            w = widen.get(label, 1.0)
            line = draw_line(ax, x, vals, styles[label], shown, scale=100.0, widen=w)
            if line is None:
                continue
            drawn.add(label)
            last = member_stats(vals)[0][-1]  # the line's last point (NaN: every member diverged)
            finals.setdefault(shown, ["—", "—"])[i] = f"{100 * last:.2f}" if np.isfinite(last) else "—"
            if zaxes:
                keep = [j for j, xv in enumerate(x) if xv >= x0]
                if keep and draw_line(zaxes[i], [x[j] for j in keep], [vals[j] for j in keep], styles[label],
                                      shown, scale=100.0, widen=w) is not None:
                    zoomed[i][shown] = 100 * member_stats([vals[j] for j in keep])[0]
        if label not in drawn:
            empty.append(label)
    return finals, zoomed, empty


def plot_accuracy(curves: dict[str, History], path: str | Path, title: str = "", caption: str = "",
                  styles: dict[str, LineStyle] | None = None,
                  coincide: Sequence[tuple[Sequence[str], str]] | None = None, zoom: bool = True) -> Path:
    """Save :func:`accuracy_figure` (paper 1, Figures 1-3, 7-9) as a PNG at ``path``."""
    return save_figure(accuracy_figure(curves, title, caption, styles, coincide, zoom), path)
