"""A report's figures: accuracy curves per group of cells in the style of paper 1's
Figures 1-4 and 7-9, alignment angles, final-value plots against a numeric axis and
Figure 12's maps (:func:`report_figures`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..data import REGISTRY
from ..report.style import algorithm_key, key_base, key_label, line_styles, styles_for_labels
from .spec import Spec
from .results import CellResult, ordered_keys

# Row labels of the alignment figure (metrics of lchannel.report.alignment), as mathtext.
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
    for gk in ordered_keys(spec, results, group_axes) if group_axes else [()]:
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
    order = ordered_keys(spec, results, line_axes)
    lines = {}
    for res in members:
        pos = order.index(tuple(res.cell.labels[a] for a in line_axes))
        lines[_line_label(res, line_axes)] = (_algorithm(res), pos, len(order))
    return line_styles(lines)


def _run_config(res: CellResult):
    """The config the chosen runs were trained with (the cell's, with their overrides)."""
    return res.cell.config.replace(**res.overrides) if res.overrides else res.cell.config


def _caption(members: list[CellResult]) -> str:
    """What the lines of a figure have in common (:func:`lchannel.report.plots.describe_runs`)."""
    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from ..report.plots import describe_runs

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
    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from ..report.plots import same_values

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
    metric of :mod:`lchannel.report.alignment` (∠(I^h, B^h), ∠(ΔW^h, ΔW^h_BP), ∠(C^h, (W^{h+1})ᵀ)
    ...), a column per hidden layer h; one line per run, the mean over seeds with a ±1 sd
    band.  Paper 1 has no such figure; it measures how far each channel is from BP
    (sections 3-4).  ``curves`` maps a label to ``{(metric, layer): (epochs,
    values[epoch, seed])}``; ``algorithms`` maps a label to its algorithm name (for the
    feedback row's label); ``coincide`` (:func:`lchannel.report.plots.coinciding_runs`): lines
    that coincide by construction, named in the caption and drawn wider underneath when
    their angles are identical.  None when there is nothing to draw."""
    # lazy: matplotlib loads only when a figure is drawn, not at every CLI start
    import matplotlib.pyplot as plt

    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from ..report.plots import (COVERED_WIDEN, annotate, band_note, coincidence_note, draw_line, epoch_axis, left_out_note,
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
    # lazy: matplotlib loads only when a figure is drawn, not at every CLI start
    import matplotlib.pyplot as plt

    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from ..report.plots import annotate, band_note, draw_line, left_out_note, legend_outside

    xa = spec.report.x
    others = [a for a in spec.axis_names if a != xa]
    lines: dict[str, list[CellResult]] = {}
    algos = {_algorithm(res) for res in results}
    single = key_label(algos.pop()) if len(algos) == 1 else spec.name  # the line of a one-line figure
    for res in results:
        lines.setdefault(_line_label(res, others) if others else single, []).append(res)
    order = ordered_keys(spec, results, others)
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
    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from ..report.plots_p2 import fk_maps_figure

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


def _collect_lines(members: list[CellResult], line_axes) -> tuple[dict, dict, dict, list, dict]:
    """Per line label of a group: its history (finished runs), alignment angles, algorithm
    and config; and the labels without finished runs."""
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
    return histories, aligns, algorithms, unfinished, configs


def report_figures(spec: Spec, results: list[CellResult]) -> Iterator[ReportFigure]:
    """Every figure of a report, one at a time (save and close each before the next; the
    store behind ``results`` must stay open): the final accuracy figure of a ``final``
    layout, and per group of :func:`_groups_for_plots` an accuracy figure (not for
    ``final``) and an alignment figure when angles were recorded.  Lines share looks
    across figures (:mod:`lchannel.report.style`); captions name what the lines have in common
    and the lines left out (no finished runs, no finite values)."""
    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from ..report.plots import accuracy_figure, coinciding_runs, left_out_note

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
        histories, aligns, algorithms, unfinished, configs = _collect_lines(members, line_axes)
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
            # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
            from ..report.plots_p2 import metric_figure
            fig = metric_figure(aucs, "test ROC AUC (%)", title=f"{full_title} — ROC AUC", caption=caption,
                                styles={lab: styles[lab] for lab in aucs})
            yield ReportFigure(f"ROC AUC{suffix}", f"{stem}-auc", fig)
        if aligns:
            fig = alignment_figure(aligns, title=f"{full_title} — alignment", caption=caption, styles=styles,
                                   algorithms=algorithms, coincide=coincide)
            if fig is not None:
                yield ReportFigure(f"alignment{suffix}", f"{stem}-alignment", fig)
