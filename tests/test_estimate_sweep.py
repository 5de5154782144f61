"""benchmarks/estimate_sweep.py: per-epoch and one-off parts, a packed population counted once."""

import sqlite3

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def estimate():
    return load_benchmark("estimate_sweep")


def _db(path, populations):
    """populations: [(finished_at, run seconds, first-epoch seconds, {cell: members})], seeds 0..members-1."""
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE cells (spec TEXT, cell TEXT, config_hash TEXT)")
        c.execute("CREATE TABLE runs (run_id TEXT, config_hash TEXT, status TEXT, population TEXT, "
                  "seconds REAL, finished_at REAL)")
        c.execute("CREATE TABLE epochs (run_id TEXT, epoch INTEGER, seconds REAL)")
        for finished, total, epoch, cells in populations:
            for cell, n in cells.items():
                c.execute("INSERT OR IGNORE INTO cells VALUES ('s', ?, ?)", (cell, "h-" + cell))
                for seed in range(n):
                    rid = f"{cell}-{seed}-{finished}"
                    c.execute("INSERT INTO runs VALUES (?, ?, 'done', ?, ?, ?)",
                              (rid, "h-" + cell, str(list(range(n))), total, finished))
                    c.execute("INSERT INTO epochs VALUES (?, 1, ?)", (rid, epoch))
    return str(path)


def test_packed_population_is_counted_once_and_shared_by_members(estimate, tmp_path):
    # One population packing cells a (5 members) and b (5), one population of cell c alone
    # with the same seed list (so the seed list alone cannot tell populations apart).
    db = _db(tmp_path / "s.db", [(1.0, 100.0, 80.0, {"a": 5, "b": 5}), (2.0, 30.0, 20.0, {"c": 5})])
    times = estimate.cell_times(db)
    assert times == {"a": pytest.approx((40.0, 10.0)), "b": pytest.approx((40.0, 10.0)),
                     "c": pytest.approx((20.0, 10.0))}


def test_epochs_extrapolate_per_step_and_the_rest_once(estimate, tmp_path):
    # First epoch: 5 s + 0.1 s per step; the rest: 2 s + 0.01 s per step.
    def times(steps):
        return 7.0 + 0.11 * steps, 5.0 + 0.1 * steps
    dbs = []
    for steps in (10, 50):
        total, epoch = times(steps)
        dbs.append((_db(tmp_path / f"s{steps}.db", [(1.0, total, epoch, {"a": 1})]), steps * 100))
    (cell, per_epoch, once, total), = estimate.estimate(dbs, batch_size=100, steps=600, epochs=100)
    assert per_epoch == pytest.approx(5.0 + 60.0) and once == pytest.approx(2.0 + 6.0)
    assert total == pytest.approx(100 * 65.0 + 8.0)
