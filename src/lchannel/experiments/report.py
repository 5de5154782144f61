"""Reports of a spec's results: Markdown and CSV tables in the layout of paper 1's
Table 1, and PNG plots in the style of its Figures 1-4 and 7-9.

Every table cell is the mean final metric over the seeds that finished (diverged seeds
are counted apart), with the sample standard deviation in parentheses and, in brackets,
the number of seeds and epochs behind it::

    97.84 (0.12) [5 × 100 ep]

A single seed has no sample standard deviation: ``97.84 (—) [1 × 100 ep]`` (and an
empty ``*_sd`` field, with ``*_n`` = 1, in ``report.csv``).

A cell computed with ``--epochs`` or ``--subset`` overrides (a quick look, not the
paper's protocol) is marked ``*`` and the footnote names the overrides.  Without
overrides, :func:`collect` prefers each cell's full-protocol runs and falls back to the
most complete shortened variant stored; with overrides it reads exactly those runs.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import REGISTRY
from ..tables import NO_SD, fmt_sd, mean_sd
from ..style import algorithm_key, key_base, key_label, line_styles, styles_for_labels
from ..divergence import divergence_summary, divergence_text
from ..train import History
from .spec import SHORTENING, Cell, Overrides, Spec, describe_protocol
from .store import FINISHED, METRIC_COLUMNS, ResultsStore, RunRow

METRIC_TITLES = {"test_acc": "test accuracy (%)", "train_acc": "training accuracy (%)",
                 "test_loss": "test loss", "train_loss": "training loss"}


@dataclass
class CellResult:
    """What the store holds for one cell of a spec."""

    cell: Cell
    config_hash: str
    overrides: dict
    planned: int
    runs: list[RunRow] = field(default_factory=list)  # every stored run of the chosen variant
    store: ResultsStore | None = None

    @property
    def finished(self) -> list[RunRow]:
        return [r for r in self.runs if r.status in FINISHED]

    @property
    def done(self) -> list[RunRow]:
        return [r for r in self.runs if r.status == "done"]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    def diverged(self) -> list[tuple[int, dict]]:
        """``(seed, cause)`` of every diverged run: the cause as the store holds it
        (``RunRow.divergence``), or just the epoch for runs stored without one."""
        return [(r.seed, r.divergence or {"epoch": r.diverged_at}) for r in self.runs if r.status == "diverged"]

    @property
    def shortened(self) -> bool:
        return bool(SHORTENING & set(self.overrides))

    @property
    def epochs(self) -> int:
        return max((r.epochs_done for r in self.finished), default=0)

    def stats(self, metric: str) -> tuple[float, float, int]:
        """(mean, sample sd, n) of the final ``metric`` over seeds that did not diverge."""
        return mean_sd(r.final[metric] for r in self.done)

    def history(self) -> History | None:
        """Per-epoch metrics of the finished seeds as a :class:`History` (NaN-padded), with
        ``initial`` (epoch 0, the untrained network) from the store when it was recorded."""
        runs = self.finished
        if not runs or self.store is None:
            return None
        per_run = [{row["epoch"]: row for row in self.store.epochs(r.run_id)} for r in runs]
        epochs = sorted(set().union(*per_run))
        h = History([r.seed for r in runs])
        h.diverged_at = [r.diverged_at for r in runs]
        h.divergence = [r.divergence if r.diverged_at is not None else None for r in runs]
        initial = [self.store.initial(r.run_id) for r in runs]
        if any(i is not None for i in initial):
            h.initial = {m: [math.nan if i is None else i[m] for i in initial] for m in METRIC_COLUMNS}
        for ep in epochs:
            vals = {m: [pr[ep][m] if ep in pr else math.nan for pr in per_run] for m in METRIC_COLUMNS}
            lr = next((pr[ep]["lr"] for pr in per_run if ep in pr), math.nan)
            h.append(ep, vals, lr, 0.0)
        return h

    def extra(self, metric: str) -> tuple[list[int], list[list[float]]]:
        """``(epochs, values[epoch][seed])`` of a metric of the store's ``metrics`` table
        (e.g. ``test_auc``; epoch 0 = untrained) over the finished seeds; empty if none."""
        runs = self.finished
        if not runs or self.store is None:
            return [], []
        per_run = [dict(self.store.extra_metrics(r.run_id).get(metric, [])) for r in runs]
        epochs = sorted(set().union(*per_run))
        return epochs, [[pr.get(ep, math.nan) for pr in per_run] for ep in epochs]

    def kept_array(self, name: str) -> tuple[np.ndarray, RunRow] | None:
        """An array kept of the first finished run that has it (e.g. the f_k predictions),
        with that run's row."""
        for r in (self.finished if self.store is not None else []):
            a = self.store.array(r.run_id, name)
            if a is not None:
                return a, r
        return None

    def alignment(self) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
        """``{(metric, layer): (epochs, values[epoch, seed])}`` over the finished seeds."""
        runs = self.finished
        if not runs or self.store is None:
            return {}
        data: dict = {}
        for i, r in enumerate(runs):
            for ep, layer, metric, v in self.store.alignment(r.run_id):
                data.setdefault((metric, layer), {}).setdefault(ep, [math.nan] * len(runs))[i] = v
        out = {}
        for key, by_ep in data.items():
            eps = sorted(by_ep)
            out[key] = (np.array(eps), np.array([by_ep[e] for e in eps], dtype=float))
        return out


