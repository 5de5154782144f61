"""Write Table 1's rows from the results store as a TSV (issue 26): one line per cell with
its variant, algorithm, mean and sample standard deviation of the final test accuracy (%),
the seeds finished and the epochs (a reduced protocol shows there: ``1``, ``20``); cells
without a finished run are left out.  With ``--page``, also replace the Markdown table of
that page (the first table whose header starts with "| variant |") by the report's
(``lchannel report table1``).  With ``--extrapolate``, print the measured CPU time per
epoch of each finished cell and what the spec's full protocol (every cell, its seeds and
epochs) would take at those rates on one core.

    python benchmarks/table1_tsv.py --db docs/results/lchannel.db --out docs/results/table1-mnist.tsv \
        --page docs/results/paper1.md
    python benchmarks/table1_tsv.py --spec table1-cifar --out docs/results/table1-cifar.tsv --extrapolate
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sqlite3
import sys
from statistics import median_high
import tempfile
from pathlib import Path

from lchannel.experiments import ResultsStore, load_spec
from lchannel.experiments.report import write_report
from lchannel.experiments.results import collect


def results(db: str, spec: str = "table1") -> list:
    store = ResultsStore(db)
    try:
        return collect(load_spec(spec), store)
    finally:
        store.close()


def rows(db: str, spec: str = "table1") -> list[list]:
    out = []
    for res in results(db, spec):
        if not res.finished:
            continue
        mean, sd, n = res.stats("test_acc")
        out.append([res.cell.labels["variant"], res.cell.labels["algorithm"], f"{100 * mean:.2f}",
                    "" if n < 2 else f"{100 * sd:.2f}", n, res.epochs])
    return out


def extrapolation(db: str, spec: str) -> str:
    """Markdown: each finished cell's CPU time per run-epoch (a run's CPU seconds, which for
    a packed population are the population's, over its epochs and the population's
    members; the median over runs: CPU time, not wall time, so that other jobs sharing the
    machine do not inflate it), and the full protocol at those rates: every cell of
    ``spec`` with its seeds and epochs, a cell not measured at the median of the measured
    cells with its algorithm, or of all measured cells."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cost = {rid: (cpu, len(json.loads(pop)) if pop else 1)
            for rid, cpu, pop in con.execute("SELECT run_id, cpu_seconds, population FROM runs")}
    con.close()
    res = results(db, spec)
    rate = {}
    for r in res:
        per = [cost[run.run_id][0] / (run.epochs_done * cost[run.run_id][1])
               for run in r.finished if cost.get(run.run_id, (None,))[0] and run.epochs_done]
        if per:
            rate[r.cell.cell_id] = median_high(per)
    if not rate:
        return "no finished run to measure"
    lines = ["| cell | CPU seconds per run-epoch (measured) |", "|---|---|"]
    lines += [f"| {r.cell.title} | {rate[r.cell.cell_id]:.1f} |" for r in res if r.cell.cell_id in rate]
    total = 0.0
    spec_cells = load_spec(spec).cells()
    for cell in spec_cells:
        same = [rate[r.cell.cell_id] for r in res if r.cell.cell_id in rate
                and r.cell.labels.get("algorithm") == cell.labels.get("algorithm")]
        total += median_high(same or list(rate.values())) * cell.config.epochs * len(cell.config.seeds)
    runs = sum(len(c.config.seeds) for c in spec_cells)
    lines.append(f"\nThe full protocol ({len(spec_cells)} cells, {runs} runs, {spec_cells[0].config.epochs} "
                 f"epochs each) at these rates: {total / 3600:.1f} hours of one core (CPU time; cells not "
                 f"measured at the rate of their algorithm, or of all measured cells).")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="docs/results/lchannel.db")
    p.add_argument("--spec", default="table1", help="table1 (default) or table1-cifar")
    p.add_argument("--out", default="docs/results/table1-mnist.tsv")
    p.add_argument("--page", help="a Markdown page whose Table 1 is replaced by the report's")
    p.add_argument("--extrapolate", action="store_true", help="print the measured rates and the full protocol's time")
    args = p.parse_args()
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["variant", "algorithm", "mean", "sd", "seeds", "epochs"])
        w.writerows(rows(args.db, args.spec))
    print(f"wrote {args.out}", file=sys.stderr)
    if args.extrapolate:
        print(extrapolation(args.db, args.spec))
    if args.page:
        page = Path(args.page)
        text = page.read_text()
        table = "\n".join(line for line in report_table(args.db, args.spec).splitlines() if line.startswith("|"))
        new, n = re.subn(r"^\| variant \|.*?(?=\n\n)", lambda m: table, text, count=1, flags=re.S | re.M)
        if n != 1:
            raise SystemExit(f"--page: no table starting with '| variant |' in {page}")
        page.write_text(new)
        print(f"updated {page}", file=sys.stderr)


def report_table(db: str, spec: str = "table1") -> str:
    """The Markdown of ``lchannel report SPEC`` (tables only)."""
    with tempfile.TemporaryDirectory() as out:
        write_report(load_spec(spec), db, Path(out), plots=False)
        return (Path(out) / "report.md").read_text()


if __name__ == "__main__":
    main()
