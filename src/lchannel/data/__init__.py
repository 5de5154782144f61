"""Data sets: a registry of entries (MNIST from verified IDX files, CIFAR-10 from its verified
binary files, the synthetic f_k sets of paper 2), each knowing its loader, shapes, size,
checksums and download path.  Image data sets also know their image shape (C, H, W), which
conv architectures and the image options (per-channel normalisation, the training
augmentation of paper 1, section 4.3: :mod:`lchannel.data.augment`) read.

Adding a data set is one file: a module that loads it and registers its
:class:`DatasetEntry` (:func:`register_dataset`, :mod:`lchannel.data.registry`), in the
package or outside it as a plugin (docs/extending.md, "A data set").  The entries are
registered in the order of the imports below (mnist, cifar10, synthetic, higgs, higgs16k).
"""

from __future__ import annotations

from .augment import RandomTranslateFlip, channel_statistics, normalize_channels
from .base import Dataset, one_hot
from .datadir import ENV_VAR, resolve_data_dir
from .registry import IMAGE_OPTIONS, REGISTRY, DatasetEntry, dataset_entry, dataset_names, is_dataset_name
from .registry import register_dataset

# The package's own data sets, each module registering its entries when imported, in
# this order (the order names are listed in): mnist, cifar10, synthetic, higgs, higgs16k.
from .mnist import DataError, load_mnist  # noqa: I001 - the order of registration
from .cifar10 import ARCHITECTURE as CIFAR10_ARCHITECTURE
from .cifar10 import as_images, load_cifar10
from .synthetic import f_k, make_synthetic
from .higgs import ARCHITECTURE as HIGGS_ARCHITECTURE
from .higgs import load_higgs, load_higgs16k

# The names registered by the package itself (a plugin's are in REGISTRY once it is loaded).
DATASETS = tuple(REGISTRY)


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
           "DatasetEntry", "ENV_VAR", "HIGGS_ARCHITECTURE", "REGISTRY", "dataset_entry", "dataset_names", "f_k",
           "is_dataset_name", "register_dataset",
           "load_dataset", "load_mnist", "make_synthetic", "one_hot", "resolve_data_dir"]
