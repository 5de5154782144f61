"""Adding an algorithm is one file (issue 28): a module outside the package registers it,
and the CLI, a spec (run and report, with its plot) and the registry's views take it."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from lchannel import plugins
from lchannel.channels import REGISTRY, build_channel, label, resolve

PLUGIN = '''
"""One file: SRBP whose feedback arrives at half strength, registered under a name."""
from lchannel.channels import Algorithm, SkippedRandomBackprop, register
from lchannel.channels.routes import Route


class Scaled(Route):
    def __init__(self, inner, factor):
        self.inner, self.factor = inner, factor

    def send(self, G):
        return self.inner.send(G) * self.factor


class HalfSRBP(SkippedRandomBackprop):
    name = "{name}"

    def route(self, h, k):
        return Scaled(super().route(h, k), 0.5)


register(Algorithm("{name}", HalfSRBP, "Half SRBP", summary="SRBP at half strength", source="docs/extending.md",
                   converter_refusal="a plugin of the explicit engine only"))
'''

SPEC = '''
name = "plugin-spec"
description = "BP against a plugin's algorithm"
plugins = ["{module}"]

[base]
dataset = "synthetic"
n_train = 60
n_test = 20
architecture = [2, 6, 1]
epochs = 2
seeds = [0]
batch_size = 10

[[axes]]
name = "algorithm"
levels = [
  {{ label = "BP", set = {{ algorithm = "bp" }} }},
  {{ label = "Half SRBP", set = {{ algorithm = "{name}" }} }},
]

[report]
layout = "curves"
lines = "algorithm"
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """Two plugin modules on the path (one found through LCHANNEL_PLUGINS, one through a
    spec), removed from every registry afterwards."""
    for module, name in (("half_srbp_env", "half-srbp-env"), ("half_srbp_spec", "half-srbp-spec")):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(PLUGIN.format(name=name)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv(plugins.ENV, "half_srbp_env")
    yield tmp_path
    for module, name in (("half_srbp_env", "half-srbp-env"), ("half_srbp_spec", "half-srbp-spec")):
        REGISTRY.pop(name, None)
        plugins._loaded.discard(module)
        sys.modules.pop(module, None)


def test_a_plugin_named_in_the_environment_is_found_when_its_name_is_first_used(plugin_dir, tmp_path, capsys):
    from lchannel.cli import main

    assert "half-srbp-env" not in REGISTRY
    assert resolve("half-srbp-env-nof")[0].label == "Half SRBP"  # imported here, on first use
    assert label("half-srbp-env-nof") == "Half SRBP (no f')"
    build_channel("half-srbp-env", feedback="uniform")
    assert main(["train", "--algorithm", "half-srbp-env", "--dataset", "synthetic", "--n-train", "60",
                 "--n-test", "20", "--arch", "2,6,1", "--epochs", "1", "--batch-size", "10",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["algorithms", "--name", "half-srbp-env"]) == 0
    assert "converter: no: a plugin of the explicit engine only" in capsys.readouterr().out


def test_a_plugin_named_in_a_spec_runs_and_is_plotted(plugin_dir, tmp_path, capsys):
    from lchannel.cli import main

    spec = tmp_path / "plugin-spec.toml"
    spec.write_text(SPEC.format(module="half_srbp_spec", name="half-srbp-spec"))
    db, out = tmp_path / "r.db", tmp_path / "report"
    assert main(["run", str(spec), "--db", str(db), "--workers", "1", "--quiet"]) == 0
    assert main(["report", str(spec), "--db", str(db), "--out", str(out)]) == 0
    assert "Half SRBP" in (out / "report.md").read_text()
    assert any(p.suffix == ".png" for p in out.iterdir())
    assert "half_srbp_spec" in os.environ[plugins.ENV]  # a sweep's worker processes import it too


def test_a_plugin_that_cannot_be_imported_is_named():
    with pytest.raises(ValueError, match="cannot import plugin module 'no_such_plugin_module'"):
        plugins.load(["no_such_plugin_module"])
    from lchannel.experiments import SpecError, parse_spec

    with pytest.raises(SpecError, match="plugins: cannot import plugin module 'nope_plugin'"):
        parse_spec({"name": "x", "description": "d", "plugins": ["nope_plugin"], "base": {}})
    with pytest.raises(SpecError, match="plugins.*a list of module names"):
        parse_spec({"name": "x", "description": "d", "plugins": "mine", "base": {}})


def test_register_refuses_a_taken_name():
    from lchannel.channels import Algorithm, RandomBackprop, register

    with pytest.raises(ValueError, match=r"\['fa', 'rbp'\] already registered"):
        register(Algorithm("rbp", RandomBackprop, "RBP", aliases=("fa",)))
    with pytest.raises(ValueError, match="no engine class; say why"):
        register(Algorithm("nothing", None, "Nothing"))


DATASET_PLUGIN = '''
"""One file: a data set (two Gaussian blobs in the plane), registered under a name."""
import torch

from lchannel.data import Dataset, DatasetEntry, one_hot, register_dataset


def _split(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    X = torch.randn(n, 2, generator=g) * 0.5 + (labels[:, None] * 2.0 - 1.0)
    return Dataset(X, one_hot(labels, 2), labels, "{name}")


def load(data_dir, options, seed):
    return _split(80, seed), _split(40, seed + 1)


register_dataset(DatasetEntry(name="{name}", description="two Gaussian blobs", n_inputs=2, n_outputs=2,
                              architecture=(2, 8, 2), output="softmax", load=load, train_size=lambda o: 80,
                              source="generated (no files)"))
'''


@pytest.fixture
def dataset_plugin(tmp_path, monkeypatch):
    """A data-set plugin module on the path, found through LCHANNEL_PLUGINS."""
    from lchannel.data import REGISTRY as DATASETS

    (tmp_path / "blobs_plugin.py").write_text(textwrap.dedent(DATASET_PLUGIN.format(name="blobs")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv(plugins.ENV, "blobs_plugin")
    yield tmp_path
    DATASETS.pop("blobs", None)
    plugins._loaded.discard("blobs_plugin")
    sys.modules.pop("blobs_plugin", None)


def test_a_data_set_is_one_file_a_plugin_trains_from_the_cli_and_a_spec(dataset_plugin, tmp_path, capsys):
    """Adding a data set is one file (issue 28): its module registers a DatasetEntry; the
    CLI's --dataset, the config's validation and a spec's sweep (worker processes
    included) take the name."""
    from lchannel.cli import main
    from lchannel.data import REGISTRY as DATASETS
    from lchannel.data import load_dataset

    DATASETS.pop("blobs", None)  # as if never loaded in this process, whatever ran before
    plugins._loaded.discard("blobs_plugin")
    sys.modules.pop("blobs_plugin", None)
    train, test = load_dataset("blobs")  # imported here, on first use of the name
    assert (len(train), len(test), train.n_inputs) == (80, 40, 2)
    assert main(["train", "--algorithm", "srbp", "--dataset", "blobs", "--epochs", "2", "--batch-size", "10",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    spec = tmp_path / "blobs-spec.toml"
    spec.write_text(SPEC.format(module="blobs_plugin", name="srbp").replace('"synthetic"', '"blobs"')
                    .replace("n_train = 60\nn_test = 20\narchitecture = [2, 6, 1]\n", "")
                    .replace("Half SRBP", "SRBP"))
    db, out = tmp_path / "r.db", tmp_path / "report"
    assert main(["run", str(spec), "--db", str(db), "--workers", "1", "--quiet"]) == 0
    assert main(["report", str(spec), "--db", str(db), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "blobs" in report and "SRBP" in report


def test_an_unknown_data_set_lists_the_names_and_a_taken_one_is_refused():
    from lchannel.data import DatasetEntry, REGISTRY as DATASETS, dataset_entry, register_dataset
    from lchannel.run.config import TrainConfig

    with pytest.raises(ValueError, match=r"dataset: 'nope' is not accepted; expected one of \['mnist', 'cifar10'"):
        dataset_entry("nope")
    with pytest.raises(ValueError, match=r"dataset.*one of \['mnist', 'cifar10', 'synthetic', 'higgs', 'higgs16k'"):
        TrainConfig.from_dict({"dataset": "nope"})
    with pytest.raises(ValueError, match="'mnist' is already registered; pass replace=True"):
        register_dataset(DATASETS["mnist"])
    with pytest.raises(ValueError, match="a DatasetEntry is needed"):
        register_dataset({"name": "x"})
    assert isinstance(DATASETS["mnist"], DatasetEntry)
