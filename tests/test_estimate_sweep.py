"""benchmarks/estimate_sweep.py: a packed population's CPU time is counted once."""

import importlib.util
import sqlite3
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "estimate_sweep.py"


@pytest.fixture(scope="module")
def estimate():
    spec = importlib.util.spec_from_file_location("estimate_sweep", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _db(path, populations):
    """populations: [(finished_at, cpu_seconds, {cell: members})] with seeds 0..members-1."""
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE cells (spec TEXT, cell TEXT, config_hash TEXT)")
        c.execute("CREATE TABLE runs (run_id TEXT, config_hash TEXT, status TEXT, population TEXT, "
                  "cpu_seconds REAL, finished_at REAL)")
        for finished, cpu, cells in populations:
            for cell, n in cells.items():
                c.execute("INSERT OR IGNORE INTO cells VALUES ('s', ?, ?)", (cell, "h-" + cell))
                for seed in range(n):
                    c.execute("INSERT INTO runs VALUES (?, ?, 'done', ?, ?, ?)",
                              (f"{cell}-{seed}-{finished}", "h-" + cell, str(list(range(n))), cpu, finished))
    return str(path)


def test_packed_population_is_counted_once_and_shared_by_members(estimate, tmp_path):
    # One population packing cells a (5 members) and b (5), one population of cell c alone
    # with the same seed list (so the seed list alone cannot tell populations apart).
    db = _db(tmp_path / "s.db", [(1.0, 100.0, {"a": 5, "b": 5}), (2.0, 30.0, {"c": 5})])
    assert estimate.cell_cpu(db) == pytest.approx({"a": 50.0, "b": 50.0, "c": 30.0})


def test_unpacked_cells_keep_their_population_time(estimate, tmp_path):
    db = _db(tmp_path / "s.db", [(1.0, 40.0, {"a": 3}), (2.0, 60.0, {"b": 3})])
    assert estimate.cell_cpu(db) == pytest.approx({"a": 40.0, "b": 60.0})
