"""Command line: validation before work, outputs written, the comparison table and PNG."""

import json

import pytest

from lchannel.report.accounting import channel_cost, eq14_W, eq15_W_prime
from lchannel.cli import main


def test_bad_options_exit_2_and_name_the_option(capsys):
    for argv, needle in [
        (["train", "--algorithm", "rpb"], "algorithm"),
        (["train", "--hidden", "swish"], "hidden"),
        (["train", "--lr", "0"], "lr"),
        (["compare", "--algorithms", "bp,xx"], "--algorithms"),
        (["train", "--dataset", "imagenet"], "dataset"),
        (["train", "--algorithm", "rbp", "--feedback", "cauchy"], "--feedback must be one of"),
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


def test_one_seed_has_no_sample_sd_and_coinciding_channels_are_named(tmp_path, capsys, monkeypatch):
    """n = 1: no "± 0.00" (a single run has no sample sd) but "± —" and a note saying so,
    in the printed tables and comparison.txt; BP (no f') and SBP (no f'), identical by
    construction, are named in comparison.txt and in the figure's caption."""
    from lchannel.report import plots

    quick = ["--dataset", "synthetic", "--k", "0", "--n-train", "300", "--arch", "2,8,8,1", "--num-seeds", "1",
             "--quiet"]
    main(["train", "--algorithm", "srbp", "--epochs", "1", "--out", str(tmp_path / "one"), *quick])
    text = capsys.readouterr().out
    assert "± 0.00" not in text and "± —" in text and "a single run (one seed)" in text
    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, **k: figures.append(fig) or real_save(fig, path, **k))
    out = tmp_path / "cmp"
    main(["compare", "--algorithms", "bp-nof,sbp-nof,top", "--epochs", "3", "--out", str(out), *quick])
    text = capsys.readouterr().out
    saved = (out / "comparison.txt").read_text()
    for t in (text, saved):
        assert "± 0.00" not in t and "± —" in t
        assert "BP (no f') and SBP (no f') coincide by construction" in t
    rows = {line.split("  ")[0]: line for line in saved.splitlines()}
    assert rows["BP (no f')"].replace("BP (no f')", "") == rows["SBP (no f')"].replace("SBP (no f')", " ")
    (fig,) = figures
    caption = fig.get_supxlabel().replace("\n", " ")
    assert "BP (no f') and SBP (no f') coincide by construction" in caption
    assert len(fig.axes) == 4 and "final epochs 2-3" in caption  # epochs 0-3: the zoom on the last two


def test_channel_cost_eq14_eq15():
    sizes = [784, 100, 100, 100, 100, 10]
    assert eq14_W(sizes) == 784 * 100 + 3 * 100 * 100 + 100 * 10
    assert eq15_W_prime(sizes) == 10 * 400
    assert channel_cost(sizes, "srbp").channel_mults == 4000
    assert channel_cost(sizes, "rbp").channel_mults == 3 * 100 * 100 + 100 * 10
    assert channel_cost(sizes, "top").channel_mults == 0


# -- issue 25: a newcomer's rough edges ----------------------------------------------------

