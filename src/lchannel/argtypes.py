"""argparse value types shared by every ``lchannel`` sub-command.

Each raises ``argparse.ArgumentTypeError`` with the expected form, so a bad value exits
with status 2 and a message naming the option, before any work starts.
"""

from __future__ import annotations

import argparse
import json
import math


def int_list(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; empty items (``"784,,10"``) and an empty list are refused."""
    parts = [p.strip() for p in text.split(",")]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}") from None
    return vals


def int_list_or_empty(text: str) -> list[int]:
    """Like :func:`int_list`, but ``""`` is the empty list (e.g. ``--frozen ""``: no layer)."""
    return [] if not text.strip() else int_list(text)


def finite_float(text: str) -> float:
    """A float that is neither inf nor nan."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (else kept as text)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    if not k.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a non-empty KEY, got {text!r}")
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v
