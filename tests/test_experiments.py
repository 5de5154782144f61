"""Experiment specs: schema validation with precise messages, the shipped paper-1 specs, CLI."""

import sqlite3
import textwrap

import pytest

from lchannel.cli import main
from lchannel.experiments import Overrides, SpecError, load_spec, parse_spec, shipped_specs
from lchannel.engine.quantize import DEFAULT_READING, Reading

BASE = dict(dataset="synthetic", synthetic_k=0, n_train=200, n_test=100, architecture=[2, 8, 1], epochs=2,
            seeds=[0, 1], lr=0.5, batch_size=10)


def spec(**extra):
    d = {"name": "t", "description": "a test", "base": dict(BASE)}
    d.update(extra)
    return d


AXES = [{"name": "algorithm", "levels": [{"label": "BP", "set": {"algorithm": "bp"}},
                                         {"label": "RBP", "set": {"algorithm": "rbp"}}]}]


@pytest.mark.parametrize("data,needle", [
    (spec(axis=[]), "spec 't': top level: unknown key 'axis'; accepted keys: ['name', 'description'"),
    ({"name": "t", "base": dict(BASE)}, "description: None is not accepted; expected a non-empty string"),
    (spec(base={**BASE, "learning_rate": 0.1}), "spec 't': base: unknown key 'learning_rate'; accepted keys: ['dataset'"),
    (spec(base={**BASE, "device": "cuda"}), "base: unknown key 'device' (data_dir and device are runner options"),
    (spec(base={**BASE, "lr": -1}), "spec 't': base: lr: -1 is not accepted; expected a number > 0"),
    (spec(base={**BASE, "hidden": "swish"}), "base: hidden: 'swish' is not accepted; expected one of"),
    (spec(axes=[{"name": "algorithm", "levels": [{"label": "BP", "sett": {}}]}]),
     "axes[0] ('algorithm').levels[0]: unknown key 'sett'; accepted keys: ['label', 'value', 'set', 'only']"),
    (spec(axes=[{"name": "algorithm", "levels": [{"label": "X", "set": {"algorithm": "xbp"}}]}]),
     "cell {algorithm='X'}: algorithm: 'xbp' is not accepted; expected one of ['bp', 'sbp'"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"seeds": [1]}}]}]),
     "axes[0] ('a').levels[0].set: unknown key 'seeds' (seeds belong in [base]"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"batch_size": 0}}]}]),
     "axes ('a').levels[0] ('X').set: batch_size: 0 is not accepted; expected an integer >= 1"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"channel": {"qbits": 3}}}]}]),
     "levels[0].set.channel: unknown option 'qbits'; accepted options: ["),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"algorithm": "rbp", "channel": {"feedback": {"distr": "sign"}}}}]}]),
     "levels[0].set.channel.feedback: unknown key 'distr'; accepted keys: ['distribution', 'mean', 'n'"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"algorithm": "rbp", "channel": {"feedback": {"distribution": "cauchy"}}}}]}]),
     "cell {a='X'}: feedback distribution must be one of ('normal', 'uniform', 'sign', 'sparse'), got 'cauchy'"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"channel": {"feedback": {"distribution": "sign"}}}}]}]),
     "cell {a='X'}: channel option 'feedback' not accepted by algorithm 'bp'; it accepts ['derivative'"),
    (spec(axes=AXES + [{"name": "b", "levels": [{"label": "Y", "only": {"algo": ["BP"]}}]}]),
     "axes ('b').levels[0] ('Y').only: 'algo' is not accepted; expected another axis, one of ['algorithm']"),
    (spec(axes=AXES + [{"name": "b", "levels": [{"label": "Y", "only": {"algorithm": ["SRBP"]}}]}]),
     "only.algorithm: 'SRBP' is not accepted; expected labels of axis 'algorithm', from ['BP', 'RBP']"),
    (spec(axes=AXES, patch=[{"where": {"algorithm": "SBP"}, "set": {"lr": 0.2}}]),
     "patch[0].where.algorithm: 'SBP' is not accepted; expected labels of axis 'algorithm', from ['BP', 'RBP']"),
    (spec(axes=AXES, report={"layout": "grid"}), "report.layout: 'grid' is not accepted; expected one of ['table', 'curves', 'final', 'maps']"),
    (spec(axes=AXES, report={"layout": "final", "x": "algorithm"}),
     "report.x: axis 'algorithm' level 'BP' value: None is not accepted; expected a number"),
    (spec(axes=AXES, report={"rows": ["algo"]}), "report.rows: 'algo' is not accepted; expected axis names, from ['algorithm']"),
    (spec(alignment={"probe": 0}), "alignment.probe: 0 is not accepted; expected an integer >= 1"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X"}, {"label": "X"}]}]),
     "levels[1].label: 'X' is not accepted; expected a label not used by another level of this axis"),
    # issue 9: a careless spec is refused before any work
    (spec(base={**BASE, "epochs": 0}), "spec 't': base: epochs: 0 is not accepted; expected an integer >= 1"),
    (spec(axes=[{"name": "a", "levels": [{"label": "X", "set": {"epochs": 0}}]}]),
     "levels[0] ('X').set: epochs: 0 is not accepted; expected an integer >= 1"),
    ({"name": "t", "description": "no base"}, "spec 't': base: None is not accepted; expected a [base] table"),
    (spec(base={k: v for k, v in BASE.items() if k != "epochs"}),
     "spec 't': base: epochs missing; [base] must set dataset, epochs explicitly"),
    (spec(base={**BASE, "seeds": [2 ** 63]}),
     "base: seeds: [9223372036854775808] is not accepted; expected a non-empty list of distinct integers, each in [0, 2^63 - 1]"),
    (spec(base={**BASE, "seeds": [-1]}), "base: seeds: [-1] is not accepted; expected a non-empty list of distinct integers, each in [0, 2^63 - 1]"),
    (spec(base={**BASE, "architecture": [2, 8, 8, 1], "algorithm": "mixed", "channel": {"topology": {"a": [3]}}}),
     "spec 't': base.channel.topology: 'a' is not accepted; expected hidden-layer numbers as keys"),
    (spec(base={**BASE, "architecture": [2, 8, 8, 1], "algorithm": "mixed", "channel": {"topology": {"1": ["x"]}}}),
     "base.channel.topology.1: ['x'] is not accepted; expected a list of layer numbers"),
])
def test_spec_validation_names_the_bad_key_and_the_accepted_values(data, needle):
    with pytest.raises(SpecError) as err:
        parse_spec(data, default_name="t")
    assert needle in str(err.value)


