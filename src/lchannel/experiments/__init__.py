"""Experiments: declarative specs for the experimental results of both papers (paper 1
on MNIST and CIFAR-10, paper 2 on MNIST, f_k and HIGGS), a resumable sweep runner that
packs seeds into populations, an SQLite results store, and reports.

    from lchannel.experiments import load_spec, run_sweep, write_report
    spec = load_spec("figure9")                     # shipped, or a path to a .toml
    run_sweep(spec, "results/lchannel.db", overrides=Overrides(epochs=1, seeds=(0,)))
    write_report(spec, "results/lchannel.db", "results/figure9")

See docs/experiments.md for the spec format, the store's schema and resume semantics.
"""

from .report import write_report
from .results import CellResult, collect
from .planning import Population, pack
from .runner import DEFAULT_DB, run_sweep
from .worker import train_population
from .spec import Cell, Overrides, Spec, SpecError, load_spec, parse_spec, shipped_specs
from .store import ResultsStore

__all__ = [
    "DEFAULT_DB",
    "Cell",
    "CellResult",
    "Overrides",
    "Population",
    "ResultsStore",
    "Spec",
    "SpecError",
    "collect",
    "load_spec",
    "pack",
    "parse_spec",
    "run_sweep",
    "shipped_specs",
    "train_population",
    "write_report",
]
