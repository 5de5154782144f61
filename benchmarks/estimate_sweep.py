"""Estimate a full sweep's time from two shortened runs of the same command.

Run the spec twice with one epoch on two training subsets, with the workers and threads
the full sweep will use (the default), e.g.

    lchannel run table1 --epochs 1 --subset 3000 --db /tmp/s3000.db
    lchannel run table1 --epochs 1 --subset 6000 --db /tmp/s6000.db
    python benchmarks/estimate_sweep.py /tmp/s3000.db:3000 /tmp/s6000.db:6000 --steps 600 --epochs 100

Times are *worker-seconds*: the wall time of the worker that trained a population (one
worker per core by default, so a worker-second is about a CPU-second).  Each population's
time is split in two parts, read from the results store:

- its first epoch (``epochs.seconds``: the minibatches and the test-set evaluation),
  fitted as ``a + b·steps`` (steps = subset / batch size) and counted every epoch;
- the rest of the run (``runs.seconds`` minus the epoch: start-up and the evaluation of
  the untrained network on the training and test sets, done once), fitted as
  ``c + d·steps`` and counted once.

A population that packs several cells (variants of one shape, issue 16) is counted once
and shared among its cells in proportion to their members.  The sweep's wall time is
the sum over cells divided by ``--workers``.  Later epochs are not measured (a quantized
step gets cheaper as training goes on, so this over-estimates those cells).
"""

from __future__ import annotations

import argparse
import sqlite3


def cell_times(db: str) -> dict[str, tuple[float, float]]:
    """Per cell ``(first epoch, the rest)`` in worker-seconds.  A population's times are
    stored on each of its runs, which are written in one transaction (same seeds,
    ``seconds`` and ``finished_at``): a population is counted once and shared among its
    cells in proportion to their members."""
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT cells.cell, runs.population, runs.finished_at, runs.seconds, epochs.seconds FROM runs "
            "JOIN cells ON cells.config_hash = runs.config_hash "
            "JOIN epochs ON epochs.run_id = runs.run_id AND epochs.epoch = 1 WHERE runs.status = 'done'").fetchall()
    members: dict[tuple, int] = {}
    for _cell, *pop, _total, _epoch in rows:
        members[tuple(pop)] = members.get(tuple(pop), 0) + 1
    out: dict[str, tuple[float, float]] = {}
    for cell, *pop, total, epoch in rows:
        n = members[tuple(pop)]
        e, r = out.get(cell, (0.0, 0.0))
        out[cell] = (e + (epoch or 0.0) / n, r + ((total or 0.0) - (epoch or 0.0)) / n)
    return out


def _line(x1: float, y1: float, x2: float, y2: float, x: float) -> float:
    slope = (y2 - y1) / (x2 - x1)
    return y1 + slope * (x - x1)


def estimate(runs: list[tuple[str, int]], batch_size: int, steps: int, epochs: int):
    """``[(cell, per-epoch, once, total)]`` in worker-seconds for the full protocol."""
    (db1, n1), (db2, n2) = runs
    t1, t2 = cell_times(db1), cell_times(db2)
    s1, s2 = n1 / batch_size, n2 / batch_size
    rows = []
    for cell in sorted(set(t1) & set(t2)):
        per_epoch = _line(s1, t1[cell][0], s2, t2[cell][0], steps)
        once = _line(s1, t1[cell][1], s2, t2[cell][1], steps)
        rows.append((cell, per_epoch, once, epochs * per_epoch + once))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=2, metavar="DB:SUBSET", help="two shortened runs: database and training subset")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--steps", type=int, default=600, help="steps per epoch of the full protocol (default: 600)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of the full protocol (default: 100)")
    p.add_argument("--workers", type=int, default=2, help="workers the sweep will run at once (default: 2)")
    args = p.parse_args(argv)
    runs = [(r.rsplit(":", 1)[0], int(r.rsplit(":", 1)[1])) for r in args.runs]
    rows = estimate(runs, args.batch_size, args.steps, args.epochs)
    print(f"{'cell':60s} {'s/epoch':>8} {'once':>7} {'total h':>8}")
    for cell, per_epoch, once, total in rows:
        print(f"{cell:60s} {per_epoch:8.1f} {once:7.1f} {total / 3600:8.2f}")
    total = sum(r[3] for r in rows)
    print(f"{len(rows)} cells: {total / 3600:.2f} worker-hours, {total / 3600 / args.workers:.2f} h with "
          f"{args.workers} workers")


if __name__ == "__main__":
    main()
