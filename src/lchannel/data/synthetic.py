"""The synthetic data sets of paper 2, section 4.2 (after Bianchini et al.).

f_k = g ∘ t^k on the plane, with g(x) = sign(1 − ||x||²) and
t(x) = [1 − 2x_1², 1 − 2x_2²]; t^0 is the identity.  The number of holes of the
positive region grows like 4^k, so k sets the difficulty.  Points are drawn uniformly
on [−1, 1]² from a seed: no files needed.  Targets are 1 where f_k > 0, else 0 (one
logistic output unit).
"""

from __future__ import annotations

import torch

from .base import Dataset
from .registry import DatasetEntry, register_dataset


def f_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """f_k(x) ∈ {−1, 0, 1} for points x of shape (N, 2)."""
    if int(k) != k or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    for _ in range(int(k)):
        x = 1.0 - 2.0 * x * x
    return torch.sign(1.0 - (x * x).sum(1))


def make_synthetic(k: int = 1, n_train: int = 4000, n_test: int = 1000, seed: int = 0,
                   dtype=torch.float32) -> tuple[Dataset, Dataset]:
    """(train, test) samples of f_k on [−1, 1]², drawn from ``seed``."""
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    g = torch.Generator().manual_seed(int(seed))

    def sample(n: int, split: str) -> Dataset:
        x = torch.rand((n, 2), generator=g, dtype=torch.float64) * 2 - 1
        y = (f_k(x, k) > 0).long()
        return Dataset(x.to(dtype), y.to(dtype).unsqueeze(1), y, f"synthetic-k{k}-{split}")

    return sample(n_train, "train"), sample(n_test, "test")


class FkStream:
    """Fresh f_k examples for every minibatch (paper 2, sec. 4.2: "mini-batches of 100
    random examples"): points uniform on [−1, 1]², drawn from the trainer's generator."""

    def __init__(self, k: int, dtype=torch.float32):
        f_k(torch.zeros(1, 2), k)  # validates k
        self.k, self.dtype = int(k), dtype

    def batch(self, size: int, generator: torch.Generator):
        """(X (B, 2), T (B, 1), labels (B,))."""
        x = torch.rand((size, 2), generator=generator, dtype=torch.float64) * 2 - 1
        y = (f_k(x, self.k) > 0).long()
        return x.to(self.dtype), y.to(self.dtype).unsqueeze(1), y


def grid(resolution: int = 256, dtype=torch.float32) -> torch.Tensor:
    """The centres of a resolution × resolution grid on [−1, 1]², (R², 2), row-major with
    y (the second coordinate) varying slowest: ``.reshape(R, R)`` of a function of the
    points is an image with x along the columns and y along the rows."""
    c = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution * 2 - 1
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1).to(dtype)


def _load(data_dir, options: dict, seed: int):
    return make_synthetic(k=options["synthetic_k"], n_train=options["n_train"], n_test=options["n_test"],
                          seed=seed)


GRID = 256  # resolution of the stored f_k predictions (Figure 12's heat maps)


def _fk_snapshot(net) -> dict:
    """The predicted probability over a 256 x 256 grid of [-1, 1]^2, (E, 256, 256)."""
    with torch.no_grad():
        O = net.forward(grid(GRID, net.dtype).to(net.device)).output  # (E, R², 1)
    return {"grid_probability": O[..., 0].reshape(net.E, GRID, GRID).float().cpu()}


ENTRY = register_dataset(DatasetEntry(
    name="synthetic", description="paper 2's f_k = g ∘ t^k on [-1, 1]^2 (section 4.2), generated from a seed",
    n_inputs=2, n_outputs=1, architecture=(2, 50, 50, 1), output="logistic",
    load=_load, train_size=lambda o: int(o["n_train"]),
    options=("synthetic_k", "n_train", "n_test"), source="generated (no files)",
    stream=lambda o: FkStream(o["synthetic_k"]), snapshot=_fk_snapshot))
