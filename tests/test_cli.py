"""Command line: validation before work, outputs written, the comparison table and PNG."""

import json

import pytest

from lchannel.accounting import channel_cost, eq14_W, eq15_W_prime
from lchannel.cli import main


def test_bad_options_exit_2_and_name_the_option(capsys):
    for argv, needle in [
        (["train", "--algorithm", "rpb"], "algorithm"),
        (["train", "--hidden", "swish"], "hidden"),
        (["train", "--lr", "0"], "lr"),
        (["compare", "--algorithms", "bp,xx"], "--algorithms"),
        (["train", "--dataset", "imagenet"], "dataset"),
        (["train", "--algorithm", "rbp", "--feedback", "cauchy"], "feedback distribution"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert needle in capsys.readouterr().err


def test_train_writes_config_metrics_checkpoint_and_table(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--algorithm", "srbp", "--dataset", "synthetic", "--k", "0", "--n-train", "500",
          "--arch", "2,16,16,1", "--epochs", "2", "--num-seeds", "2", "--batch-size", "10", "--lr", "0.5",
          "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert "SRBP" in text and "±" in text and "multiplications/example" in text
    assert json.loads((out / "config.json").read_text())["algorithm"] == "srbp"
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 1 + 2 * 2
    assert (out / "checkpoint.pt").exists() and (out / "metrics.json").exists()


def test_compare_writes_table_and_png(tmp_path, capsys):
    out = tmp_path / "cmp"
    main(["compare", "--algorithms", "bp,rbp-nof,top", "--dataset", "synthetic", "--k", "0",
          "--n-train", "300", "--arch", "2,8,1", "--epochs", "2", "--num-seeds", "2", "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    for name in ("BP", "RBP (no f')", "Top layer only"):
        assert name in text
    png = (out / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def test_channel_cost_eq14_eq15():
    sizes = [784, 100, 100, 100, 100, 10]
    assert eq14_W(sizes) == 784 * 100 + 3 * 100 * 100 + 100 * 10
    assert eq15_W_prime(sizes) == 10 * 400
    assert channel_cost(sizes, "srbp").channel_mults == 4000
    assert channel_cost(sizes, "rbp").channel_mults == 3 * 100 * 100 + 100 * 10
    assert channel_cost(sizes, "top").channel_mults == 0
