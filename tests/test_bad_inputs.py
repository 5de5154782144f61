"""Every malformed input to ``train``/``compare`` and TrainConfig gets a clean error that
names the field, before any work; nothing is silently ignored (issue 9).

Each row: command-line arguments -> a fragment of the message.  The command must exit with
status 2 (argparse's usage error) and print no traceback, and must not have created the
output folder (no work started).
"""

from __future__ import annotations

import json
import os
import urllib.error
from pathlib import Path

import pytest

from lchannel.cli import main
from lchannel.run.config import TrainConfig
from lchannel.data import mnist as mnist_module
from lchannel.data import resolve_data_dir

SYN = ["--dataset", "synthetic", "--k", "0", "--n-train", "200", "--n-test", "50", "--arch", "2,8,8,1",
       "--batch-size", "10", "--quiet"]

BAD = [
    # --- values -----------------------------------------------------------------------
    (["train", "--arch", "784,,10"], "expected comma-separated integers"),
    (["train", "--arch", "784"], "--arch: [784] is not accepted"),
    (["train", "--arch", "784,0,10"], "--arch: [784, 0, 10] is not accepted"),
    (["train", "--arch", "2,8,1"], "--arch: mnist needs 784 inputs and 10 outputs"),
    (["train", "--epochs", "0"], "epochs: 0 is not accepted; expected an integer >= 1"),
    (["train", "--epochs", "-3"], "epochs: -3 is not accepted"),
    (["train", "--lr", "inf"], "expected a finite number"),
    (["train", "--lr", "nan"], "expected a finite number"),
    (["train", "--lr", "-0.1"], "lr: -0.1 is not accepted; expected a number > 0"),
    (["train", "--decay", "-1"], "decay: -1.0 is not accepted"),
    (["train", "--momentum", "1"], "momentum: 1.0 is not accepted; expected a number in [0, 1)"),
    (["train", "--dropout", "1"], "dropout: 1.0 is not accepted"),
    (["train", "--batch-size", "0"], "--batch-size: 0 is not accepted"),
    (["train", "--batch-size", "70000"], "--batch-size: 70000 is larger than mnist's 60000 training examples"),
    (["train", "--subset", "70000"], "--subset: 70000 is larger than mnist's 60000 training examples"),
    (["train", "--subset", "0"], "subset: 0 is not accepted"),
    (["train", "--subset", "50"], "--batch-size: 100 is larger than the 50 training examples"),
    (["train", "--seeds", "9223372036854775808"], "seeds: [9223372036854775808] is not accepted"),
    (["train", "--seeds", "-1"], "seeds: [-1] is not accepted"),
    (["train", "--seeds", "1,1"], "distinct integers"),
    (["train", "--seeds", ""], "expected comma-separated integers"),
    (["train", "--num-seeds", "0"], "--num-seeds: 0 is not accepted"),
    (["train", "--data-seed", "-1"], "--data-seed: -1 is not accepted"),
    (["train", "--hidden", "swish"], "hidden: 'swish' is not accepted; expected one of"),
    (["train", "--output", "sigmoid"], "output: 'sigmoid' is not accepted"),
    (["train", "--init", "he"], "init: 'he' is not accepted"),
    (["train", "--dataset", "imagenet"], "dataset: 'imagenet' is not accepted"),
    (["train", "--batch-order", "random"], "--batch-order: 'random' is not accepted"),
    (["train", "--train-metrics", "none"], "--train-metrics: 'none' is not accepted"),
    (["train", "--device", "cuda"], "device: 'cuda' is not accepted"),
    (["train", "--device", "tpu"], "device: 'tpu' is not accepted"),
    (["train", "--frozen", "9"], "frozen: [9] is not accepted; expected layer numbers in 1..5"),
    (["train", "--frozen", "1,2,3,4,5"], "freezes every layer that bp trains"),
    (["train", "--algorithm", "top", "--frozen", "5"], "freezes every layer that top trains"),
    (["train", "--update-bits", "0"], "--update-bits: 0 is not accepted"),
    (["train", "--k", "x"], "invalid int value"),
    (["train", "--algorithm", "rpb"], "algorithm: 'rpb' is not accepted"),
    (["train", "--channel-opt", "nokey"], "expected KEY=VALUE"),
    (["train", "--channel-opt", "=1"], "non-empty KEY"),
    (["train", "--channel-opt", "bogus=1"], "bogus"),
    (["train", "--algorithm", "rbp", "--topology", "{bad"], "invalid JSON mapping"),
    (["train", "--algorithm", "mixed", "--skip-layers", "7"], "--skip-layers must be hidden layers"),
    (["train", "--algorithm", "rbp", "--feedback", "cauchy"], "--feedback must be one of"),
    (["train", "--algorithm", "rbp", "--feedback-samples", "0"], "--feedback-samples must be an integer >= 1"),
    (["train", "--algorithm", "rbp", "--resample", "sometimes"], "resample"),
    (["train", "--algorithm", "rbp", "--feedback", "sparse", "--sparse-n", "1000"], "exceeds the receiving layer"),
    (["train", "--algorithm", "rbp", "--quantize-bits", "0"], "bits must be an integer >= 1"),
    (["train", "--algorithm", "rbp", "--lc-dropout", "1.5"], "dropout p must be in [0, 1)"),
    (["train", "--algorithm", "rbp", "--quantize-alpha", "0.1"], "--quantize-alpha needs --quantize-bits"),
    (["train", "--algorithm", "bp", "--feedback", "sign"], "feedback"),
    # --- options that do not apply (silently ignored before) ---------------------------
    (["train", "--algorithm", "rbp", "--adapt-rate", "0.5"], "--adapt-rate applies only to adaptive channels"),
    (["train", "--update-alpha", "0.01"], "--update-alpha: 0.01 does not apply here: it needs update_bits"),
    (["train", "--k", "2"], "--k: 2 does not apply here: only data set synthetic takes it"),
    (["train", "--n-train", "500"], "--n-train: 500 does not apply here"),
    (["train", "--n-test", "500"], "--n-test: 500 does not apply here"),
    (["train", "--algorithm", "top", "--derivative", "none"], "--derivative does not apply to 'top'"),
    (["train", "--algorithm", "top", "--quantize-bits", "3"], "--quantize-bits does not apply to 'top'"),
    (["compare", "--algorithms", "bp,bp"], "--algorithms: ['bp'] named more than once"),
    (["compare", "--algorithms", "bp,xx"], "--algorithms: ['xx'] not accepted"),
    (["compare", "--algorithms", "bp", "--epochs", "0"], "epochs: 0 is not accepted"),
    # --- the synthetic data set's own options -----------------------------------------
    (["train", "--dataset", "synthetic", "--n-train", "0"], "--n-train: 0 is not accepted"),
    (["train", "--dataset", "synthetic", "--k", "-1"], "--k: -1 is not accepted"),
    (["train", *SYN, "--batch-size", "500"], "--batch-size: 500 is larger than synthetic's 200 training examples"),
]


