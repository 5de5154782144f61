"""Reports of a spec's results: Markdown and CSV tables in the layout of paper 1's
Table 1, and PNG plots in the style of its Figures 1-4 and 7-9.

Every table cell is the mean final metric over the seeds that finished (diverged seeds
are counted apart), with the sample standard deviation in parentheses and, in brackets,
the number of seeds and epochs behind it::

    97.84 (0.12) [5 × 100 ep]

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
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..train import History
from .spec import Cell, Overrides, Spec, describe_protocol
from .store import FINISHED, METRIC_COLUMNS, ResultsStore, RunRow

METRIC_TITLES = {"test_acc": "test accuracy (%)", "train_acc": "training accuracy (%)",
                 "test_loss": "test loss", "train_loss": "training loss"}
ALIGN_TITLES = {"signal": "∠(I_h, B_h)", "update": "∠(ΔW_h, −∇W_h)", "feedback": "∠(C_h, W_{h+1}ᵀ…)"}


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

    @property
    def shortened(self) -> bool:
        return bool({"epochs", "subset"} & set(self.overrides))

    @property
    def epochs(self) -> int:
        return max((r.epochs_done for r in self.finished), default=0)

    def stats(self, metric: str) -> tuple[float, float, int]:
        """(mean, sample sd, n) of the final ``metric`` over seeds that did not diverge."""
        vals = [r.final[metric] for r in self.done if not math.isnan(r.final[metric])]
        if not vals:
            return math.nan, math.nan, 0
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0), len(vals)

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
        initial = [self.store.initial(r.run_id) for r in runs]
        if any(i is not None for i in initial):
            h.initial = {m: [math.nan if i is None else i[m] for i in initial] for m in METRIC_COLUMNS}
        for ep in epochs:
            vals = {m: [pr[ep][m] if ep in pr else math.nan for pr in per_run] for m in METRIC_COLUMNS}
            lr = next((pr[ep]["lr"] for pr in per_run if ep in pr), math.nan)
            h.append(ep, vals, lr, 0.0)
        return h

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
    exact = overrides is not None and any(v is not None for v in (overrides.epochs, overrides.seeds, overrides.subset))
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
    if r.layout == "table":
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
    """``mean (sd) [n × epochs ep]`` with diverged/failed/pending notes and ``*`` if shortened."""
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
    return f"{_fmt_value(metric, mean)} ({_fmt_value(metric, sd)}) [{n} × {res.epochs} ep{note}]{star}"


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
    rows = []
    for r in results:
        over = ";".join(f"{k}={v}" for k, v in sorted(r.overrides.items()))
        row = [spec.name, *(r.cell.labels[a] for a in names), r.config_hash, "shortened" if r.shortened else "full",
               over, r.planned, len(r.done), r.count("diverged"), r.count("failed"), r.epochs]
        for m in METRIC_COLUMNS:
            mean, sd, n = r.stats(m)
            row += ["" if math.isnan(mean) else f"{mean:.6g}", "" if math.isnan(sd) else f"{sd:.6g}", n]
        rows.append(row)
    return header, rows


# ------------------------------------------------------------------------------ plots
def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text.replace("'", "")).strip("-").lower()
    return s or "all"


def _groups_for_plots(spec: Spec, results: list[CellResult]) -> list[tuple[str, list[CellResult], str]]:
    """(title, cells, line-label axis) of every accuracy figure: one per row of a table
    layout (its columns as lines), one per panel of a curves layout, one for final."""
    r = spec.report
    names = spec.axis_names
    if r.layout == "table":
        group_axes = list(r.rows) or [n for n in names if n not in r.columns]
        line_axes = [n for n in names if n not in group_axes]
    elif r.layout == "curves":
        group_axes = [r.panels] if r.panels else []
        line_axes = [n for n in names if n not in group_axes]
    else:
        group_axes = []
        line_axes = names
    out = []
    for gk in _ordered_keys(spec, results, group_axes) if group_axes else [()]:
        members = [res for res in results if tuple(res.cell.labels[a] for a in group_axes) == gk]
        title = " / ".join(gk)
        out.append((title, members, line_axes))
    return out


def _line_label(res: CellResult, axes: list[str]) -> str:
    return " / ".join(res.cell.labels[a] for a in axes) or res.cell.title


def plot_alignment(curves: dict[str, dict], path: Path, title: str = "") -> Path | None:
    """Alignment angles per epoch: a row of panels per metric, a column per hidden layer;
    one line per run (mean over seeds with a ±1 sd band)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    keys = sorted({k for c in curves.values() for k in c}, key=lambda k: (k[0] != "signal", k[0] != "update", k))
    if not keys:
        return None
    metrics = list(dict.fromkeys(k[0] for k in keys))
    layers = sorted({k[1] for k in keys})
    fig, axes = plt.subplots(len(metrics), len(layers), figsize=(3.2 * len(layers), 2.6 * len(metrics) + 0.6),
                             sharex=True, squeeze=False)
    colors = matplotlib.colormaps["tab10" if len(curves) <= 10 else "tab20"]
    for li, (label, c) in enumerate(curves.items()):
        col = colors(li % colors.N)
        for i, m in enumerate(metrics):
            for j, h in enumerate(layers):
                if (m, h) not in c:
                    continue
                x, v = c[(m, h)]
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs (diverged)
                    mean = np.nanmean(v, axis=1) if v.size else v
                    sd = np.nanstd(v, axis=1, ddof=1) if v.shape[1] > 1 else np.zeros_like(mean)
                if np.all(np.isnan(mean)):
                    continue
                ax = axes[i][j]
                ax.plot(x, mean, color=col, lw=1.4, label=label, ls="--" if "no f'" in label else "-")
                ax.fill_between(x, mean - np.nan_to_num(sd), mean + np.nan_to_num(sd), color=col, alpha=0.15, lw=0)
    top = max([ax.get_ylim()[1] for row in axes for ax in row] + [100.0])
    for i, m in enumerate(metrics):
        for j, h in enumerate(layers):
            ax = axes[i][j]
            ax.set_ylim(0, min(180.0, top))
            ax.axhline(90, color="0.6", lw=0.8, ls=":")
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"hidden layer {h}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{ALIGN_TITLES.get(m.split('_from_')[0], m)}{' ' + m if '_from_' in m else ''}\n(degrees)",
                              fontsize=8)
            if i == len(metrics) - 1:
                ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            h_, l_ = ax.get_legend_handles_labels()
            for hh, ll in zip(h_, l_):
                if ll not in labels:
                    handles.append(hh)
                    labels.append(ll)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * ((len(labels) - 1) // 5), 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_final(spec: Spec, results: list[CellResult], path: Path, title: str = "") -> Path | None:
    """Final accuracy against the numeric level values of the ``x`` axis (Figure 4 style),
    one line per level of the other axes, mean ± sd over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xa = spec.report.x
    others = [a for a in spec.axis_names if a != xa]
    lines: dict[str, list] = {}
    for res in results:
        key = " / ".join(res.cell.labels[a] for a in others) or spec.name
        lines.setdefault(key, []).append(res)
    fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    any_point = False
    for i, (label, items) in enumerate(lines.items()):
        for ax, metric in zip(axes, ("train_acc", "test_acc")):
            pts = sorted((r.cell.values[xa], *r.stats(metric)[:2]) for r in items if r.stats(metric)[2] > 0)
            if not pts:
                continue
            any_point = True
            x, m, s = (np.array(v, dtype=float) for v in zip(*pts))
            ax.errorbar(x, 100 * m, yerr=100 * s, marker="o", ms=4, capsize=3, lw=1.4, label=label)
    if not any_point:
        plt.close(fig)
        return None
    axes[0].set_ylabel("training accuracy (%)")
    axes[1].set_ylabel("test accuracy (%)")
    axes[1].set_xlabel(spec.axis(xa).title or xa)
    for ax in axes:
        ax.grid(alpha=0.3)
    if len(lines) > 1:
        axes[0].legend(fontsize=8)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    from ..plots import plot_accuracy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric = metric or spec.report.metric
    with ResultsStore(db) as store:
        results = collect(spec, store, overrides, where)
        header, rows = table(spec, results, metric)
        pngs: list[Path] = []
        figures: list[tuple[str, Path]] = []
        if plots:
            if spec.report.layout == "final":
                p = plot_final(spec, results, out / f"{spec.name}-final.png",
                               title=spec.report.title or f"{spec.name}: final accuracy")
                if p:
                    pngs.append(p)
                    figures.append(("final accuracy", p))
            for title, members, line_axes in _groups_for_plots(spec, results):
                stem = spec.name + (f"-{_slug(title)}" if title else "")
                histories, aligns = {}, {}
                for res in members:
                    lab = _line_label(res, line_axes)
                    h = res.history()
                    if h is not None and h.epochs:
                        histories[lab] = h
                    a = res.alignment()
                    if a:
                        aligns[lab] = a
                full_title = f"{spec.report.title or spec.name}{': ' + title if title else ''}"
                if histories and spec.report.layout != "final":
                    p = plot_accuracy(histories, out / f"{stem}.png", title=full_title)
                    pngs.append(p)
                    figures.append((f"accuracy{': ' + title if title else ''}", p))
                if aligns:
                    p = plot_alignment(aligns, out / f"{stem}-alignment.png", title=f"{full_title} — alignment")
                    if p:
                        pngs.append(p)
                        figures.append((f"alignment{': ' + title if title else ''}", p))
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
    lines += ["", legend, "", markdown_table(header, rows), ""]
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
