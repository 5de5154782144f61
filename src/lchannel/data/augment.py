"""Training-time augmentation of images (paper 1, section 4.3) and per-channel normalisation.

Section 4.3: "During training, the training images are randomly translated up to 10% in
either direction, horizontally and vertically, and flipped horizontally with probability
p=0.5."  The paper's group trained with Keras; this follows Keras's ``ImageDataGenerator
(width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True)``:

- a shift ``t ~ U(-0.1·W, 0.1·W)`` (and ``U(-0.1·H, 0.1·H)`` vertically) per image,
  applied with nearest-neighbour interpolation (the shift rounded to whole pixels, so
  ±3 pixels on 32x32 images) and the border filled with the nearest edge pixel
  (Keras's default ``fill_mode="nearest"``);
- then a horizontal flip with probability 0.5.

:class:`RandomTranslateFlip` does this for a whole minibatch at once on the tensors' own
device (one ``gather``; no torchvision).  Its random numbers come from an explicit
``torch.Generator`` (the run's ``augment`` stream, :mod:`lchannel.engine.rng`) that lives on the
CPU, so the same seed gives the same images on every device and the generator's state is
saved with the run's checkpoint: a resumed run draws exactly the images an uninterrupted
one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RandomTranslateFlip:
    """Random translation by up to ``shift`` of each side (a fraction) and a horizontal
    flip with probability ``flip``, for inputs stored as flat rows of ``shape`` = (C, H, W).

    ``__call__(X, g)`` takes ``(B, C·H·W)`` or ``(E, B, C·H·W)`` (each member's batch
    drawn from its own generator: pass one generator per member) and returns a new tensor
    of the same shape."""

    shape: tuple[int, int, int]
    shift: float = 0.1
    flip: float = 0.5

    def __post_init__(self):
        if len(self.shape) != 3 or any(int(n) < 1 for n in self.shape):
            raise ValueError(f"shape must be (C, H, W) with positive sizes, got {self.shape!r}")
        if not 0.0 <= self.shift < 1.0:
            raise ValueError(f"shift must be a fraction in [0, 1), got {self.shift!r}")
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"flip must be a probability in [0, 1], got {self.flip!r}")

    def draw(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Integer shifts ``dy``, ``dx`` (pixels, positive = down/right) and flips (bool)
        for ``n`` images, drawn on the generator's device (the CPU)."""
        _, H, W = self.shape
        u = torch.rand(3, n, generator=g, device=g.device, dtype=torch.float64)
        # Keras draws a continuous shift and interpolates with order 0: round to whole pixels.
        dy = torch.round((2 * u[0] - 1) * self.shift * H).to(torch.int64)
        dx = torch.round((2 * u[1] - 1) * self.shift * W).to(torch.int64)
        return dy, dx, u[2] < self.flip

    def index(self, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, device) -> torch.Tensor:
        """``(n, H·W)`` source pixel of every output pixel: ``out[i, j] = x[clamp(i − dy),
        clamp(j' − dx)]`` with ``j' = W − 1 − j`` for flipped images (shift, then flip)."""
        _, H, W = self.shape
        dy, dx, flip = dy.to(device), dx.to(device), flip.to(device)
        rows = (torch.arange(H, device=device) - dy[:, None]).clamp_(0, H - 1)  # (n, H)
        cols = torch.arange(W, device=device).expand(len(dx), W)
        cols = torch.where(flip[:, None], W - 1 - cols, cols)
        cols = (cols - dx[:, None]).clamp_(0, W - 1)  # (n, W)
        return (rows[:, :, None] * W + cols[:, None, :]).reshape(len(dy), H * W)

    def apply(self, X: torch.Tensor, dy, dx, flip) -> torch.Tensor:
        """``X`` (n, C·H·W) translated and flipped by the given draws."""
        C, H, W = self.shape
        n = X.shape[0]
        idx = self.index(dy, dx, flip, X.device)  # (n, H·W)
        return X.view(n, C, H * W).gather(2, idx[:, None, :].expand(n, C, H * W)).view(n, C * H * W)

    def __call__(self, X: torch.Tensor, g: torch.Generator | list[torch.Generator]) -> torch.Tensor:
        C, H, W = self.shape
        if X.shape[-1] != C * H * W:
            raise ValueError(f"inputs have {X.shape[-1]} values per example, images of shape {self.shape} "
                             f"have {C * H * W}")
        if X.dim() == 2:
            g = g[0] if isinstance(g, (list, tuple)) else g
            return self.apply(X, *self.draw(X.shape[0], g))
        gens = g if isinstance(g, (list, tuple)) else [g]
        if len(gens) != X.shape[0]:
            raise ValueError(f"{X.shape[0]} members' batches need one generator each, got {len(gens)}")
        draws = [self.draw(X.shape[1], gi) for gi in gens]  # member by member: as single runs
        dy, dx, flip = (torch.cat(d) for d in zip(*draws))
        E, B = X.shape[:2]
        return self.apply(X.reshape(E * B, -1), dy, dx, flip).view(E, B, -1)

    def max_shift(self) -> tuple[int, int]:
        """The largest shift in pixels (vertical, horizontal): ``round(shift · H)``, ``round(shift · W)``."""
        _, H, W = self.shape
        return int(math.floor(self.shift * H + 0.5)), int(math.floor(self.shift * W + 0.5))


def channel_statistics(X: torch.Tensor, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) standard deviation over examples and pixels of
    rows ``X`` (N, C·H·W) of images of ``shape``, each of shape (C,) in float64.  Summed
    in ``X``'s dtype: torch's reductions sum pairwise, exact to ~1e-7 relative here, and
    a float64 copy of CIFAR-10's training set would take 1.2 GB."""
    C = shape[0]
    var, mean = torch.var_mean(X.reshape(X.shape[0], C, -1), dim=(0, 2), correction=0)
    return mean.to(torch.float64), var.to(torch.float64).sqrt()


def normalize_channels(X: torch.Tensor, shape: tuple[int, int, int], mean: torch.Tensor,
                       std: torch.Tensor) -> torch.Tensor:
    """``(X − mean_c) / std_c`` per channel c, in ``X``'s dtype (a new tensor)."""
    C = shape[0]
    m = mean.to(X.dtype).view(1, C, 1)
    s = std.to(X.dtype).view(1, C, 1)
    return ((X.reshape(X.shape[0], C, -1) - m) / s).reshape(X.shape)
