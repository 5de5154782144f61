"""Data sets: a registry of entries (MNIST from verified IDX files, CIFAR-10 from its verified
binary files, the synthetic f_k sets of paper 2), each knowing its loader, shapes, size,
checksums and download path.  Image data sets also know their image shape (C, H, W), which
conv architectures and the image options (per-channel normalisation, the training
augmentation of paper 1, section 4.3: :mod:`lchannel.data.augment`) read.

Adding a data set (HIGGS, ...) is one :class:`DatasetEntry` in :data:`REGISTRY`;
the configuration, the CLI and the validation read everything they need from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .augment import RandomTranslateFlip, channel_statistics, normalize_channels
from .base import Dataset, one_hot
from .cifar10 import FILES as CIFAR10_FILES
from .cifar10 import URL as CIFAR10_URL
from .cifar10 import as_images, load_cifar10, verify_cifar10
from .datadir import ENV_VAR, resolve_data_dir
from .higgs import N_FEATURES as HIGGS_FEATURES
from .higgs import URL as HIGGS_URL
from .higgs import load_higgs, load_higgs16k, verify_higgs, verify_subset
from .mnist import FILES as MNIST_FILES
from .mnist import MIRRORS as MNIST_MIRRORS
from .mnist import DataError, load_mnist, verify_mnist
from .synthetic import FkStream, f_k, grid, make_synthetic


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


def _load_mnist(data_dir, options: dict, seed: int):
    return load_mnist(data_dir)


def _load_cifar10(data_dir, options: dict, seed: int):
    return load_cifar10(data_dir)


def _load_synthetic(data_dir, options: dict, seed: int):
    return make_synthetic(k=options["synthetic_k"], n_train=options["n_train"], n_test=options["n_test"],
                          seed=seed)


def _load_higgs(data_dir, options: dict, seed: int):
    return load_higgs(data_dir, options["higgs_features"], options["standardize"])


def _load_higgs16k(data_dir, options: dict, seed: int):
    return load_higgs16k(data_dir, options["higgs_features"], options["standardize"])


GRID = 256  # resolution of the stored f_k predictions (Figure 12's heat maps)


def _fk_snapshot(net) -> dict:
    """The predicted probability over a 256 x 256 grid of [-1, 1]^2, (E, 256, 256)."""
    with torch.no_grad():
        O = net.forward(grid(GRID, net.dtype).to(net.device)).output  # (E, R², 1)
    return {"grid_probability": O[..., 0].reshape(net.E, GRID, GRID).float().cpu()}


def _higgs_inputs(options: dict) -> int:
    return HIGGS_FEATURES[options.get("higgs_features", "low")]


# Paper 2, section 4.3: 21 low-level inputs, eight hidden layers of 300 tanh, one logistic unit.
HIGGS_ARCHITECTURE = (21, *[300] * 8, 1)
# TrainConfig fields only image data sets take (per-channel normalisation, augmentation).
IMAGE_OPTIONS = ("normalize", "augment")
# Paper 1, section 4.3: 3 x (conv 64 channels 5x5 stride 1 tanh, max-pool 3x3 stride 2),
# dense 1024 tanh, softmax 10.
CIFAR10_ARCHITECTURE = "conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10"

REGISTRY: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(
        name="mnist", description="MNIST digits, 60,000 train / 10,000 test, 28x28 in [0, 1]",
        n_inputs=784, n_outputs=10, architecture=(784, 100, 100, 100, 100, 10), output="softmax",  # paper 1 sec. 4.1
        load=_load_mnist, train_size=lambda o: 60000, files=dict(MNIST_FILES),
        source=" or ".join(MNIST_MIRRORS), verify=verify_mnist, input_shape=(1, 28, 28),
        options=IMAGE_OPTIONS),
    "cifar10": DatasetEntry(
        name="cifar10", description="CIFAR-10 images, 50,000 train / 10,000 test, 3x32x32 in [0, 1] as rows of "
                                    "3,072 (C, H, W order); default architecture paper 1's conv net (section 4.3)",
        n_inputs=3072, n_outputs=10, architecture=CIFAR10_ARCHITECTURE, output="softmax",
        load=_load_cifar10, train_size=lambda o: 50000, files=dict(CIFAR10_FILES), source=CIFAR10_URL,
        verify=verify_cifar10, input_shape=(3, 32, 32), options=IMAGE_OPTIONS),
    "synthetic": DatasetEntry(
        name="synthetic", description="paper 2's f_k = g ∘ t^k on [-1, 1]^2 (section 4.2), generated from a seed",
        n_inputs=2, n_outputs=1, architecture=(2, 50, 50, 1), output="logistic",
        load=_load_synthetic, train_size=lambda o: int(o["n_train"]),
        options=("synthetic_k", "n_train", "n_test"), source="generated (no files)",
        stream=lambda o: FkStream(o["synthetic_k"]), snapshot=_fk_snapshot),
    "higgs": DatasetEntry(
        name="higgs", description="UCI HIGGS, paper 2's split: train rows 0..9,999,999, test rows "
                                  "10,500,000..10,599,999 (the first 100,000 official test rows); features "
                                  "low (21), high (7) or all (28)",
        n_inputs=21, n_outputs=1, architecture=HIGGS_ARCHITECTURE, output="logistic", load=_load_higgs,
        train_size=lambda o: 10_000_000, options=("higgs_features", "standardize"),
        source=HIGGS_URL, verify=verify_higgs, inputs_for=_higgs_inputs, report_metrics=("test_auc",)),
    "higgs16k": DatasetEntry(
        name="higgs16k", description="the shipped 15,977-row HIGGS subset (higgs/higgs-16k.csv): train its first "
                                     "12,977 rows, test its last 3,000; features as higgs",
        n_inputs=21, n_outputs=1, architecture=HIGGS_ARCHITECTURE, output="logistic", load=_load_higgs16k,
        train_size=lambda o: 12_977, options=("higgs_features", "standardize"),
        files={"higgs-16k.csv": "8e2d16936a9c4e1159811c72da139efa429c2d140212def15c98dc6d7976dbea"},
        source="shipped with the project (shared/datasets/higgs/)", verify=verify_subset, inputs_for=_higgs_inputs,
        report_metrics=("test_auc",)),
}

DATASETS = tuple(REGISTRY)


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name``; a ValueError lists the accepted names."""
    if name not in REGISTRY:
        raise ValueError(f"dataset: {name!r} is not accepted; expected one of {list(DATASETS)}")
    return REGISTRY[name]


