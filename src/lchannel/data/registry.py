"""The registry of data sets: one :class:`DatasetEntry` per name, registered by the module
that loads the set (``mnist.py``, ``cifar10.py``, ``synthetic.py``, ``higgs.py``), or by a
plugin module outside the package (:mod:`lchannel.plugins`, docs/extending.md "A data
set"): adding a data set is one file.  The configuration, the CLI, the specs and the
validation read everything they need from the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import plugins
from .base import Dataset

# TrainConfig fields only image data sets take (per-channel normalisation, augmentation).
IMAGE_OPTIONS = ("normalize", "augment")


@dataclass(frozen=True)
class DatasetEntry:
    """One data set.

    ``options``: the TrainConfig fields only this data set takes (e.g. ``synthetic_k``);
    giving one for another data set is an error.  ``train_size(options)``: the number of
    training examples, known before loading (for validating batch size and subset).
    ``load(data_dir, options, seed)`` returns (train, test).  ``files``: file name ->
    sha256 of the decompressed bytes (empty for generated sets); ``source``: where the
    files come from (the download path), or how the set is generated; ``verify``: see below.
    """

    name: str
    description: str
    n_inputs: int
    n_outputs: int
    architecture: tuple[int, ...] | str  # layer sizes, or a conv architecture string (lchannel.engine.nets)
    output: str
    load: Callable[..., tuple[Dataset, Dataset]]
    train_size: Callable[[dict], int]
    options: tuple[str, ...] = ()
    files: dict | None = None
    source: str = ""
    # verify(data_dir): check the files without keeping them (DataError naming the bad
    # one), so that a sweep fails once, before its workers start; None: nothing to check.
    verify: Callable[..., None] | None = None
    # inputs(options): the number of inputs when the options choose it (HIGGS feature
    # sets); None: always n_inputs.
    inputs_for: Callable[[dict], int] | None = None
    # stream(options): fresh minibatches for iteration-based training (the f_k points);
    # None: the training set is sampled with replacement (lchannel.engine.iterations).
    stream: Callable[[dict], object] | None = None
    # snapshot(net): arrays to keep of a trained population, each (E, ...) (the f_k
    # predictions over the square, for Figure 12); None: nothing.
    snapshot: Callable[..., dict] | None = None
    # Per-epoch metrics beyond accuracy that reports plot for this data set (HIGGS: the
    # ROC AUC its literature reports); they are recorded for every one-logistic-output run.
    report_metrics: tuple[str, ...] = ()
    input_shape: tuple[int, int, int] | None = None  # (C, H, W) of an image data set

    def inputs(self, options: dict) -> int:
        """The number of inputs this data set gives with ``options``."""
        return self.inputs_for(options) if self.inputs_for is not None else self.n_inputs

    def default_architecture(self, options: dict) -> tuple[int, ...]:
        """The default architecture: layer sizes with the first fitted to :meth:`inputs`, or
        a conv architecture string as it is."""
        if isinstance(self.architecture, str):
            return self.architecture
        return (self.inputs(options), *self.architecture[1:])


REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry, replace: bool = False) -> DatasetEntry:
    """Add ``entry`` to :data:`REGISTRY` under ``entry.name``; returns it.  A name already
    taken is refused unless ``replace``."""
    if not isinstance(entry, DatasetEntry):
        raise ValueError(f"register_dataset: a DatasetEntry is needed, got {type(entry).__name__}")
    if not isinstance(entry.name, str) or not entry.name or entry.name != entry.name.strip():
        raise ValueError(f"register_dataset: name must be a non-empty string without surrounding spaces, "
                         f"got {entry.name!r}")
    if entry.name in REGISTRY and not replace:
        raise ValueError(f"register_dataset: {entry.name!r} is already registered; pass replace=True to replace it")
    REGISTRY[entry.name] = entry
    return entry


def is_dataset_name(name) -> bool:
    """Whether ``name`` is a registered data set (importing the plugins not imported yet
    the first time a name is not found)."""
    if not isinstance(name, str):
        return False
    if name not in REGISTRY:
        plugins.load_plugins()
    return name in REGISTRY


def dataset_names() -> list[str]:
    return list(REGISTRY)


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name``; a ValueError lists the accepted names."""
    if not is_dataset_name(name):
        raise ValueError(f"dataset: {name!r} is not accepted; expected one of {dataset_names()}")
    return REGISTRY[name]