def test_compare_says_roughly_how_long_before_training(tmp_path, capsys, monkeypatch):
    """One line before the first epoch: channels x epochs x seeds and an estimate from the
    measured cost per example, epoch and seed (experiments.planning), scaled by each of them
    and by the network's multiply-adds; a resumed run counts only the epochs left."""
    import os

    from lchannel.cli import FIGURE1, estimate_line
    from lchannel.run.config import TrainConfig
    from lchannel.experiments import planning

    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    out = tmp_path / "cmp"
    main(["compare", "--algorithms", "bp,top", "--dataset", "synthetic", "--k", "0", "--n-train", "300",
          "--arch", "2,8,1", "--epochs", "2", "--num-seeds", "2", "--out", str(out), "--quiet"])
    lines = capsys.readouterr().out.splitlines()
    (i,) = [n for n, line in enumerate(lines) if line.startswith("2 channels x 2 epochs x 2 seeds: ")]
    assert i < next(n for n, line in enumerate(lines) if line.startswith("run ")) and "(estimate: " in lines[i]
    # The main job (README): 9 channels x 5 epochs x 5 seeds on MNIST, ~150 CPU-s measured.
    main_job = [TrainConfig(algorithm=a, epochs=5, seeds=[0, 1, 2, 3, 4]) for a in FIGURE1]
    total = sum(planning.estimate_seconds(c, 10000) for c in main_job)
    assert 120 < total < 180
    monkeypatch.setattr("torch.get_num_threads", lambda: 1)  # OMP_NUM_THREADS=1: the measured figure
    line = estimate_line(main_job, 10000)
    assert line.startswith("9 channels x 5 epochs x 5 seeds: about 2.5 min on a quiet 2-core CPU (estimate: 8.3 µs per "
                           "training example, epoch and seed on one thread for A[784,100,100,100,100,10]; ")
    assert line.endswith("; longer on a busy machine)")
    monkeypatch.setattr("torch.get_num_threads", lambda: 2)  # torch's default on 2 cores
    assert "about 2 min on a quiet 2-core CPU" in estimate_line(main_job, 10000)
    assert "1.35x less on 2 threads" in estimate_line(main_job, 10000)
    # Scaled by epochs, seeds, subset and the network's size.
    one = TrainConfig(algorithm="bp", epochs=5, seeds=[0])
    t = planning.estimate_seconds(one, 10000)
    assert planning.estimate_seconds(one.replace(epochs=50), 10000) == pytest.approx(10 * t, rel=0.1)
    assert 3 * t < planning.estimate_seconds(one.replace(seeds=[0, 1, 2, 3]), 10000) < 4 * t  # a step's overhead: once
    assert planning.estimate_seconds(one.replace(subset=6000), 10000) < t / 3
    wide = one.replace(architecture=[784, 400, 400, 10])
    assert planning.forward_multiply_adds(wide) == 784 * 400 + 400 * 400 + 400 * 10
    assert planning.estimate_seconds(wide, 10000) > 3 * t
    cifar = TrainConfig(dataset="cifar10", algorithm="srbp", epochs=1, seeds=[0])
    assert planning.forward_multiply_adds(cifar) > 30e6  # paper 1's conv net: ~39 M per image
    assert "scaled to" in estimate_line([cifar], 10000)
    # Resumed: only the epochs left; nothing left: no line.
    assert planning.estimate_seconds(one, 10000, epochs_done=4) < t / 4
    assert "(5 of 10 channel-epochs left)" in estimate_line([one, one], 10000, [{"epoch": 5}, None])
    assert estimate_line([one], 10000, [{"epoch": 5}]) is None
    # A busy machine: say so, and how to avoid torch's threads waiting on each other.
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert "busy (load 9.0 on 2 cores): expect longer, or set OMP_NUM_THREADS=1" in estimate_line(main_job, 10000)


def test_help_names_every_paper_and_data_set_of_the_specs(capsys):
    from lchannel.cli import build_parser

    build_parser().print_help()
    top = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["experiments", "--help"])
    sub = capsys.readouterr().out
    for text in (top, sub):
        flat = " ".join(text.split())
        assert "paper 1's MNIST" not in flat
        assert "paper 1: MNIST, CIFAR-10; paper 2: MNIST, f_k, HIGGS" in flat


