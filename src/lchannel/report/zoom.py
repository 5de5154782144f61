"""The final-epochs zoom of an accuracy figure (:func:`.plots.accuracy_figure`): where
the window starts (:func:`zoom_start`), the y-range that fits the lines there and names a
line far below them (:func:`zoom_range`), and the zoomed panels' axes, window box and
note (:func:`finish_zoom_panels`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.patches
import matplotlib.ticker
import numpy as np


def zoom_start(xs: Sequence[float]) -> float | None:
    """The first epoch of the final-epochs zoom for a figure whose curves have the points
    ``xs``: the last quarter of them, at least two and never epoch 0; None (no zoom) with
    fewer than three points."""
    pts = sorted({float(x) for x in xs})
    if len(pts) < 3:
        return None
    k = min(len(pts) - 1, max(2, math.ceil(len(pts) / 4)))
    return pts[-k]


def zoom_range(lines: dict[str, np.ndarray], min_span: float = 0.5) -> tuple[float, float, list[str]]:
    """The y-range that fits ``lines`` (``{label: mean values in the zoom window}``, in %):
    ``(low, high, labels below it)``.  When the lines' final values split at one gap wider
    than twice the span of the lines above it (at least half of them, two or more), the
    range fits those and the lines below the gap are named instead of squeezing it."""
    finals = {lab: v[np.isfinite(v)][-1] for lab, v in lines.items() if np.isfinite(v).any()}
    if not finals:
        return math.nan, math.nan, []
    order = sorted(finals, key=finals.get, reverse=True)
    kept, below = order, []
    if len(order) >= 3:
        vals = [finals[lab] for lab in order]
        gaps = [vals[i] - vals[i + 1] for i in range(len(vals) - 1)]
        i = int(np.argmax(gaps))
        upper = order[: i + 1]
        if len(upper) >= max(2, math.ceil(len(order) / 2)):
            span = np.ptp(np.concatenate([lines[lab][np.isfinite(lines[lab])] for lab in upper]))
            if gaps[i] > 2 * max(span, min_span):
                kept, below = upper, order[i + 1:]
    vals = np.concatenate([lines[lab][np.isfinite(lines[lab])] for lab in kept])
    lo, hi = float(vals.min()), float(vals.max())
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad, below



def finish_zoom_panels(zaxes, axes, zoomed: list[dict[str, np.ndarray]], x0: float, x1: float) -> str:
    """Limits, grid and title of the zoomed panels ``zaxes`` (one per full panel of
    ``axes``; ``zoomed``: each one's ``{label: mean values in %}``), the window outlined on
    the full panels, lines below the range named; returns the caption's note on the zoom."""
    window = f"epochs {x0:g}-{x1:g}"  # at least two points (zoom_start)
    for zax, ax, lines in zip(zaxes, axes, zoomed):
        zax.grid(alpha=0.3)
        zax.set_xlim(x0 - 0.03 * (x1 - x0) - 0.02, x1 + 0.03 * (x1 - x0) + 0.02)
        zax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
        lo, hi, below = zoom_range(lines)
        if not np.isfinite([lo, hi]).all():
            continue
        if below:  # room for the note naming them, under the lowest line
            lo -= 0.12 * (hi - lo)
        zax.set_ylim(lo, hi)
        ax.add_patch(matplotlib.patches.Rectangle((x0, lo), x1 - x0, hi - lo, fill=False, ec="0.35", lw=0.9,
                                                  ls=":", zorder=5, label="_zoom window"))
        if below:
            text = ", ".join(f"{lab} ({lines[lab][np.isfinite(lines[lab])][-1]:.1f}%)" for lab in below)
            zax.text(0.02, 0.02, f"below this range: {text}", transform=zax.transAxes, fontsize=7, color="0.2",
                     va="bottom", ha="left", bbox={"fc": "white", "ec": "0.7", "alpha": 0.9, "pad": 2})
    zaxes[0].set_title(f"final {window}, zoomed", fontsize=9)
    zaxes[1].set_xlabel("epoch")
    return f"Right: the final {window} (dotted box), y-range fitted to the lines there."