def test_spec_grid_only_and_patches(tmp_path):
    text = textwrap.dedent("""
        name = "grid"
        description = "grid test"
        [base]
        dataset = "synthetic"
        architecture = [2, 8, 1]
        epochs = 2
        seeds = [0, 1, 2]
        [base.channel]
        [[axes]]
        name = "algorithm"
        levels = [ { label = "BP", set = { algorithm = "bp" } }, { label = "RBP", set = { algorithm = "rbp" } } ]
        [[axes]]
        name = "variant"
        levels = [
          { label = "plain" },
          { label = "sparse", set = { channel = { feedback = { distribution = "sparse", n = 2 } } }, only = { algorithm = ["RBP"] } },
          { label = "drop", set = { channel = { lc_dropout = 0.2 } } },
        ]
        [[patch]]
        where = { algorithm = "RBP", variant = ["sparse", "drop"] }
        set = { lr = 0.05, channel = { derivative = "none" } }
    """)
    p = tmp_path / "grid.toml"
    p.write_text(text)
    s = load_spec(p)
    cells = s.cells()
    assert [c.title for c in cells] == ["BP / plain", "BP / drop", "RBP / plain", "RBP / sparse", "RBP / drop"]
    by = {c.title: c.config for c in cells}
    assert by["RBP / sparse"].channel == {"feedback": {"distribution": "sparse", "n": 2}, "derivative": "none"}
    assert by["RBP / sparse"].lr == 0.05 and by["RBP / plain"].lr == 0.1 and by["BP / drop"].lr == 0.1
    assert by["BP / drop"].channel == {"lc_dropout": 0.2}
    assert len({c.key for c in cells}) == 5 and s.n_runs() == 15
    # overrides change the config (and so the hash) and are recorded; --seeds only picks seeds
    short = s.cells(Overrides(epochs=1, seeds=(0,), subset=50))
    assert short[0].overrides == {"epochs": 1, "subset": 50, "seeds": [0]} and short[0].shortened
    assert short[0].key != cells[0].key and short[0].config.seeds == [0]
    assert s.cells(Overrides(seeds=(0, 2)))[0].key == cells[0].key
    assert [c.title for c in s.cells(where={"variant": ["sparse", "drop"]})] == ["BP / drop", "RBP / sparse", "RBP / drop"]
    with pytest.raises(SpecError, match="--where: axis 'algo' is not accepted"):
        s.cells(where={"algo": "BP"})
    with pytest.raises(SpecError, match="--epochs: 0 is not accepted"):
        s.cells(Overrides(epochs=0))


