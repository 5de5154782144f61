"""Write Table 1's MNIST rows from the results store as a TSV (issue 26): one line per cell
with its variant, algorithm, mean and sample standard deviation of the final test
accuracy (%), the seeds finished and the epochs; cells without a finished run are left out.
With ``--page``, also replace the Markdown table of that page (the first table whose
header starts with "| variant |") by the report's (``lchannel report table1``).

    python benchmarks/table1_tsv.py --db docs/results/lchannel.db --out docs/results/table1-mnist.tsv \
        --page docs/results/paper1.md
"""

from __future__ import annotations

import argparse
import csv
import re
import tempfile
from pathlib import Path

from lchannel.experiments import ResultsStore, load_spec
from lchannel.experiments.report import write_report
from lchannel.experiments.results import collect


def rows(db: str) -> list[list]:
    store = ResultsStore(db)
    try:
        results = collect(load_spec("table1"), store)
    finally:
        store.close()
    out = []
    for res in results:
        if not res.finished:
            continue
        mean, sd, n = res.stats("test_acc")
        out.append([res.cell.labels["variant"], res.cell.labels["algorithm"], f"{100 * mean:.2f}",
                    "" if n < 2 else f"{100 * sd:.2f}", n, res.epochs])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="docs/results/lchannel.db")
    p.add_argument("--out", default="docs/results/table1-mnist.tsv")
    p.add_argument("--page", help="a Markdown page whose Table 1 is replaced by the report's")
    args = p.parse_args()
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["variant", "algorithm", "mean", "sd", "seeds", "epochs"])
        w.writerows(rows(args.db))
    print(f"wrote {args.out}")
    if args.page:
        page = Path(args.page)
        text = page.read_text()
        table = "\n".join(line for line in report_table(args.db).splitlines() if line.startswith("|"))
        new, n = re.subn(r"^\| variant \|.*?(?=\n\n)", lambda m: table, text, count=1, flags=re.S | re.M)
        if n != 1:
            raise SystemExit(f"--page: no table starting with '| variant |' in {page}")
        page.write_text(new)
        print(f"updated {page}")


def report_table(db: str) -> str:
    """The Markdown of ``lchannel report table1`` (tables only)."""
    with tempfile.TemporaryDirectory() as out:
        write_report(load_spec("table1"), db, Path(out), plots=False)
        return (Path(out) / "report.md").read_text()


if __name__ == "__main__":
    main()
