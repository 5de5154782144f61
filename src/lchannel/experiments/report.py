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
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


from ..run.tables import NO_SD, fmt_sd
from ..engine.divergence import divergence_summary, divergence_text
from .settings import describe_protocol
from .spec import Overrides, Spec
from .store import METRIC_COLUMNS, ResultsStore
from .figures import report_figures
from .results import METRIC_TITLES, CellResult, collect, ordered_keys

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
    rkeys = ordered_keys(spec, results, row_axes)
    ckeys = ordered_keys(spec, results, col_axes) if col_axes else [()]
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
                 metric: str | None = None, plots: bool = True, where: dict | None = None,
                 command: str = "") -> Report:
    """Write ``report.md``, ``report.csv`` and the PNGs of ``spec`` into ``out_dir``;
    ``command`` (the command line that asked for it) is quoted in the page's provenance."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric = metric or spec.report.metric
    with ResultsStore(db) as store:
        results = collect(spec, store, overrides, where)
        header, rows = table(spec, results, metric)
        origin = provenance(results, store, command)
        pngs: list[Path] = []
        figures: list[tuple[str, Path]] = []
        if plots:
            # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
            from ..report.plots import save_figure

            for f in report_figures(spec, results):
                p = save_figure(f.figure, out / f"{f.stem}.png")
                pngs.append(p)
                figures.append((f.heading, p))
    md = _markdown(spec, results, header, rows, metric, db, figures, out, origin)
    (out / "report.md").write_text(md)
    ch, crow = csv_rows(spec, results)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(ch)
    w.writerows(crow)
    (out / "report.csv").write_text(buf.getvalue())
    return Report(out / "report.md", out / "report.csv", pngs, results, header, rows)


def source_commit(where: Path = Path(__file__).resolve().parent) -> str | None:
    """The git commit of the lchannel code at ``where`` (12 hex digits, "+ uncommitted
    changes" when tracked files under ``where`` differ from it), or None outside a git
    checkout (an installed wheel) or without git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        if head.returncode != 0:
            return None
        # only the code under ``where`` counts: the reports a run rewrites are tracked files too
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def provenance(results: list[CellResult], store: ResultsStore, command: str = "") -> list[str]:
    """Lines saying where a report's numbers come from: the command that made the page (and
    the commit of the code that ran it, where that is a git checkout), the commands that
    trained its runs (each with the lchannel and torch versions, the host and the device the
    store recorded), and the compute behind them (every population's wall time counted
    once: its members share it)."""
    runs = [r for res in results for r in res.finished]
    invs = store.invocations(r.finished_by for r in runs)
    commit = source_commit()
    at = f" at commit {commit}" if commit else ""
    lines = [f"Made by: `{command}`{at}.  "] if command else []
    for i in sorted(invs):
        v = invs[i]
        n = sum(r.finished_by == i for r in runs)
        lines.append(f"Runs ({n}): `{v['command'] or '(API)'}` — lchannel {v['lchannel_version']}, torch "
                     f"{v['torch_version']}, host {v['host']}, {v['device']}.  ")
    populations = {(r.finished_by, r.seconds) for r in runs if r.seconds}
    if populations:
        hours = sum(sec for _, sec in populations) / 3600
        lines.append(f"Compute: {hours:.1f} h of training wall time ({len(runs)} runs in {len(populations)} "
                     f"populations).  ")
    return lines


def _markdown(spec, results, header, rows, metric, db, figures, out, origin=()) -> str:
    base_cfg = spec.cells()[0].config
    lines = [f"# {spec.name}: {spec.description}", ""]
    if spec.source:
        lines.append(f"Source: {spec.source}.  ")
    lines.append(f"Protocol: {describe_protocol(base_cfg)}, seeds {list(base_cfg.seeds)}.  ")
    lines.append(f"Results: `{db}` ({time.strftime('%Y-%m-%d %H:%M')}).  ")
    lines += list(origin)
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