def collect(spec: Spec, store: ResultsStore, overrides: Overrides | None = None,
            where: dict | None = None) -> list[CellResult]:
    """The stored results of every cell of ``spec`` (see module doc for which runs);
    ``where`` keeps only some cells (``{axis: [labels]}``)."""
    exact = overrides is not None and bool(overrides.to_dict())
    cells = spec.cells(overrides if exact else None, where)
    out = []
    for cell in cells:
        h = cell.key
        runs = store.runs(h, list(cell.config.seeds) if exact else None)
        chosen = CellResult(cell, h, cell.overrides, len(cell.config.seeds), runs, store)
        if not exact and not chosen.finished:
            best = None
            for vh, vo in store.cell_variants(spec.name, cell.cell_id):
                if vh == h:
                    continue
                vruns = store.runs(vh)
                cand = CellResult(cell, vh, vo, len(vo.get("seeds", cell.config.seeds)), vruns, store)
                score = (len(cand.finished), cand.epochs)
                if cand.finished and (best is None or score > best[0]):
                    best = (score, cand)
            if best is not None:
                chosen = best[1]
        out.append(chosen)
    return out


# ------------------------------------------------------------------------------ tables
def _axes_for_table(spec: Spec) -> tuple[list[str], list[str]]:
    r = spec.report
    names = spec.axis_names
    if r.layout in ("table", "maps"):
        cols = list(r.columns)
        rows = list(r.rows) or [n for n in names if n not in cols]
    elif r.layout == "curves":
        cols = [r.panels] if r.panels else []
        rows = [r.lines] if r.lines else []
    else:  # final
        rows = [r.x]
        cols = [r.lines] if r.lines else []
    rows += [n for n in names if n not in rows and n not in cols]
    return rows, cols


def _ordered_keys(spec: Spec, results: list[CellResult], axes: list[str]) -> list[tuple]:
    keys = []
    for res in results:
        k = tuple(res.cell.labels[a] for a in axes)
        if k not in keys:
            keys.append(k)
    order = {a: spec.axis(a).labels() for a in axes}
    return sorted(keys, key=lambda k: [order[a].index(v) for a, v in zip(axes, k)])


def _fmt_value(metric: str, x: float) -> str:
    return f"{100 * x:.2f}" if metric.endswith("acc") else f"{x:.4f}"


def cell_text(res: CellResult, metric: str) -> str:
    """``mean (sd) [n × epochs ep]`` with diverged/failed/pending notes and ``*`` if shortened;
    a single seed has no sample sd: ``97.84 (—) [1 × 100 ep]``.  Diverged seeds are named
    after it with the epoch and the first non-finite quantity: ``97.10 (0.20) [4 × 10 ep, 1
    diverged] — seed 1 at epoch 7 (W^2)``."""
    text = _cell_value(res, metric)
    div = divergence_summary(res.diverged())
    return f"{text} — {div}" if div else text