def load_dataset(name: str, data_dir=None, k: int = 1, n_train: int = 4000, n_test: int = 1000,
                 seed: int = 0, features: str = "low", standardize: bool = False,
                 normalize: bool = False) -> tuple[Dataset, Dataset]:
    """(train, test) for ``name`` (see :data:`REGISTRY`).  ``features``/``standardize``:
    HIGGS's feature set and standardisation.  ``normalize``: per-channel
    ``(x − mean_c) / std_c`` of an image data set with the statistics of its whole training
    split (the same for a ``subset`` of it), applied to both splits."""
    entry = dataset_entry(name)
    if normalize and entry.input_shape is None:
        raise ValueError(f"normalize: data set {name!r} is not an image data set; only "
                         f"{[n for n, e in REGISTRY.items() if e.input_shape]} take it")
    train, test = entry.load(data_dir, {"synthetic_k": k, "n_train": n_train, "n_test": n_test,
                                        "higgs_features": features, "standardize": standardize}, seed)
    if normalize:
        mean, std = channel_statistics(train.X, entry.input_shape)
        train = Dataset(normalize_channels(train.X, entry.input_shape, mean, std), train.T, train.labels, train.name)
        test = Dataset(normalize_channels(test.X, entry.input_shape, mean, std), test.T, test.labels, test.name)
    return train, test


__all__ = ["CIFAR10_ARCHITECTURE", "IMAGE_OPTIONS", "RandomTranslateFlip", "channel_statistics", "normalize_channels",
           "DATASETS", "load_higgs", "load_higgs16k", "as_images", "load_cifar10", "DataError", "Dataset",
           "DatasetEntry", "ENV_VAR", "REGISTRY", "dataset_entry", "f_k",
           "load_dataset", "load_mnist", "make_synthetic", "one_hot", "resolve_data_dir"]
