"""In-memory data sets: inputs, targets for ``T − O``, and class labels for accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Dataset:
    """``X``: (N, N_0) float inputs; ``T``: (N, N_L) float targets (one-hot for classes);
    ``labels``: (N,) class indices used for accuracy, or None for pure regression."""

    X: torch.Tensor
    T: torch.Tensor
    labels: torch.Tensor | None
    name: str = ""

    def __post_init__(self):
        if self.X.shape[0] != self.T.shape[0]:
            raise ValueError(f"{self.name}: X has {self.X.shape[0]} rows but T has {self.T.shape[0]}")
        if self.labels is not None and self.labels.shape[0] != self.X.shape[0]:
            raise ValueError(f"{self.name}: labels have {self.labels.shape[0]} rows, X has {self.X.shape[0]}")

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.X.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.T.shape[1]

    def subset(self, n: int) -> "Dataset":
        """The first ``n`` examples (for quick looks; recorded by the caller)."""
        if not 1 <= n:
            raise ValueError(f"subset must be >= 1, got {n}")
        n = min(n, len(self))
        return Dataset(self.X[:n], self.T[:n], None if self.labels is None else self.labels[:n], self.name)

    def to(self, device) -> "Dataset":
        return Dataset(self.X.to(device), self.T.to(device),
                       None if self.labels is None else self.labels.to(device), self.name)


def one_hot(labels: torch.Tensor, classes: int, dtype=torch.float32) -> torch.Tensor:
    T = torch.zeros(labels.shape[0], classes, dtype=dtype)
    T[torch.arange(labels.shape[0]), labels] = 1.0
    return T