def test_dataset_override_is_a_recorded_reduced_protocol():
    """--dataset higgs16k runs the HIGGS figures on the shipped subset: another config
    hash, recorded and marked shortened; a name outside the registry or a data set the
    architecture does not fit is refused before any work."""
    spec = load_spec("p2-figure13")
    full, sub = spec.cells()[0], spec.cells(Overrides(dataset="higgs16k"))[0]
    assert full.config.dataset == "higgs" and sub.config.dataset == "higgs16k"
    assert sub.overrides == {"dataset": "higgs16k"} and sub.shortened and not full.shortened
    assert sub.key != full.key and sub.config.replace(dataset="higgs").key() == full.key
    assert Overrides(dataset="higgs16k").to_dict() == {"dataset": "higgs16k"}
    with pytest.raises(SpecError, match=r"--dataset: 'higs' is not accepted; expected one of \['cifar10'"):
        spec.cells(Overrides(dataset="higs"))
    with pytest.raises(SpecError, match="do not fit cell .*mnist needs 784 inputs"):
        spec.cells(Overrides(dataset="mnist"))


def test_yaml_specs_are_read_too(tmp_path):
    pytest.importorskip("yaml")
    p = tmp_path / "y.yaml"
    p.write_text("description: yaml spec\nbase: {dataset: synthetic, architecture: [2, 4, 1], epochs: 1}\n"
                 "axes:\n  - name: algorithm\n    levels:\n      - {label: BP, set: {algorithm: bp}}\n")
    s = load_spec(p)
    assert s.name == "y" and [c.title for c in s.cells()] == ["BP"]
    p.write_text("description: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(p)


def test_bad_toml_and_missing_spec_are_named(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("name = \n")
    with pytest.raises(SpecError, match="bad.toml: not valid TOML"):
        load_spec(p)
    with pytest.raises(SpecError, match="neither a shipped spec nor a file; shipped specs: \\['figure1'"):
        load_spec("table9")


# -- the shipped specs: paper 1's MNIST protocol ---------------------------------------
PAPER = dict(dataset="mnist", sizes=[784, 100, 100, 100, 100, 10], hidden="tanh", output_pair="softmax",
             init="glorot_normal", lr=0.1, batch_size=100, momentum=0.0, epochs=100, seeds=[0, 1, 2, 3, 4])


# What a caption changes in the protocol: paper 2's Figure 10 network is linear; the
# comparison of section 5.2's readings (issue 30) runs 2 seeds of each of its 48 cells.
CAPTIONS = {("p2-figure10", "hidden"): "identity", ("quantized-readings", "seeds"): [0, 1]}


def test_every_paper1_mnist_result_is_shipped_with_the_section_4_1_protocol():
    names = set(shipped_specs())
    assert {"table1", "figure1", "figure2", "figure3", "figure4", "figure7", "figure8", "figure9"} <= names
    for name in names:
        cells = load_spec(name).cells()
        if cells[0].config.dataset != "mnist":
            continue  # paper 2's f_k and HIGGS specs have their own protocols (tests/test_higgs_fk.py)
        for c in cells:
            for k, v in PAPER.items():
                assert getattr(c.config, k) == CAPTIONS.get((name, k), v), (name, c.title, k)
            assert c.config.decay == (0.0 if name == "figure8" or c.config.update_bits else 1e-6), (name, c.title)


def test_table1_has_the_papers_rows_columns_and_empty_cells():
    s = load_spec("table1")
    rows = s.axis("variant").labels()
    assert rows == ["Baseline", "No-f'", "Adaptive", "Sparse-8", "Sparse-2", "Sparse-1",
                    "Quantized error 5-bit", "Quantized error 3-bit", "Quantized error 1-bit",
                    "Quantized update 5-bit", "Quantized update 3-bit", "Quantized update 1-bit",
                    "LC Dropout 10%", "LC Dropout 20%", "LC Dropout 50%"]
    cells = {(c.labels["variant"], c.labels["algorithm"]): c.config for c in s.cells()}
    assert len(cells) == 42 and s.n_runs() == 210
    assert ("Baseline", "Top layer only") in cells and ("No-f'", "Top layer only") not in cells
    assert ("Adaptive", "BP") not in cells and ("Sparse-1", "BP") not in cells and ("No-f'", "BP") in cells
    arbp = cells[("Adaptive", "RBP")]
    assert arbp.algorithm == "rbp" and arbp.channel == {"adaptive": True, "adapt_rate": 0.1}  # Figure 2 caption
    assert cells[("Adaptive", "SRBP")].channel == {"adaptive": True}
    assert cells[("Sparse-2", "SRBP")].channel == {"feedback": {"distribution": "sparse", "n": 2}}
    qe = cells[("Quantized error 3-bit", "RBP")]
    assert qe.channel == {"quantize_bits": 3, "quantize_alpha": 2 ** -3} and qe.update_bits is None
    qu = cells[("Quantized update 1-bit", "SRBP")]
    assert (qu.update_bits, qu.update_alpha, qu.decay, qu.channel) == (1, 2 ** -6, 0.0, {})
    # the spec names section 5.2's reading (issue 30), and it is the chosen default
    assert qu.update_reading == DEFAULT_READING == Reading("outside", "zero", "mean")
    assert cells[("LC Dropout 50%", "BP")].channel == {"lc_dropout": 0.5}
    assert cells[("No-f'", "SRBP")].channel == {"derivative": "none"}


def test_figure_specs_share_runs_with_table1_and_follow_their_captions():
    t1 = {c.key for c in load_spec("table1").cells()}
    f1 = {c.labels["algorithm"]: c for c in load_spec("figure1").cells()}
    assert len(f1) == 9 and f1["SBP (no f')"].config.channel == {"derivative": "none"}
    assert f1["BP"].key in t1 and f1["RBP (no f')"].key in t1 and f1["Top layer only"].key in t1
    f2 = {c.labels["algorithm"]: c for c in load_spec("figure2").cells()}
    assert f2["ARBP"].config.channel["adapt_rate"] == 0.1 and f2["ARBP"].key in t1 and f2["ASRBP"].key in t1
    f3 = load_spec("figure3").cells()
    assert len(f3) == 8 and all(c.key in t1 for c in f3)
    f4 = load_spec("figure4")
    ns = [c.config.channel["feedback"]["n"] for c in f4.cells()]
    assert ns[0] == 0 and ns[-1] == 100 and ns == sorted(ns) and {1, 2, 8} <= set(ns)
    assert all(c.config.algorithm == "srbp" for c in f4.cells()) and f4.report.layout == "final"
    f7 = load_spec("figure7").cells()
    assert {c.labels["bits"] for c in f7} >= {"32-bit float", "10 bits", "5 bits", "3 bits", "1 bit"}
    assert sum(c.key in t1 for c in f7) == 3 + 9  # the float baselines and the table's 5/3/1-bit rows
    f8 = load_spec("figure8").cells()
    assert all(c.config.decay == 0.0 for c in f8) and sum(c.key in t1 for c in f8) == 9
    f9 = load_spec("figure9").cells()
    assert {c.labels["dropout"] for c in f9} == {"0%", "10%", "20%", "50%"} and all(c.key in t1 for c in f9)


def test_experiments_list_and_show(capsys):
    assert main(["experiments", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("table1", "figure1", "figure2", "figure3", "figure4", "figure7", "figure8", "figure9"):
        assert f"\n{name} " in out
    assert "210" in out and "100" in out
    assert main(["experiments", "show", "table1", "--where", "variant=Adaptive", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "Adaptive / RBP" in out and "Adaptive / SRBP" in out and "shortened" in out and "Baseline" not in out


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """Files a careless user points options at (tests run as root, where permission bits
    block nothing: an unwritable path here is one under a regular file)."""
    d = tmp_path_factory.mktemp("bad")
    (d / "afile").write_text("x")
    (d / "text.db").write_text("hello\n")
    (d / "adir").mkdir()
    (d / "dir.png").mkdir()
    import sqlite3
    with sqlite3.connect(d / "other.db") as c:
        c.execute("CREATE TABLE notes (x)")
    with sqlite3.connect(d / "v7.db") as c:
        c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        c.execute("INSERT INTO meta VALUES ('schema_version', '7')")
    tiny = d / "tiny.toml"
    tiny.write_text('description = "tiny"\n[base]\ndataset = "synthetic"\narchitecture = [2, 4, 1]\nepochs = 1\n')
    good = d / "good.db"
    assert main(["run", str(tiny), "--db", str(good), "--workers", "1", "--quiet"]) == 0
    return d


# Every message below was a traceback, a silent wrong run or a late failure before issue 9
# unless marked "already clean".
@pytest.mark.parametrize("argv,needle", [
    (["run", "table9"], "spec 'table9' is neither a shipped spec nor a file"),
    (["run", "table1", "--executor", "dask"], "--executor: 'dask' is not accepted; expected one of ['local', 'ray']"),
    (["run", "table1", "--workers", "0"], "--workers: 0 is not accepted"),
    (["run", "table1", "--device", "tpu"], "--device: 'tpu' is not accepted; expected auto, cpu, cuda or cuda:N"),
    (["run", "table1", "--epochs", "0"], "--epochs: 0 is not accepted; expected an integer >= 1"),
    (["run", "table1", "--subset", "-5"], "--subset: -5 is not accepted"),
    (["run", "table1", "--seeds", "1,1"], "--seeds: '1,1' is not accepted; expected distinct integers"),
    (["run", "table1", "--seeds", "a"], "expected comma-separated integers"),
    (["run", "table1", "--where", "variant=Sparse-9"], "--where variant: 'Sparse-9' is not accepted; expected labels"),
    (["run", "table1", "--where", "variant"], "expected AXIS=LABEL"),
    (["report", "table1", "--metric", "f1"], "--metric: 'f1' is not accepted"),
    (["report", "table1", "--db", "/nonexistent/x.db"], "--db: '/nonexistent/x.db' does not exist"),
    # issue 9
    (["run", "{d}/tiny.toml", "--db", "{d}/adir"], "--db: '{d}/adir' is a folder; expected a results database file"),
    (["run", "{d}/tiny.toml", "--db", "{d}/text.db"], "--db: '{d}/text.db' is not an SQLite results database"),
    (["run", "{d}/tiny.toml", "--db", "{d}/other.db"], "is an SQLite database but not an lchannel results store"),
    (["run", "{d}/tiny.toml", "--db", "{d}/v7.db"], "--db: '{d}/v7.db' has results schema version 7"),
    (["run", "{d}/tiny.toml", "--db", "{d}/afile/x.db"],
     "--db: '{d}/afile/x.db' cannot be created: '{d}/afile' is a file, not a folder"),
    (["run", "{d}/tiny.toml", "--db", ""], "--db: an empty path is not accepted"),
    (["run", "{d}/tiny.toml", "--db", "{d}/new.db", "--checkpoints", "{d}/afile/ck"],
     "--checkpoints: '{d}/afile/ck' cannot be created: '{d}/afile' is a file, not a folder"),
    (["run", "{d}/tiny.toml", "--db", "{d}/new.db", "--checkpoints", "{d}/afile"],
     "--checkpoints: '{d}/afile' is a file; expected a folder"),
    (["run", "{d}/adir"], "spec file '{d}/adir' is a folder; expected a .toml or .yaml spec file"),
    (["run", "table1", "--seeds", "9223372036854775808"],
     "--seeds: '9223372036854775808' is not accepted; expected distinct integers in [0, 2^63 - 1]"),
    (["run", "table1", "--epochs", "-2"], "--epochs: -2 is not accepted; expected an integer >= 1"),  # already clean
    (["run", "table1", "--subset", "0"], "--subset: 0 is not accepted; expected an integer >= 1"),  # already clean
    (["run", "table1", "--ray-address", "auto"], "--ray-address: applies only to --executor ray"),
    (["run", "table1", "--lease-ttl", "0"], "--lease-ttl: 0 is not accepted; expected a number of seconds > 0"),
    (["run", "table1", "--lease-ttl", "nan"], "argument --lease-ttl: expected a finite number"),
    (["run", "table1", "--data-dir", ""], "--data-dir: an empty path is not accepted"),
    (["report", "{d}/tiny.toml", "--db", ""], "--db: an empty path is not accepted"),
    (["report", "{d}/tiny.toml", "--db", "{d}/adir"], "--db: '{d}/adir' is a folder"),
    (["report", "{d}/tiny.toml", "--db", "{d}/text.db"], "--db: '{d}/text.db' is not an SQLite results database"),
    (["report", "{d}/tiny.toml", "--db", "{d}/nothere/x.db"], "--db: '{d}/nothere/x.db' does not exist"),
    (["report", "{d}/tiny.toml", "--db", "{d}/good.db", "--out", "{d}/afile"], "--out: '{d}/afile' is a file; expected a folder"),
    (["report", "{d}/tiny.toml", "--db", "{d}/good.db", "--out", "{d}/afile/r"],
     "--out: '{d}/afile/r' cannot be created: '{d}/afile' is a file"),
    (["report", "{d}/tiny.toml", "--db", "{d}/good.db", "--out", ""], "--out: an empty path is not accepted"),
    (["experiments", "show", "table1", "--seeds", "0,18446744073709551616"], "--seeds: '0,18446744073709551616' is not accepted"),
])
def test_cli_options_are_validated_before_any_work(argv, needle, capsys, bad):
    with pytest.raises(SystemExit) as e:
        main([a.replace("{d}", str(bad)) for a in argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle.replace("{d}", str(bad)) in err and "Traceback" not in err


def _copy_mnist(src, dst, flip_in=None):
    (dst / "mnist").mkdir(parents=True)
    for f in sorted((src / "mnist").glob("*.gz")):
        data = bytearray(f.read_bytes())
        if f.name == flip_in:
            data[len(data) // 2] ^= 0xFF
        (dst / "mnist" / f.name).write_bytes(bytes(data))


def test_a_corrupt_data_file_is_one_clean_error_before_the_workers_start(data_dir, tmp_path, capsys):
    """With the 2-worker pool each population used to fail on its own (9 tracebacks, or
    "9 failed" with --quiet): the parent now verifies the files once."""
    _copy_mnist(data_dir, tmp_path / "data", flip_in="t10k-labels-idx1-ubyte.gz")
    db = tmp_path / "r.db"
    with pytest.raises(SystemExit) as e:
        main(["run", "figure9", "--epochs", "1", "--subset", "100", "--seeds", "0", "--workers", "2", "--quiet",
              "--db", str(db), "--data-dir", str(tmp_path / "data")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz is corrupt or unreadable" in err and "Traceback" not in err
    assert err.count("error:") == 1
    with sqlite3.connect(db) as c:  # nothing trained, nothing failed
        assert c.execute("SELECT count(*) FROM runs WHERE status != 'pending'").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM invocations").fetchone()[0] == 0


@pytest.mark.parametrize("argv,needle", [
    (["vector-field", "--out", "{d}/dir.png"], "--out: '{d}/dir.png' is a folder; expected a .png file"),
    (["vector-field", "--out", "{d}/afile/x.png"], "--out: '{d}/afile/x.png' cannot be created: '{d}/afile' is a file"),
    (["trajectory", "--out", "{d}/dir.png"], "--out: '{d}/dir.png' is a folder; expected a .png file"),
    (["trajectory", "--out", "{d}/afile/x.png", "--no-discrete"], "cannot be created: '{d}/afile' is a file"),
    (["vector-field", "--seed", "-1", "--out", "{d}/vf.png"], "--seed: must be an integer >= 0; got -1"),
    (["trajectory", "--seed", "-3", "--out", "{d}/tr.png"], "--seed: must be an integer >= 0; got -3"),
    (["vector-field", "--grid", "1"], "--grid: must be an integer in 2..200"),  # already clean
])
def test_theory_outputs_and_seeds_are_checked_before_integrating(argv, needle, capsys, bad):
    assert main(["theory", *[a.replace("{d}", str(bad)) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert needle.replace("{d}", str(bad)) in err and "Traceback" not in err
    assert not (bad / "vf.png").exists() and not (bad / "tr.png").exists()


def _subparsers(parser):
    """Every (name, parser) reachable from ``parser``."""
    import argparse
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, p in a.choices.items():
                out.append((name, p))
                out.extend((f"{name} {n}", q) for n, q in _subparsers(p))
    return out


def test_help_shows_every_default_of_run_report_experiments_and_theory():
    import argparse

    from lchannel.cli import build_parser
    parsers = dict(_subparsers(build_parser()))
    names = ["run", "report", "experiments", "experiments list", "experiments show", "theory",
             "theory vector-field", "theory trajectory"]
    checked = 0
    for name in names:
        text = " ".join(parsers[name].format_help().split())
        for a in parsers[name]._actions:
            # flags (False), repeatable options ([]) and None defaults explain themselves
            if not a.option_strings or a.default is None or a.default is False or a.default == [] \
                    or a.default == argparse.SUPPRESS:
                continue
            assert f"(default: {a.default})" in text, (name, a.option_strings, a.default)
            checked += 1
    assert checked >= 25
