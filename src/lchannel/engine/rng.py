"""Named random streams derived from a run's seed.

Every random thing in lchannel draws from an explicit ``torch.Generator``.  A run's
seed is split into independent *streams* (forward initialisation, feedback matrices,
channel noise, forward dropout, data order, training augmentation, and the converter's
per-pass feedback redraws (brSF), weight-mirror noise and the probe that calibrates direct
feedback) so that, for example, BP and RBP started
from the same seed get identical forward weights, and adding a random feedback matrix
never shifts the forward initialisation.
"""

from __future__ import annotations

import hashlib

import torch

STREAMS = ("init", "feedback", "channel", "dropout", "data", "augment", "resample", "mirror", "calibrate")


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for ``stream`` derived deterministically from ``seed``."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    digest = hashlib.sha256(f"lchannel:{int(seed)}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator for ``stream`` of ``seed`` on ``device``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, stream))
    return g


class MemberStreams:
    """One generator per member for a given stream; draws are stacked on the member axis.

    Drawing member by member (rather than one big draw) is what makes member ``e`` of a
    population identical to a single run with seed ``seeds[e]``.
    """

    def __init__(self, seeds: list[int], stream: str, device: torch.device | str = "cpu"):
        self.seeds = list(seeds)
        self.stream = stream
        self.generators = [generator(s, stream, device) for s in self.seeds]

    def state(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def load_state(self, states: list[torch.Tensor]) -> None:
        for g, s in zip(self.generators, states):
            g.set_state(s)


def dropout_mask(generators: list[torch.Generator], shape, p: float, dtype, device) -> torch.Tensor:
    """Inverted-dropout masks, one per member drawn from its own generator, stacked on the
    member axis: ``(E, *shape)`` of 0 or 1/(1 − p) (keep probability 1 − p), so the
    expected signal is unchanged.  Forward-channel dropout and learning-channel dropout
    (paper 1, section 6.1) both use it.

    ``p`` may be a list of one probability per member (populations across variants): each
    member's mask is then drawn and scaled with its own p."""
    if not isinstance(p, (int, float)):
        if len(p) != len(generators):
            raise ValueError(f"dropout: {len(p)} per-member probabilities for {len(generators)} members")
        if any(q != p[0] for q in p):
            keeps = [1.0 - q for q in p]
            masks = [torch.rand(shape, generator=g, device=device, dtype=dtype) < k for g, k in zip(generators, keeps)]
            scale = torch.tensor(keeps, dtype=dtype, device=device).view(-1, *[1] * len(tuple(shape)))
            return torch.stack(masks).to(dtype).div_(scale)
        p = p[0]
    keep = 1.0 - p
    masks = [torch.rand(shape, generator=g, device=device, dtype=dtype) < keep for g in generators]
    return torch.stack(masks).to(dtype).div_(keep)
