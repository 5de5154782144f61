"""The learning channel's cost in multiplications per example (paper 1, section 3.1).

BP and RBP multiply every forward-sized feedback weight once per example:

    W  = Σ_{k=0}^{L-1} N_k N_{k+1}                      (eq. 14)

SRBP sends the N_L output errors straight to every hidden layer:

    W' = N_L Σ_{k=1}^{L-1} N_k                          (eq. 15)

:func:`channel_cost` also reports the multiplications actually spent carrying signals to
the hidden layers for a given channel (the papers' Θ(W) counts include the top layer's
update path; the channel's own count excludes the layers it does not reach).
"""

from __future__ import annotations

from dataclasses import dataclass

from .channels import build_channel
from .channels.algorithms import mixed_topology, topology_sources
from .channels import split_name


def eq14_W(sizes: list[int]) -> int:
    """W = Σ N_k N_{k+1}: the number of forward weights (eq. 14)."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def eq15_W_prime(sizes: list[int]) -> int:
    """W' = N_L Σ_{k=1}^{L-1} N_k (eq. 15)."""
    return sizes[-1] * sum(sizes[1:-1])


@dataclass
class ChannelCost:
    sizes: list[int]
    algorithm: str
    W: int  # eq. 14
    W_prime: int  # eq. 15
    channel_mults: int  # multiplications by feedback weights per example for this channel

    def describe(self) -> str:
        return (f"{self.channel_mults:,} multiplications/example in the channel "
                f"(eq. 14 W = {self.W:,}; eq. 15 W' = {self.W_prime:,})")


def channel_cost(sizes: list[int], algorithm: str, options: dict | None = None) -> ChannelCost:
    """Eq. 14, eq. 15, and the feedback multiplications per example of ``algorithm``
    (one per feedback weight on every path that carries a signal)."""
    options = dict(options or {})
    base, _ = split_name(algorithm)
    L = len(sizes) - 1
    channel = build_channel(algorithm, **options)
    if base == "top":
        sources: dict[int, list[int]] = {}
    elif hasattr(channel, "skip_layers") and channel.skip_layers is not None:
        sources = mixed_topology(channel.skip_layers, L)
    elif hasattr(channel, "topology"):
        sources = topology_sources(channel.topology, L)
    else:  # BP and SBP: the forward matrices read backwards
        sources = {h: [h + 1] for h in range(1, L)}
    mults = sum(sizes[h] * sizes[k] for h, ks in sources.items() for k in ks)
    return ChannelCost(list(sizes), algorithm, eq14_W(sizes), eq15_W_prime(sizes), mults)
