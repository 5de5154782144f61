"""Figures of paper 2's experiments beyond MNIST: the Figure 12 grid of f_k heat maps and
per-epoch curves of metrics other than accuracy (the ROC AUC of the HIGGS runs).

Figure 12: one column per k, the first row the target f_k over [−1, 1]², then one row per
algorithm, every panel the network's predicted probability over the square (the
``grid_probability`` array a finished f_k run keeps, 256 × 256) with the test accuracy in
its title.
"""

from __future__ import annotations

import numpy as np

import torch

from ..data.synthetic import f_k, grid
from .plots import annotate, band_note, draw_line, epoch_axis, legend_outside, plt
from .style import LineStyle, styles_for_labels


def target_map(k: int, resolution: int = 256) -> np.ndarray:
    """f_k ∈ {0, 1} on the grid of :func:`lchannel.data.synthetic.grid`, (R, R)."""
    return (f_k(grid(resolution, dtype=torch.float64), k) > 0).double().reshape(
        resolution, resolution).numpy()


def fk_maps_figure(columns: list[tuple[str, int]], rows: list[str], maps: dict, title: str = "",
                   caption: str = ""):
    """``columns``: (label, k) per column; ``rows``: the algorithms' labels; ``maps[(row,
    column label)] = (probability (R, R) or None, panel title)``.  Row 0 is the target."""
    n_r, n_c = len(rows) + 1, len(columns)
    fig, axes = plt.subplots(n_r, n_c, figsize=(2.3 * n_c + 1.2, 2.3 * n_r + 0.8), squeeze=False,
                             layout="constrained")
    extent = (-1, 1, -1, 1)
    image = None
    for j, (clab, k) in enumerate(columns):
        ax = axes[0, j]
        ax.imshow(target_map(k), origin="lower", extent=extent, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"target f_{k}", fontsize=8)
        for i, rlab in enumerate(rows, start=1):
            ax = axes[i, j]
            prob, text = maps.get((rlab, clab), (None, "no finished run"))
            if prob is not None:
                image = ax.imshow(prob, origin="lower", extent=extent, cmap="gray", vmin=0, vmax=1)
            else:
                ax.set_facecolor("0.85")
            ax.set_title(text, fontsize=8)
    for i, lab in enumerate(["target", *rows]):
        axes[i, 0].set_ylabel(lab, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=axes[1:, :].ravel().tolist(), shrink=0.6, label="predicted P(f_k = 1)")
    annotate(fig, title, caption)
    return fig


def metric_figure(curves: dict[str, tuple[list[int], list[list[float]]]], ylabel: str, title: str = "",
                  caption: str = "", styles: dict[str, LineStyle] | None = None, scale: float = 100.0):
    """One metric per epoch (e.g. test ROC AUC), one line per run: the mean over its seeds
    with a ±1 sd band.  ``curves[label] = (epochs, values[epoch][seed])``."""
    styles = styles or styles_for_labels(list(curves))
    fig, ax = plt.subplots(1, 1, figsize=(9, 4.5), layout="constrained")
    for label, (x, vals) in curves.items():
        if x:
            draw_line(ax, x, vals, styles[label], label, scale=scale)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    epoch_axis(ax)
    legend_outside(fig, [ax])
    annotate(fig, title, caption, [band_note([ax])])
    return fig