def _cell_value(res: CellResult, metric: str) -> str:
    mean, sd, n = res.stats(metric)
    div, failed = res.count("diverged"), res.count("failed")
    pending = res.planned - len(res.finished) - failed if res.planned else 0
    star = "*" if res.shortened else ""
    notes = []
    if div:
        notes.append(f"{div} diverged")
    if failed:
        notes.append(f"{failed} failed")
    if pending > 0:
        notes.append(f"{pending} pending")
    if n == 0:
        if div:
            return f"diverged [{div} × {res.epochs} ep]{star}"
        return ("failed" if failed else "pending") + star
    note = ", " + ", ".join(notes) if notes else ""
    sd_text = fmt_sd(sd, lambda x: _fmt_value(metric, x))
    return f"{_fmt_value(metric, mean)} ({sd_text}) [{n} × {res.epochs} ep{note}]{star}"


def table(spec: Spec, results: list[CellResult], metric: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the report table: rows and columns from the spec's layout; a
    combination that is not in the grid is an empty cell (as in paper 1's Table 1)."""
    metric = metric or spec.report.metric
    row_axes, col_axes = _axes_for_table(spec)
    rkeys = _ordered_keys(spec, results, row_axes)
    ckeys = _ordered_keys(spec, results, col_axes) if col_axes else [()]
    by = {(tuple(r.cell.labels[a] for a in row_axes), tuple(r.cell.labels[a] for a in col_axes)): r for r in results}
    corner = " / ".join(spec.axis(a).title or a for a in row_axes)
    header = [corner] + ([" / ".join(k) for k in ckeys] if col_axes else [METRIC_TITLES[metric]])
    rows = []
    for rk in rkeys:
        row = [" / ".join(rk)]
        for ck in ckeys:
            res = by.get((rk, ck))
            row.append("" if res is None else cell_text(res, metric))
        rows.append(row)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def csv_rows(spec: Spec, results: list[CellResult]) -> tuple[list[str], list[list]]:
    names = spec.axis_names
    header = ["spec", *names, "config_hash", "protocol", "overrides", "seeds_planned", "seeds_done", "diverged",
              "failed", "epochs"]
    for m in METRIC_COLUMNS:
        header += [f"{m}_mean", f"{m}_sd", f"{m}_n"]
    header.append("divergence")  # why seeds diverged (divergence_text), "; " between seeds
    rows = []
    for r in results:
        over = ";".join(f"{k}={v}" for k, v in sorted(r.overrides.items()))
        row = [spec.name, *(r.cell.labels[a] for a in names), r.config_hash, "shortened" if r.shortened else "full",
               over, r.planned, len(r.done), r.count("diverged"), r.count("failed"), r.epochs]
        for m in METRIC_COLUMNS:
            mean, sd, n = r.stats(m)
            row += ["" if math.isnan(mean) else f"{mean:.6g}", "" if math.isnan(sd) else f"{sd:.6g}", n]
        row.append("; ".join(f"seed {s}: {divergence_text(c)}" for s, c in r.diverged()))
        rows.append(row)
    return header, rows


# ------------------------------------------------------------------------------ plots
# Row labels of the alignment figure (metrics of lchannel.alignment), as mathtext.
ALIGN_LABELS = {"signal": r"$\angle(I^h, B^h)$",
                "update": r"$\angle(\Delta W^h, \Delta W^h_{\mathrm{BP}})$"}
FEEDBACK_LABELS = {"chain": r"$\angle(C^h, (W^{h+1})^\top)$",
                   "skip": r"$\angle(C^h, (W^L \cdots W^{h+1})^\top)$",
                   "any": r"$\angle(C^h, (W^k \cdots W^{h+1})^\top)$"}
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text.replace("'", "")).strip("-").lower()
    return s or "all"


def _groups_for_plots(spec: Spec, results: list[CellResult]) -> list[tuple[str, list[CellResult], list[str]]]:
    """(title, cells, line axes) of every run figure: one per row of a table layout (its
    columns as lines), one per panel of a curves layout, one for final."""
    r = spec.report
    names = spec.axis_names
    if r.layout == "table":
        group_axes = list(r.rows) or [n for n in names if n not in r.columns]
    elif r.layout == "curves":
        group_axes = [r.panels] if r.panels else []
    elif r.layout == "maps":
        group_axes = list(r.columns)
    else:
        group_axes = []
    line_axes = [n for n in names if n not in group_axes]
    out = []
    for gk in _ordered_keys(spec, results, group_axes) if group_axes else [()]:
        members = [res for res in results if tuple(res.cell.labels[a] for a in group_axes) == gk]
        out.append((" / ".join(gk), members, line_axes))
    return out


def level_text(axis: str, label: str) -> str:
    """A level's label in a legend: ``n = 2`` when the label is a bare number (named by
    its axis, e.g. ``bits = 3``), else the label itself (``10 bits``, ``RBP``)."""
    return f"{axis} = {label}" if _NUMBER.fullmatch(label.strip()) else label


def _line_label(res: CellResult, axes: list[str]) -> str:
    return " / ".join(level_text(a, res.cell.labels[a]) for a in axes) or res.cell.title


def _algorithm(res: CellResult) -> str:
    return algorithm_key(res.cell.config.algorithm, res.cell.config.channel)


def _line_styles(spec: Spec, results: list[CellResult], members: list[CellResult], line_axes: list[str]):
    """Looks of a figure's lines: algorithm looks when the lines are algorithms, else one
    sequential colour per level, by its position among all the spec's lines (so a level
    has the same colour in every figure of the spec)."""
    order = _ordered_keys(spec, results, line_axes)
    lines = {}
    for res in members:
        pos = order.index(tuple(res.cell.labels[a] for a in line_axes))
        lines[_line_label(res, line_axes)] = (_algorithm(res), pos, len(order))
    return line_styles(lines)


def _run_config(res: CellResult):
    """The config the chosen runs were trained with (the cell's, with their overrides)."""
    return res.cell.config.replace(**res.overrides) if res.overrides else res.cell.config


def _caption(members: list[CellResult]) -> str:
    """What the lines of a figure have in common (:func:`lchannel.plots.describe_runs`)."""
    from ..plots import describe_runs

    text = describe_runs([_run_config(r) for r in members])
    return text + (" (shortened: not the spec's protocol)" if any(r.shortened for r in members) else "")


def _align_label(metric: str, algorithms: set[str]) -> str:
    if metric in ALIGN_LABELS:
        return ALIGN_LABELS[metric]
    if metric.startswith("feedback_from_"):
        k = metric.rsplit("_", 1)[1]
        return rf"$\angle(C^{{h,{k}}}, (W^{{{k}}} \cdots W^{{h+1}})^\top)$"
    if metric == "feedback":
        bases = {key_base(a) for a in algorithms}  # style keys (asrbp+stdp: the STDP form)
        kind = "chain" if bases and bases <= {"rbp", "arbp"} else "skip" if bases and bases <= {"srbp", "asrbp"} else "any"
        return FEEDBACK_LABELS[kind]
    return metric


def _identical_alignment(curves: dict[str, dict], labels: list[str]) -> bool:
    from ..plots import same_values

    if any(lab not in curves for lab in labels):
        return False
    first = curves[labels[0]]
    return all(set(curves[lab]) == set(first)
               and all(same_values(curves[lab][k][0], first[k][0]) and same_values(curves[lab][k][1], first[k][1])
                       for k in first)
               for lab in labels[1:])


def alignment_figure(curves: dict[str, dict], title: str = "", caption: str = "", styles: dict | None = None,
                     algorithms: dict[str, str] | None = None, coincide: list | None = None):
    """Alignment angles per epoch from epoch 0 (before training): a row of panels per
    metric of :mod:`lchannel.alignment` (∠(I^h, B^h), ∠(ΔW^h, ΔW^h_BP), ∠(C^h, (W^{h+1})ᵀ)
    ...), a column per hidden layer h; one line per run, the mean over seeds with a ±1 sd
    band.  Paper 1 has no such figure; it measures how far each channel is from BP
    (sections 3-4).  ``curves`` maps a label to ``{(metric, layer): (epochs,
    values[epoch, seed])}``; ``algorithms`` maps a label to its algorithm name (for the
    feedback row's label); ``coincide`` (:func:`lchannel.plots.coinciding_runs`): lines
    that coincide by construction, named in the caption and drawn wider underneath when
    their angles are identical.  None when there is nothing to draw."""
    import matplotlib.pyplot as plt

    from ..plots import (COVERED_WIDEN, annotate, band_note, coincidence_note, draw_line, epoch_axis, left_out_note,
                         legend_outside)

    keys = sorted({k for c in curves.values() for k in c}, key=lambda k: (k[0] != "signal", k[0] != "update", k))
    if not keys:
        return None
    algorithms = algorithms or {}
    styles = styles or styles_for_labels(list(curves))
    metrics = list(dict.fromkeys(k[0] for k in keys))
    layers = sorted({k[1] for k in keys})
    fig, axes = plt.subplots(len(metrics), len(layers), figsize=(2.9 * len(layers) + 2.4, 2.4 * len(metrics) + 1.2),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    same = [(list(labs), why) for labs, why in (coincide or ()) if _identical_alignment(curves, list(labs))]
    widen = {lab: COVERED_WIDEN for labs, _ in same for lab in labs[:-1]}
    drawn = set()
    for label, c in curves.items():
        for (m, h), (x, v) in c.items():
            if draw_line(axes[metrics.index(m)][layers.index(h)], x, v, styles[label], label,
                         widen=widen.get(label, 1.0)) is not None:
                drawn.add(label)
    # Angles lie in [0, 180]; show up to 100-odd degrees unless some go beyond.
    highest = max((ax.dataLim.y1 for ax in axes.flat if np.isfinite(ax.dataLim.y1)), default=90.0)
    top = min(180.0, max(100.0, 15.0 * math.ceil((highest + 5.0) / 15.0)))
    for i, m in enumerate(metrics):
        with_metric = {algorithms[lab] for lab, c in curves.items() if lab in algorithms and any(k[0] == m for k in c)}
        for j, h in enumerate(layers):
            ax = axes[i][j]
            ax.set_ylim(0, top)
            ax.set_yticks(np.arange(0.0, top + 1.0, 30.0))
            ax.axhline(90, color="0.5", lw=0.8, ls=":")
            ax.grid(alpha=0.3)
            epoch_axis(ax)
            if i == 0:
                ax.set_title(f"hidden layer h = {h}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{_align_label(m, with_metric)}\n(degrees)", fontsize=9)
            if i == len(metrics) - 1:
                ax.set_xlabel("epoch")
    legend_outside(fig, axes)
    empty = [lab for lab in curves if lab not in drawn]
    annotate(fig, title, caption, [band_note(axes), "Angles in degrees; 90° (dotted): orthogonal to BP's.",
                                   coincidence_note(same), left_out_note(empty, "no finite angles")])
    return fig


def final_figure(spec: Spec, results: list[CellResult], title: str = "", caption: str = ""):
    """Final training (upper) and test (lower) accuracy against the numeric level values
    of the ``x`` axis, one line per level of the other axes: mean over the seeds that
    finished without diverging, ±1 sd band, as in paper 1, Figure 4 (post-training
    accuracy of sparse SRBP against n).  None when no cell has a finished seed."""
    import matplotlib.pyplot as plt

    from ..plots import annotate, band_note, draw_line, left_out_note, legend_outside

    xa = spec.report.x
    others = [a for a in spec.axis_names if a != xa]
    lines: dict[str, list[CellResult]] = {}
    algos = {_algorithm(res) for res in results}
    single = key_label(algos.pop()) if len(algos) == 1 else spec.name  # the line of a one-line figure
    for res in results:
        lines.setdefault(_line_label(res, others) if others else single, []).append(res)
    order = _ordered_keys(spec, results, others)
    styles = line_styles({lab: (_algorithm(items[0]) if len({_algorithm(r) for r in items}) == 1 else None,
                                order.index(tuple(items[0].cell.labels[a] for a in others)), len(order))
                          for lab, items in lines.items()})
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True, layout="constrained")
    missing, any_point = [], False
    for label, items in lines.items():
        missing += [level_text(xa, r.cell.labels[xa]) + (f" ({label})" if others else "") for r in items if not r.done]
        done = sorted((r for r in items if r.done), key=lambda r: r.cell.values[xa])
        if not done:
            continue
        width = max(len(r.done) for r in done)
        for ax, metric in zip(axes, ("train_acc", "test_acc")):
            vals = [[run.final[metric] for run in r.done] + [math.nan] * (width - len(r.done)) for r in done]
            any_point |= draw_line(ax, [r.cell.values[xa] for r in done], vals, styles[label], label,
                                   scale=100.0, max_markers=None) is not None
    if not any_point:
        plt.close(fig)
        return None
    axes[0].set_ylabel("final training accuracy (%)")
    axes[1].set_ylabel("final test accuracy (%)")
    axes[1].set_xlabel(spec.axis(xa).title or xa)
    for ax in axes:
        ax.grid(alpha=0.3)
    legend_outside(fig, axes)
    annotate(fig, title, caption, ["Final accuracy: mean over the seeds that did not diverge.", band_note(axes),
                                   left_out_note(missing, "no finished seed")])
    return fig


def maps_figure(spec: Spec, results: list[CellResult]):
    """Paper 2, Figure 12: one column per level of ``report.columns`` (the k axis), one
    row per level of ``report.rows`` (the algorithms), the first row the target f_k; each
    panel the predicted probability kept by the cell's first finished seed, titled with
    its test accuracy.  None when no cell kept predictions."""
    from ..plots_p2 import fk_maps_figure

    col_axis, row_axis = spec.report.columns[0], spec.report.rows[0]
    columns, rows, maps = [], [], {}
    for res in results:
        clab, rlab = res.cell.labels[col_axis], res.cell.labels[row_axis]
        if (clab, res.cell.config.synthetic_k) not in columns:
            columns.append((clab, res.cell.config.synthetic_k))
        if rlab not in rows:
            rows.append(rlab)
        kept = res.kept_array("grid_probability")
        if kept is not None:
            arr, run = kept
            maps[(rlab, clab)] = (arr, f"test acc {100 * run.final['test_acc']:.1f}% (seed {run.seed})")
    if not maps:
        return None
    order_c, order_r = spec.axis(col_axis).labels(), spec.axis(row_axis).labels()
    columns.sort(key=lambda c: order_c.index(c[0]))
    rows.sort(key=order_r.index)
    return fk_maps_figure(columns, rows, maps, title=spec.report.title or spec.name, caption=_caption(results))


@dataclass
class ReportFigure:
    """One figure of a report: its Markdown heading, file stem and matplotlib figure."""

    heading: str
    stem: str
    figure: object


def report_figures(spec: Spec, results: list[CellResult]) -> Iterator[ReportFigure]:
    """Every figure of a report, one at a time (save and close each before the next; the
    store behind ``results`` must stay open): the final accuracy figure of a ``final``
    layout, and per group of :func:`_groups_for_plots` an accuracy figure (not for
    ``final``) and an alignment figure when angles were recorded.  Lines share looks
    across figures (:mod:`lchannel.style`); captions name what the lines have in common
    and the lines left out (no finished runs, no finite values)."""
    from ..plots import accuracy_figure, coinciding_runs, left_out_note

    base_title = spec.report.title or spec.name
    if spec.report.layout == "maps":
        fig = maps_figure(spec, results)
        if fig is not None:
            yield ReportFigure("predictions over the square", f"{spec.name}-maps", fig)
    if spec.report.layout == "final":
        fig = final_figure(spec, results, title=spec.report.title or f"{spec.name}: final accuracy",
                           caption=_caption(results))
        if fig is not None:
            yield ReportFigure("final accuracy", f"{spec.name}-final", fig)
    for title, members, line_axes in _groups_for_plots(spec, results):
        stem = spec.name + (f"-{_slug(title)}" if title else "")
        full_title = f"{base_title}{': ' + title if title else ''}"
        suffix = f": {title}" if title else ""
        styles = _line_styles(spec, results, members, line_axes)
        caption = _caption(members)
        histories, aligns, algorithms, unfinished, configs = {}, {}, {}, [], {}
        for res in members:
            lab = _line_label(res, line_axes)
            algorithms[lab] = _algorithm(res)
            h = res.history()
            if h is not None and h.epochs:
                histories[lab] = h
                configs[lab] = _run_config(res)
            else:
                unfinished.append(lab)
            a = res.alignment()
            if a:
                aligns[lab] = a
        # Lines that coincide by construction (BP (no f') and SBP (no f')) are named in the
        # captions when their stored numbers are identical.
        coincide = coinciding_runs(configs)
        note = left_out_note(unfinished, "no finished runs")
        caption = f"{caption}. {note}" if note else caption
        if histories and spec.report.layout != "final":
            fig = accuracy_figure(histories, title=full_title, caption=caption, styles=styles, coincide=coincide)
            yield ReportFigure(f"accuracy{suffix}", stem, fig)
        # The ROC AUC, for data sets whose reports plot it (REGISTRY's report_metrics: HIGGS).
        aucs = {lab: c for lab, c in ((_line_label(res, line_axes), res.extra("test_auc")) for res in members
                                      if "test_auc" in REGISTRY[res.cell.config.dataset].report_metrics) if c[0]}
        if aucs:
            from ..plots_p2 import metric_figure
            fig = metric_figure(aucs, "test ROC AUC (%)", title=f"{full_title} — ROC AUC", caption=caption,
                                styles={lab: styles[lab] for lab in aucs})
            yield ReportFigure(f"ROC AUC{suffix}", f"{stem}-auc", fig)
        if aligns:
            fig = alignment_figure(aligns, title=f"{full_title} — alignment", caption=caption, styles=styles,
                                   algorithms=algorithms, coincide=coincide)
            if fig is not None:
                yield ReportFigure(f"alignment{suffix}", f"{stem}-alignment", fig)


# ------------------------------------------------------------------------------ the report
@dataclass
class Report:
    markdown: Path
    csv: Path
    pngs: list[Path]
    results: list[CellResult]
    header: list[str]
    rows: list[list[str]]


def write_report(spec: Spec, db: str | Path, out_dir: str | Path, overrides: Overrides | None = None,
                 metric: str | None = None, plots: bool = True, where: dict | None = None) -> Report:
    """Write ``report.md``, ``report.csv`` and the PNGs of ``spec`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric = metric or spec.report.metric
    with ResultsStore(db) as store:
        results = collect(spec, store, overrides, where)
        header, rows = table(spec, results, metric)
        pngs: list[Path] = []
        figures: list[tuple[str, Path]] = []
        if plots:
            from ..plots import save_figure

            for f in report_figures(spec, results):
                p = save_figure(f.figure, out / f"{f.stem}.png")
                pngs.append(p)
                figures.append((f.heading, p))
    md = _markdown(spec, results, header, rows, metric, db, figures, out)
    (out / "report.md").write_text(md)
    ch, crow = csv_rows(spec, results)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(ch)
    w.writerows(crow)
    (out / "report.csv").write_text(buf.getvalue())
    return Report(out / "report.md", out / "report.csv", pngs, results, header, rows)


def _markdown(spec, results, header, rows, metric, db, figures, out) -> str:
    base_cfg = spec.cells()[0].config
    lines = [f"# {spec.name}: {spec.description}", ""]
    if spec.source:
        lines.append(f"Source: {spec.source}.  ")
    lines.append(f"Protocol: {describe_protocol(base_cfg)}, seeds {list(base_cfg.seeds)}.  ")
    lines.append(f"Results: `{db}` ({time.strftime('%Y-%m-%d %H:%M')}).")
    legend = (f"Final {METRIC_TITLES[metric]}: mean (sample standard deviation) over the seeds that finished "
              "without diverging, [seeds × epochs] behind each cell.")
    if any(f"({NO_SD}) [1 ×" in c for r in rows for c in r[1:]):
        legend += f" ({NO_SD}): a single seed, which has no sample standard deviation."
    lines += ["", legend, "", markdown_table(header, rows), ""]
    diverged = [(r.cell.title, s, c) for r in results for s, c in r.diverged()]
    if diverged:
        lines += ["Diverged seeds, each at the first quantity of its training step that was NaN or infinite "
                  "(the epoch, the update counted over the run and within the epoch):", ""]
        lines += [f"- {title}, seed {s}: {divergence_text(c)}" for title, s, c in diverged]
        lines.append("")
    short = sorted({";".join(f"{k}={v}" for k, v in sorted(r.overrides.items())) for r in results if r.shortened})
    if short:
        lines.append("\\* shortened, not the spec's protocol: " + "; ".join(f"`{s}`" for s in short) + ".")
        lines.append("")
    missing = sum(1 for r in results if not r.finished)
    if missing:
        lines += [f"{missing} of {len(results)} cells have no finished runs yet (`lchannel run {spec.name}`).", ""]
    for title, p in figures:
        lines += [f"## {title}", "", f"![{title}]({p.relative_to(out)})", ""]
    return "\n".join(lines)
