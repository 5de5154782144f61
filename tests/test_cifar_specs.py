"""CIFAR-10 experiment specs (paper 1, Table 1's CIFAR rows, Figures 5-6, section 4.3
protocol) and the conv architecture on the config and the command line."""

import pytest

from lchannel.cli import main
from lchannel.run.config import TrainConfig
from lchannel.data import CIFAR10_ARCHITECTURE
from lchannel.experiments import load_spec

PAPER_NET = "conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10"
# Section 4.3: minibatches of 128, momentum 0.9, lr 0.01 decaying by 1e-5 per update, 100 epochs,
# five initialisations, translations and flips; tanh, softmax, scaled normal initialisation.
PROTOCOL = dict(dataset="cifar10", architecture=PAPER_NET, hidden="tanh", output_pair="softmax",
                init="glorot_normal", lr=0.01, decay=1e-5, momentum=0.9, batch_size=128, epochs=100,
                seeds=[0, 1, 2, 3, 4], augment=True, normalize=False)


def _check_protocol(spec):
    for c in spec.cells():
        for k, v in PROTOCOL.items():
            assert getattr(c.config, k) == v, (spec.name, c.title, k)


def test_table1_cifar_has_the_papers_rows_and_cells():
    s = load_spec("table1-cifar")
    _check_protocol(s)
    assert s.axis("variant").labels() == ["Baseline", "No-f'", "Sparse-8", "Sparse-2", "Sparse-1"]
    cells = {(c.labels["variant"], c.labels["algorithm"]): c.config for c in s.cells()}
    # Baseline: BP, RBP, SRBP, top; No-f': BP, RBP, SRBP; Sparse-8/2/1: RBP, SRBP.
    assert len(cells) == 4 + 3 + 3 * 2 and s.n_runs() == 13 * 5
    assert ("Baseline", "Top layer only") in cells and ("No-f'", "Top layer only") not in cells
    assert ("Sparse-8", "BP") not in cells and ("No-f'", "BP") in cells
    assert cells[("Baseline", "Top layer only")].algorithm == "top"
    assert cells[("No-f'", "SRBP")].channel == {"derivative": "none"}
    for n in (8, 2, 1):
        for a in ("RBP", "SRBP"):
            assert cells[(f"Sparse-{n}", a)].channel == {"feedback": {"distribution": "sparse", "n": n}}
    assert s.report.layout == "table" and s.report.rows == ("variant",) and s.report.columns == ("algorithm",)


def test_figure5_and_6_follow_their_captions_and_share_runs_with_the_table():
    t1 = {c.key for c in load_spec("table1-cifar").cells()}
    f5 = load_spec("figure5")
    _check_protocol(f5)
    cells5 = {c.labels["algorithm"]: c for c in f5.cells()}
    assert list(cells5) == ["BP", "SBP", "RBP", "SRBP", "BP (no f')", "SBP (no f')", "RBP (no f')",
                            "SRBP (no f')", "Top layer only"]
    assert cells5["SBP (no f')"].config.algorithm == "sbp"
    assert cells5["SBP (no f')"].config.channel == {"derivative": "none"}
    # Every line but SBP's two is a run of table1-cifar (the store trains it once).
    assert {lab for lab, c in cells5.items() if c.key not in t1} == {"SBP", "SBP (no f')"}
    f6 = load_spec("figure6")
    _check_protocol(f6)
    cells6 = f6.cells()
    assert len(cells6) == 8 and all(c.key in t1 for c in cells6)
    assert {c.labels["feedback"] for c in cells6} == {"Normal", "Sparse-8", "Sparse-2", "Sparse-1"}
    assert f6.report.panels == "algorithm" and f6.report.lines == "feedback"


def test_the_default_cifar10_architecture_is_the_papers_conv_net():
    assert CIFAR10_ARCHITECTURE == PAPER_NET
    cfg = TrainConfig(dataset="cifar10").validate()
    assert cfg.is_conv and cfg.arch == PAPER_NET
    # Units at each weighted block's output: 64x32x32, 64x16x16, 64x8x8, 1024, 10.
    assert list(cfg.sizes) == [3072, 65536, 16384, 4096, 1024, 10]
    # Setting it explicitly is another spelling of the default (its own cache key, as for dense nets).
    assert TrainConfig(dataset="cifar10", architecture=PAPER_NET).validate().sizes == cfg.sizes


@pytest.mark.parametrize("arch, needle", [
    ("conv64k5-pool3s2-bogus7-dense10", "architecture: piece 3 'bogus7'"),
    ("conv64k5-dense5", "cifar10 needs 3072 inputs and 10 outputs, got conv64k5-dense5"),
    ("conv64k5-pool3s2", "architecture: 'conv64k5-pool3s2' must end with a dense piece"),
])
def test_bad_conv_architectures_are_refused_naming_the_piece(arch, needle):
    with pytest.raises(ValueError) as err:
        TrainConfig(dataset="cifar10", architecture=arch).validate()
    assert needle in str(err.value)


def test_conv_architecture_needs_an_image_data_set():
    with pytest.raises(ValueError, match="architecture: a conv architecture needs an image data set"):
        TrainConfig(dataset="synthetic", architecture="conv4k3-dense1").validate()
    # MNIST is an image data set too: (1, 28, 28).
    assert list(TrainConfig(dataset="mnist", architecture="conv8k5-pool2-dense10").validate().sizes) == [
        784, 8 * 28 * 28, 10]


@pytest.mark.parametrize("argv, needle", [
    (["--dataset", "cifar10", "--arch", "conv64k5-pool3s2-bogus7-dense10"], "--arch: piece 3 'bogus7'"),
    (["--dataset", "synthetic", "--arch", "conv8k3-dense1"], "--arch: a conv architecture needs an image"),
    (["--dataset", "synthetic", "--augment"], "--augment: True does not apply here"),
    (["--dataset", "synthetic", "--normalize"], "--normalize: True does not apply here"),
    (["--dataset", "cifar10", "--arch", "3072,,10"], "--arch"),
])
def test_cli_refuses_bad_conv_options_before_any_work(argv, needle, capsys, tmp_path):
    with pytest.raises(SystemExit) as err:
        main(["train", *argv, "--out", str(tmp_path / "run")])
    assert err.value.code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit) as err:  # compare builds its configs the same way
        main(["compare", "--algorithms", "bp,srbp", *argv, "--out", str(tmp_path / "cmp")])
    assert err.value.code == 2 and needle in capsys.readouterr().err
