"""Estimate a full sweep's CPU time from two shortened runs of the same command.

Run the spec twice with one epoch on two training subsets, e.g.

    lchannel run table1 --epochs 1 --subset 3000 --db /tmp/s3000.db
    lchannel run table1 --epochs 1 --subset 6000 --db /tmp/s6000.db
    python benchmarks/estimate_sweep.py /tmp/s3000.db:3000 /tmp/s6000.db:6000 --steps 600 --epochs 100

Per cell, the stored ``cpu_seconds`` of its populations (one value per population,
repeated on each of its runs) are fitted as ``a + b·steps`` (steps = subset / batch size
per epoch) and extrapolated to ``--steps`` steps per epoch and ``--epochs`` epochs (a
population packing several cells is shared among them by members, see :func:`cell_cpu`).  The
fixed part ``a`` (start, test evaluation, alignment probe) is counted every epoch, which
over-estimates by the start-up cost.  The first epoch is the only one measured.
"""

from __future__ import annotations

import argparse
import sqlite3


def cell_cpu(db: str) -> dict[str, float]:
    """CPU seconds per cell.  A population's time is stored on each of its runs, which are
    written in one transaction (same seeds, ``cpu_seconds`` and ``finished_at``); a
    population that packs several cells (variants of one shape, issue 16) is counted once
    and shared among its cells in proportion to their members."""
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT cells.cell, runs.population, runs.cpu_seconds, runs.finished_at FROM runs "
                         "JOIN cells ON cells.config_hash = runs.config_hash WHERE runs.status = 'done'").fetchall()
    members: dict[tuple, int] = {}
    for _cell, *pop in rows:
        members[tuple(pop)] = members.get(tuple(pop), 0) + 1
    out: dict[str, float] = {}
    for cell, *pop in rows:
        out[cell] = out.get(cell, 0.0) + (pop[1] or 0.0) / members[tuple(pop)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=2, metavar="DB:SUBSET", help="two shortened runs: database and training subset")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--steps", type=int, default=600, help="steps per epoch of the full protocol (default: 600)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of the full protocol (default: 100)")
    p.add_argument("--cores", type=int, default=2, help="cores the sweep will use (default: 2)")
    args = p.parse_args()
    (db1, n1), (db2, n2) = [(r.rsplit(":", 1)[0], int(r.rsplit(":", 1)[1])) for r in args.runs]
    c1, c2 = cell_cpu(db1), cell_cpu(db2)
    s1, s2 = n1 / args.batch_size, n2 / args.batch_size
    total = 0.0
    for cell in sorted(set(c1) & set(c2)):
        b = (c2[cell] - c1[cell]) / (s2 - s1)
        a = c1[cell] - b * s1
        per_epoch = a + b * args.steps
        total += args.epochs * per_epoch
        print(f"{cell:60s} {c1[cell]:7.1f} / {c2[cell]:7.1f} CPU-s -> {per_epoch:7.1f} CPU-s per epoch")
    print(f"{len(set(c1) & set(c2))} cells: {total / 3600:.2f} CPU-h, {total / 3600 / args.cores:.2f} h on "
          f"{args.cores} cores")


if __name__ == "__main__":
    main()
