"""Data sets: MNIST (IDX files, verified), the synthetic f_k sets of paper 2."""

from __future__ import annotations

from .base import Dataset, one_hot
from .datadir import ENV_VAR, resolve_data_dir
from .mnist import DataError, load_mnist
from .synthetic import f_k, make_synthetic

DATASETS = ("mnist", "synthetic")


def load_dataset(name: str, data_dir=None, k: int = 1, n_train: int = 4000, n_test: int = 1000,
                 seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, test) for ``name`` (mnist or synthetic)."""
    if name == "mnist":
        return load_mnist(data_dir)
    if name == "synthetic":
        return make_synthetic(k=k, n_train=n_train, n_test=n_test, seed=seed)
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


__all__ = ["DATASETS", "DataError", "Dataset", "ENV_VAR", "f_k", "load_dataset", "load_mnist",
           "make_synthetic", "one_hot", "resolve_data_dir"]