def _run(argv, capsys) -> str:
    """Run the CLI, expect a usage error (exit status 2), return what it printed to stderr."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_input_exits_2_with_a_message_naming_it_before_any_work(argv, needle, tmp_path, capsys):
    out = tmp_path / "out"
    err = _run([*argv, "--out", str(out)], capsys)
    assert needle in err, err
    assert "Traceback" not in err
    assert not out.exists()


# --- data files -----------------------------------------------------------------------

def test_missing_mnist_is_a_clean_error_and_a_mistyped_data_dir_creates_nothing(tmp_path, capsys, monkeypatch):
    typo = tmp_path / "no-such-dir"
    err = _run(["train", "--data-dir", str(typo), "--quiet", "--out", str(tmp_path / "o")], capsys)
    assert "--data-dir: folder" in err and "does not exist" in err and not typo.exists()
    # An existing but empty folder: the download is tried (no network here) and the error
    # names the missing files and where to put them.
    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(mnist_module.urllib.request, "urlopen", offline)
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _run(["train", "--data-dir", str(empty), "--quiet", "--out", str(tmp_path / "o")], capsys)
    assert "MNIST files missing" in err and "Traceback" not in err
    assert list(empty.iterdir()) == []  # no half-made folder left behind
    # $LCHANNEL_DATA_DIR pointing nowhere: the loader itself refuses and creates nothing.
    monkeypatch.setenv("LCHANNEL_DATA_DIR", str(typo))
    with pytest.raises(mnist_module.DataError, match="does not exist"):
        mnist_module.load_mnist()
    assert not typo.exists()


def _mnist_copy(tmp_path: Path, corrupt: str) -> Path:
    """A data folder with links to the real MNIST files and one corrupted copy."""
    src = resolve_data_dir(None)
    dst = tmp_path / "data" / "mnist"
    dst.mkdir(parents=True)
    for name in mnist_module.FILES:
        path = mnist_module.find_file(src, name)
        if path is None:
            pytest.skip("MNIST files not available")
        target = dst / path.name
        if name == corrupt:
            raw = bytearray(path.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            target.write_bytes(bytes(raw))
        else:
            os.symlink(path.resolve(), target)
    return tmp_path / "data"


@pytest.mark.parametrize("command", [["train"], ["compare", "--algorithms", "bp,rbp"]])
def test_corrupt_mnist_is_a_clean_error_naming_the_file(tmp_path, capsys, command):
    data = _mnist_copy(tmp_path, "t10k-labels-idx1-ubyte")
    err = _run([*command, "--data-dir", str(data), "--epochs", "1", "--quiet", "--out", str(tmp_path / "o")], capsys)
    assert "t10k-labels-idx1-ubyte" in err and ("corrupt" in err or "checksum" in err)
    assert "Traceback" not in err


# --- output folders -------------------------------------------------------------------

def test_out_that_is_a_file_or_under_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert "is a file; expected a folder" in _run(["train", *SYN, "--out", str(f)], capsys)
    assert "is a file, not a folder" in _run(["train", *SYN, "--out", str(f / "run")], capsys)  # cannot be created
    assert f.read_text() == "x"


def test_a_folder_holding_another_run_says_what_differs_and_restart_discards_it(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", *SYN, "--epochs", "1", "--out", str(out)])
    capsys.readouterr()
    err = _run(["train", *SYN, "--epochs", "1", "--lr", "0.05", "--out", str(out)], capsys)
    assert "holds a different run" in err and "lr 0.1 there, 0.05 here" in err and "--restart" in err
    err = _run(["train", *SYN, "--epochs", "1", "--seeds", "3", "--out", str(out)], capsys)
    assert "holds a different run" in err and "seeds [0] there, [3] here" in err
    main(["train", *SYN, "--epochs", "1", "--lr", "0.05", "--out", str(out), "--restart"])
    assert json.loads((out / "config.json").read_text())["lr"] == 0.05


@pytest.mark.parametrize("damage", ["checkpoint.pt", "config.json"])
def test_a_corrupt_run_file_is_named_with_the_way_out(tmp_path, capsys, damage):
    out = tmp_path / "run"
    main(["train", *SYN, "--epochs", "1", "--out", str(out)])
    capsys.readouterr()
    (out / damage).write_bytes(b"\x00garbage{")
    err = _run(["train", *SYN, "--epochs", "2", "--out", str(out)], capsys)
    assert str(out / damage) in err and "corrupt" in err and "--restart" in err and "Traceback" not in err
    main(["train", *SYN, "--epochs", "2", "--out", str(out), "--restart"])
    assert json.loads((out / "metrics.json").read_text())["epochs"] == [1, 2]


def test_default_folders_identify_the_run_and_a_finished_run_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["train", *SYN, "--epochs", "1"])
    main(["train", *SYN, "--epochs", "1", "--seeds", "1"])  # only the seed changes: its own folder
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.startswith("train-bp-") for f in folders)
    capsys.readouterr()
    main(["train", *SYN, "--epochs", "1"])
    assert "already complete (1 epochs); nothing was trained" in capsys.readouterr().out
    main(["train", *SYN, "--epochs", "2"])  # a longer schedule continues the same run
    assert len(list((tmp_path / "runs").iterdir())) == 2
    # The README's two compare lines in sequence: different channels, different folders.
    main(["compare", *SYN, "--algorithms", "bp,rbp", "--epochs", "1", "--num-seeds", "2"])
    main(["compare", *SYN, "--algorithms", "bp,rbp,srbp", "--quantize-bits", "3", "--epochs", "1",
          "--num-seeds", "2"])
    compares = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("compare-")]
    assert len(compares) == 2 and all((p / "comparison.png").exists() for p in compares)


def test_identical_runs_write_byte_identical_metrics(tmp_path):
    for name in ("a", "b"):
        main(["train", *SYN, "--epochs", "2", "--num-seeds", "2", "--out", str(tmp_path / name)])
    for f in ("metrics.json", "metrics.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert json.loads((tmp_path / "a" / "timings.json").read_text())["epochs"] == [1, 2]


# --- the configuration object (Python API, specs) ---------------------------------------

@pytest.mark.parametrize("fields,needle", [
    ({"epochs": 0}, "epochs: 0 is not accepted"),
    ({"lr": float("inf")}, "lr: inf is not accepted"),
    ({"seeds": [2 ** 63]}, "seeds: [9223372036854775808] is not accepted"),
    ({"synthetic_k": 3}, "synthetic_k: 3 does not apply here"),
    ({"update_alpha": 0.1}, "update_alpha: 0.1 does not apply here"),
    ({"architecture": [784, 10]}, None),
    ({"algorithm": "rbp", "channel": {"adapt_rate": 0.2}}, "adapt_rate applies only to adaptive channels"),
    ({"algorithm": "top", "channel": {"derivative": "none"}}, "do not apply to 'top'"),
    ({"frozen": [1, 2, 3, 4, 5]}, "nothing would learn"),
    ({"device": "cuda:0"}, "device: 'cuda:0' is not accepted"),
    ({"nonsense": 1}, "unknown config key(s) ['nonsense']"),
])
def test_train_config_refuses_with_the_field_name(fields, needle):
    if needle is None:
        TrainConfig.from_dict(fields)  # a valid one, for contrast
        return
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(fields)
    assert needle in str(err.value)


def test_config_keys_are_stable():
    # Results stores and run folders are found by these keys: a refactor must not move them.
    assert TrainConfig().key() == "4b56641e7ed3b966"
    assert TrainConfig(dataset="synthetic").key() == "5c46900fb3960d26"
    assert TrainConfig(algorithm="rbp", channel={"feedback": {"distribution": "sparse", "n": 2}},
                       epochs=5).key() == "f87df644188ca691"


def test_help_states_every_default(capsys):
    from lchannel.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for command in ("train", "compare"):
        p = sub.choices[command]
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert "(default: " in (action.help or ""), (command, action.option_strings)
