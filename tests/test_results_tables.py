"""docs/results/table1-mnist.tsv is what the committed store holds (issue 26), and the
paper 1 page quotes it."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from helpers import store_copy

ROOT = Path(__file__).resolve().parents[1]
DB = ROOT / "docs" / "results" / "lchannel.db"
TSV = ROOT / "docs" / "results" / "table1-mnist.tsv"
PAGE = ROOT / "docs" / "results" / "paper1.md"
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_table1_tsv_is_the_store_and_the_page_quotes_it(tmp_path):
    if not DB.is_file():
        pytest.skip("the committed results store is not in this checkout")
    from table1_tsv import rows

    copy = store_copy(DB, tmp_path / "lchannel.db")
    with TSV.open() as f:
        table = list(csv.reader(f, delimiter="\t"))
    assert table[0] == ["variant", "algorithm", "mean", "sd", "seeds", "epochs"]
    assert table[1:] == [[str(v) for v in r] for r in rows(str(copy))]
    page = PAGE.read_text()
    for variant, algorithm, mean, sd, seeds, epochs in table[1:]:
        cell = f"{mean} ({sd or '—'}) [{seeds} × {epochs} ep"  # the report's cell, "[5 × 100 ep]" or "[1 × 100 ep, 4 pending]"
        line = next((ln for ln in page.splitlines() if ln.startswith(f"| {variant} |")), "")
        assert cell in line, (variant, algorithm, cell)
