"""Checks of the numbers every system is built from: finite data statistics, channel weights.

A system refuses a bad argument with a ValueError that names it, before any integration:
β = E(I²) must be positive because every right-hand side divides by it or multiplies the
error (α − βP) by it (paper 1 eq. 23-25), and the fixed channel of RBP/SRBP must have one
weight per layer it feeds back to (paper 1 eq. 7, paper 2 eq. 11).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .rules import ADAPTIVE_RULES, rule_spec

__all__ = ["check_statistics", "check_finite", "channel_weights", "fixed_channel"]


def check_statistics(alpha: float, beta: float, beta_name: str = "E(I^2)") -> tuple[float, float]:
    """Validate the data statistics α = E(IT) (finite) and β (finite, > 0)."""
    a, b = check_finite("alpha", alpha), check_finite("beta", beta)
    if b <= 0:
        raise ValueError(f"beta = {beta_name} must be > 0; got {beta}")
    return a, b


def check_finite(name: str, value: float) -> float:
    """Return ``value`` as a float, raising a ValueError naming ``name`` unless finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number; got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return v


def channel_weights(c: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
    """The channel weights ``c`` as a flat float vector (None stays None), raising a ValueError unless finite."""
    if c is None:
        return None
    arr = np.asarray(c, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"c must be finite; got {arr}")
    return arr


def fixed_channel(rule: str, c: Sequence[float] | np.ndarray | None, n: int, count: str) -> np.ndarray | None:
    """The fixed channel of RBP/SRBP as ``n`` flat weights (``count`` says where n comes from, e.g. ``"width = 3"``).

    The other rules take none: ARBP/ASRBP carry the channel in the state, GD has no channel.
    """
    arr = channel_weights(c)
    if rule_spec(rule).fixed_channel:
        if arr is None or arr.size != n:
            raise ValueError(f"rule {rule!r} needs c with {count} channel weights; got {c!r}")
        return arr
    if arr is not None:
        kind = "state variables: put their initial values in y0" if rule in ADAPTIVE_RULES else "not used by gradient descent"
        raise ValueError(f"c must be None for rule {rule!r} (the channel weights are {kind})")
    return None
