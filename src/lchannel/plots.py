"""Plots in the style of paper 1's figures: accuracy per epoch, mean with a band."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .train import History  # noqa: E402


def _curve(history: History, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vals = np.array(history.metrics[metric], dtype=float)  # (epochs, members)
    if vals.size == 0:
        return np.array([]), np.array([]), np.array([])
    with np.errstate(all="ignore"):
        mean = np.nanmean(vals, axis=1)
        sd = np.nanstd(vals, axis=1, ddof=1) if vals.shape[1] > 1 else np.zeros_like(mean)
    return np.array(history.epochs), mean, np.nan_to_num(sd)


def plot_accuracy(curves: dict[str, History], path: str | Path, title: str = "") -> Path:
    """Train (upper) and test (lower) accuracy per epoch, one line per run: the mean over
    members with a ±1 standard deviation band (paper 1, Figures 1-4, 7-9)."""
    fig, axes = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    # A variant and its no-f' version share a colour; the no-f' line is dashed.
    bases = list(dict.fromkeys(label.replace(" (no f')", "") for label in curves))
    for label, hist in curves.items():
        c = colors[bases.index(label.replace(" (no f')", "")) % 10]
        ls = "--" if "no f'" in label else "-"
        for ax, metric in zip(axes, ("train_acc", "test_acc")):
            x, m, s = _curve(hist, metric)
            if x.size == 0:
                continue
            ax.plot(x, 100 * m, ls, color=c, label=label, lw=1.6)
            ax.fill_between(x, 100 * (m - s), 100 * (m + s), color=c, alpha=0.18, lw=0)
    axes[0].set_ylabel("training accuracy (%)")
    axes[1].set_ylabel("test accuracy (%)")
    axes[1].set_xlabel("epoch")
    axes[1].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right", ncol=2)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

