"""What both ``lchannel theory`` commands share: the checks of ``--out`` and ``--seed``, made
before integrating (a typo must not cost the run), and the printing of a state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..run.cliutil import PathError, writable_file
from .build import OptionError

__all__ = ["check_out", "check_seed", "fmt"]


def check_out(out: str) -> str:
    """A .png path that can be written, checked before integrating (a typo must not cost the run)."""
    if not out.lower().endswith(".png"):
        raise OptionError(f"--out: must be a .png path; got {out!r}")
    try:
        writable_file(out, "--out", "a .png file")
    except PathError as exc:
        raise OptionError(str(exc)) from None
    return out


def check_seed(seed: int) -> int:
    # numpy's default_rng refuses negative seeds with a bare ValueError
    if seed < 0:
        raise OptionError(f"--seed: must be an integer >= 0; got {seed}")
    return seed


def fmt(names: Sequence[str], y: np.ndarray, limit: int = 12) -> str:
    """``a1=0.5, a2=-1, ...``: the first ``limit`` components of a state, named."""
    items = [f"{n}={v:.6g}" for n, v in zip(names, y)]
    return ", ".join(items[:limit]) + (f", ... ({len(items)} values)" if len(items) > limit else "")
