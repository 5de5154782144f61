"""Accuracy figures in the style of paper 1's Figures 1-3 and 7-9, and the pieces every
run figure shares (the report's final-accuracy and alignment figures use them too).

Conventions (docs/plots.md): one line per run, the mean over its seeds (members) with a
±1 sample-standard-deviation band where at least two seeds are finite; markers on the
points (at most about a dozen per line), so that a one-epoch run still shows something;
curves start at epoch 0, the untrained network, when the run recorded it
(``History.initial``); one look per algorithm (:mod:`lchannel.style`); the legend
outside the axes, to the right; the title on top and a caption with the options that
define the comparison (:func:`describe_runs`) at the bottom.  Seeds that diverged (NaN)
drop out of the mean from the epoch they diverged; a line with no finite value is left
out and the caption says so.

Every ``*_figure`` function returns the :class:`matplotlib.figure.Figure` (tests inspect
its artists); every ``plot_*`` function draws, saves a PNG and closes it.
"""

from __future__ import annotations

import json
import math
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .config import TrainConfig  # noqa: E402
from .style import LineStyle, styles_for_labels  # noqa: E402
from .train import History  # noqa: E402

MAX_MARKERS = 12
BAND_NOTE = "Lines: mean over seeds; bands: ±1 sd."
# Config fields that the caption names in its own words, or that are not the experiment's.
_CAPTION_OWN = ("dataset", "architecture", "seeds", "epochs", "subset", "algorithm", "data_dir", "device")


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


def draw_line(ax, x, values, style: LineStyle, label: str, scale: float = 1.0, max_markers: int | None = MAX_MARKERS):
    """Draw one run on ``ax``: mean line with markers (on every point, or at most about
    ``max_markers``) and a ±1 sd band; the Line2D, or None (nothing drawn) when no point
    is finite."""
    mean, sd = member_stats(values)
    if not np.isfinite(mean).any():
        return None
    x = np.asarray(x, dtype=float)
    every = max(1, math.ceil(len(x) / max_markers)) if max_markers else 1
    (line,) = ax.plot(x, scale * mean, label=label, lw=1.6, ms=5, markevery=every, **style.kwargs())
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


def legend_outside(fig, axes) -> object | None:
    """One legend for all ``axes`` (each label once), outside them on the right."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if not handles:
        return None
    return fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False,
                      ncol=1 if len(labels) <= 18 else 2)


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


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _settings(cfg: TrainConfig) -> dict:
    """A config's settings for a caption: channel options under their own names, the
    output layer resolved, without what the caption names in its own words."""
    d = {k: v for k, v in cfg.to_dict().items() if k not in _CAPTION_OWN and k != "channel"}
    d["output"] = cfg.output_pair
    return _flat({**d, **cfg.channel})


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).replace(" ", "")


def _count(values: set[int], unit: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo} {unit}{'s' if lo != 1 else ''}" if lo == hi else f"{lo}-{hi} {unit}s"


def describe_runs(configs: Sequence[TrainConfig]) -> str:
    """The options that define a comparison of ``configs`` (one per line), for a caption:
    data set, architecture, seeds, epochs and subset, then every setting (learning-channel
    options flattened to their own names) that all lines share and that differs from
    lchannel's defaults (paper 1's MNIST protocol), e.g.
    ``mnist, A[784,100,100,100,100,10], 5 seeds, 5 epochs, subset 2000, quantize_bits=3``.
    """
    if not configs:
        return ""
    c0 = configs[0]
    parts = []
    if len({c.dataset for c in configs}) == 1:
        parts.append(c0.dataset)
    if len({str(c.arch) for c in configs}) == 1:
        parts.append(c0.arch if c0.is_conv else "A[" + ",".join(map(str, c0.sizes)) + "]")
    parts.append(_count({len(c.seeds) for c in configs}, "seed"))
    parts.append(_count({c.epochs for c in configs}, "epoch"))
    subsets = {c.subset for c in configs}
    if len(subsets) == 1 and c0.subset:
        parts.append(f"subset {c0.subset}")
    flat = [_settings(c) for c in configs]
    default = _settings(TrainConfig(dataset=c0.dataset))
    for key, v in flat[0].items():
        if all(key in f and json.dumps(f[key], default=str) == json.dumps(v, default=str) for f in flat) \
                and (key not in default or default[key] != v):
            parts.append(f"{key}={_fmt(v)}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------ accuracy
def _diverged_suffix(hist: History) -> str:
    n = sum(d is not None for d in hist.diverged_at)
    return f" ({n}/{len(hist.diverged_at)} diverged)" if n else ""


def accuracy_figure(curves: dict[str, History], title: str = "", caption: str = "",
                    styles: dict[str, LineStyle] | None = None):
    """Training (upper) and test (lower) accuracy per epoch, one line per run: the mean
    over its seeds with a ±1 sd band, as in paper 1, Figures 1-3 and 7-9 ("training
    (upper) and test (lower) accuracy, as a function of training epoch").  Curves start at
    epoch 0 (the untrained network) when ``History.initial`` was recorded.  ``styles``
    maps a label to its look (default: :func:`lchannel.style.styles_for_labels`);
    ``caption`` is printed under the axes (e.g. :func:`describe_runs`)."""
    styles = styles or styles_for_labels(list(curves))
    fig, axes = plt.subplots(2, 1, figsize=(9, 8), sharex=True, layout="constrained")
    drawn, empty = set(), []
    for label, hist in curves.items():
        for ax, metric in zip(axes, ("train_acc", "test_acc")):
            x, vals = hist.curve(metric)
            if not x:
                continue
            line = draw_line(ax, x, vals, styles[label], label + _diverged_suffix(hist), scale=100.0)
            if line is not None:
                drawn.add(label)
        if label not in drawn:
            empty.append(label)
    axes[0].set_ylabel("training accuracy (%)")
    axes[1].set_ylabel("test accuracy (%)")
    axes[1].set_xlabel("epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        epoch_axis(ax)
    legend_outside(fig, axes)
    annotate(fig, title, caption, [band_note(axes), left_out_note(empty, "no finite values")])
    return fig


def plot_accuracy(curves: dict[str, History], path: str | Path, title: str = "", caption: str = "",
                  styles: dict[str, LineStyle] | None = None) -> Path:
    """Save :func:`accuracy_figure` (paper 1, Figures 1-3, 7-9) as a PNG at ``path``."""
    return save_figure(accuracy_figure(curves, title, caption, styles), path)
