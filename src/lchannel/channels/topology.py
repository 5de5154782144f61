"""Topologies of the random channels: which layers each hidden layer receives its
signal from (paper 1, section 3: chained RBP, skipped SRBP, "cascading" between all pairs
of layers, or a mixture), and what a block (conv) network allows of them.
"""

from __future__ import annotations


TOPOLOGIES = ("chain", "skip", "cascade", "mixed")


def topology_sources(topology, L: int) -> dict[int, list[int]]:
    """Sources of every hidden layer for a named topology or an explicit mapping.

    chain: h ← h+1 (RBP); skip: h ← L (SRBP); cascade: h ← every k > h (section 3,
    "cascading": feedback matrices between all pairs of layers); a dict ``{h: [k, ...]}``
    names them explicitly (each k > h, k ≤ L; keys may be strings, as in JSON/TOML).
    """
    if isinstance(topology, str):
        if topology == "chain":
            return {h: [h + 1] for h in range(1, L)}
        if topology == "skip":
            return {h: [L] for h in range(1, L)}
        if topology == "cascade":
            return {h: list(range(h + 1, L + 1)) for h in range(1, L)}
        if topology == "mixed":
            raise ValueError("topology 'mixed' needs skip_layers: the hidden layers that receive the "
                             "output error directly (SRBP); the others receive it through the chain (RBP)")
        raise ValueError(f"topology must be one of {TOPOLOGIES} or a mapping {{h: [k, ...]}}, got {topology!r}")
    if not isinstance(topology, dict):
        raise ValueError(f"topology must be one of {TOPOLOGIES} or a mapping {{h: [k, ...]}}, got {topology!r}")
    out: dict[int, list[int]] = {h: [] for h in range(1, L)}
    for h, ks in topology.items():
        h = int(h)
        if not 1 <= h < L:
            raise ValueError(f"topology layer {h} is not a hidden layer (1..{L - 1})")
        ks = [int(k) for k in (ks if isinstance(ks, (list, tuple)) else [ks])]
        for k in ks:
            if not h < k <= L:
                raise ValueError(f"topology: layer {h} can receive only from layers {h + 1}..{L}, got {k}")
        out[h] = sorted(set(ks))
    return out


def mixed_topology(skip_layers, L: int) -> dict[int, list[int]]:
    """SRBP to ``skip_layers`` (long-range connections from the output), chained RBP to the
    others (paper 1, section 3: "a combination of RBP and SRBP")."""
    skip = {int(h) for h in skip_layers}
    bad = [h for h in skip if not 1 <= h < L]
    if bad:
        raise ValueError(f"skip_layers must be hidden layers 1..{L - 1}, got {sorted(bad)}")
    return {h: [L] if h in skip else [h + 1] for h in range(1, L)}


def check_block_route(channel, sizes, h: int, ks: list[int]) -> None:
    """Refuse, with the reason, what a random channel cannot do on a block network."""
    L = len(sizes) - 1
    for k in ks:
        if k != h + 1 and k != L:
            raise ValueError(
                f"topology: on a block (conv) network a layer receives from the layer above (chained, "
                f"h <- h+1) or from the output layer (skip, h <- {L}); edge {h} <- {k} would be a dense map of "
                f"{sizes[h]} x {sizes[k]} feedback weights between two hidden layers (cascade and such "
                f"explicit topologies are refused on conv nets)")
        if k != h + 1 and channel.feedback.congruent and sizes.block(h + 1).kind == "conv":
            raise ValueError(
                f"feedback congruent: skip edge {h} <- {k} of a conv net has no forward matrix whose signs it "
                f"could take (the product of transposed convolutions and un-poolings is not a fixed matrix); "
                f"congruent feedback works on chained (RBP) routes")