def test_experiments_show_lists_the_settings_of_the_cells(capsys):
    """The settings shared by every cell (the always-relevant ones and every field that
    differs from TrainConfig's defaults), and per cell what differs."""
    assert main(["experiments", "show", "table1-cifar"]) == 0
    text = capsys.readouterr().out
    shared = text.split("settings shared by all cells", 1)[1].split("\ncell ", 1)[0]
    settings = dict(line.strip().split(" = ", 1) for line in shared.splitlines()[1:] if " = " in line)
    settings = {k.strip(): v for k, v in settings.items()}
    assert settings == {"dataset": "cifar10", "augment": "true",
                        "architecture": "conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10",
                        "output": "softmax", "lr": "0.01", "decay": "1e-05", "momentum": "0.9", "batch_size": "128",
                        "epochs": "100"}
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "algorithm=srbp, channel.feedback.distribution=sparse, channel.feedback.n=2" in rows["Sparse-2 / SRBP"]
    assert "algorithm=rbp, channel.derivative=none" in rows["No-f' / RBP"]
    assert main(["experiments", "show", "figure9", "--where", "algorithm=RBP"]) == 0
    text = capsys.readouterr().out
    assert "  algorithm    = rbp" in text and "architecture = A[784, 100, 100, 100, 100, 10]" in text
    assert "channel.lc_dropout=0.5" in text
    # A field some cells set away from its default is shown for every cell, default included.
    assert main(["experiments", "show", "p2-figure12"]) == 0
    rows = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "synthetic_k=1" in rows["BP / k = 1"] and "synthetic_k=0" in rows["BP / k = 0"]


@pytest.mark.parametrize("argv, message", [
    # the case: the option a channel has no use for is named as typed
    (["--algorithm", "top", "--sparse-n", "2"],
     "--sparse-n does not apply to algorithm 'top': only the output layer learns"),
    (["--algorithm", "bp", "--congruent"], "--congruent does not apply to algorithm 'bp'; it takes --derivative, "),
    (["--algorithm", "srbp", "--skip-layers", "1"], "--skip-layers does not apply to algorithm 'srbp'; it takes "),
    (["--algorithm", "top", "--quantize-bits", "3"], "--quantize-bits does not apply to 'top'"),
    (["--algorithm", "rbp", "--feedback-mean", "1", "--feedback", "sign"],
     "--feedback-mean applies only to distributions 'normal' and 'uniform'"),
    (["--algorithm", "rbp", "--sparse-n", "2"], "--sparse-n applies only to distribution 'sparse'"),
    (["--algorithm", "rbp", "--quantize-alpha", "0.1"], "--quantize-alpha needs --quantize-bits"),
    (["--algorithm", "rbp", "--quantize-bits", "0"], "--quantize-bits must be an integer >= 1, got 0"),
    (["--algorithm", "rbp", "--lc-dropout", "1.5"], "--lc-dropout: channel dropout p must be in [0, 1)"),
    (["--algorithm", "rbp", "--adapt-rate", "0.5"], "--adapt-rate applies only to adaptive channels"),
    (["--algorithm", "arbp", "--rule", "oja"], "--rule must be one of ('hebbian', 'stdp')"),
    (["--algorithm", "arbp", "--stdp-scale", "0.5"], "--stdp-scale applies only with rule='stdp'"),
    (["--algorithm", "rbp", "--sign-only", "--magnitude-only"], "--sign-only and --magnitude-only exclude each other"),
    (["--algorithm", "distinct-rbp", "--lc-width", "3,4"], "--lc-width: [3, 4] names 2 widths"),
    (["--algorithm", "rbp", "--channel-opt", "bogus=1"], "--channel-opt bogus: algorithm 'rbp' does not accept"),
])
def test_channel_option_errors_name_the_flag_typed(argv, message, capsys, tmp_path):
    """Issue 25: a channel option's error names the flag the user typed, not the key of the
    config's channel table (['feedback'], quantize_alpha, ...); the same in compare."""
    with pytest.raises(SystemExit) as e:
        main(["train", *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err, err
    assert "['feedback']" not in err and not (tmp_path / "run").exists()


def test_compare_names_the_channel_flag_too(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--algorithms", "rbp,top", "--sparse-n", "2", "--feedback", "sparse",
              "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--feedback and --sparse-n do not apply to algorithm 'top'" in err, err
