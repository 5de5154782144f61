"""Declarative parameter constraints and the one validator (scikit-learn's
``_parameter_constraints`` style).

A field declares what it accepts as a list of constraints; :func:`check` accepts a value
when any constraint does, and otherwise raises a ``ValueError`` that names the field, the
value and every accepted form::

    check("lr", float("inf"), [Interval(float, 0, None, closed="neither")])
    # ValueError: lr: inf is not accepted; expected a finite number > 0

``None`` in the list accepts ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


def is_int(x: Any) -> bool:
    """An integer that is not a bool (``True`` is an int in Python, never a count here)."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_real(x: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Constraint:
    """One accepted form of a value: ``accepts(value)`` and a phrase for the message."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """Numbers of ``kind`` (int or float: float accepts ints too, never inf/nan) between
    ``lo`` and ``hi`` (None = unbounded); ``closed`` says which ends are included."""

    kind: type
    lo: float | None = None
    hi: float | None = None
    closed: str = "both"  # both | left | right | neither

    def accepts(self, value):
        if not (is_int(value) if self.kind is int else is_real(value)):
            return False
        lo_ok = self.lo is None or (value >= self.lo if self.closed in ("both", "left") else value > self.lo)
        hi_ok = self.hi is None or (value <= self.hi if self.closed in ("both", "right") else value < self.hi)
        return lo_ok and hi_ok

    def describe(self):
        what = "an integer" if self.kind is int else "a number"
        lo_op = ">=" if self.closed in ("both", "left") else ">"
        hi_op = "<=" if self.closed in ("both", "right") else "<"
        if self.lo is not None and self.hi is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {left}{_num(self.lo)}, {_num(self.hi)}{right}"
        # A float bound on one side only: say that inf and nan are refused too.
        finite = "" if self.kind is int else " (finite)"
        if self.lo is not None:
            return f"{what} {lo_op} {_num(self.lo)}{finite}"
        if self.hi is not None:
            return f"{what} {hi_op} {_num(self.hi)}{finite}"
        return f"{what}{finite}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (names)."""

    values: tuple

    def accepts(self, value):
        return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value in self.values

    def describe(self):
        return f"one of {list(self.values)}"


@dataclass(frozen=True)
class Names(Constraint):
    """One of a set of names read when checked (a registry that can grow, e.g. by plugins);
    ``listed()`` gives the names an error message shows."""

    accepted: Callable[[str], bool]
    listed: Callable[[], list]
    why: Callable[[Any], str | None] | None = None  # why a known name is refused here

    def accepts(self, value):
        return isinstance(value, str) and self.accepted(value)

    def describe(self):
        return f"one of {self.listed()}"


@dataclass(frozen=True)
class IntList(Constraint):
    """A list of integers, each in ``item`` (an :class:`Interval`), at least ``min_len``
    long, optionally without repeats."""

    item: Interval = Interval(int)
    min_len: int = 0
    distinct: bool = False

    def accepts(self, value):
        if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
            return False
        if not all(self.item.accepts(v) for v in value):
            return False
        return not self.distinct or len(set(value)) == len(value)

    def describe(self):
        what = {0: "a list of", 1: "a non-empty list of"}.get(self.min_len, f"a list of at least {self.min_len}")
        return (f"{what} {'distinct ' if self.distinct else ''}integers, each "
                f"{self.item.describe().removeprefix('an integer ')}")


@dataclass(frozen=True)
class Type(Constraint):
    """Any instance of ``type_`` (bools excluded unless ``type_`` is bool)."""

    type_: type
    name: str

    def accepts(self, value):
        return isinstance(value, self.type_) and (self.type_ is bool or not isinstance(value, bool))

    def describe(self):
        return self.name


@dataclass(frozen=True)
class Device(Constraint):
    """``cpu``, or ``cuda``/``cuda:N`` when this machine has that CUDA device."""

    def accepts(self, value):
        if value == "cpu":
            return True
        if not isinstance(value, str) or not (value == "cuda" or value.startswith("cuda:")):
            return False

        if not torch.cuda.is_available():
            return False
        idx = value.partition(":")[2]
        return not idx or (idx.isdigit() and int(idx) < torch.cuda.device_count())

    def describe(self):
        try:

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception:  # noqa: BLE001 - a broken CUDA install still gets a clear message
            n = 0
        if n == 0:
            return "'cpu' (this machine has no CUDA device: torch.cuda.is_available() is False)"
        return f"'cpu', 'cuda' or 'cuda:N' with N in 0..{n - 1}"


def check(name: str, value: Any, constraints: Sequence[Constraint | None]) -> None:
    """Raise ``ValueError`` naming ``name`` unless some constraint accepts ``value``."""
    for c in constraints:
        if c is None:
            if value is None:
                return
        elif c.accepts(value):
            return
    why = next((c.why(value) for c in constraints if isinstance(c, Names) and c.why is not None), None)
    raise ValueError(f"{name}: {value!r} is not accepted" + (f" ({why})" if why else "")
                     + f"; expected {describe(constraints)}")


def describe(constraints: Sequence[Constraint | None]) -> str:
    parts = ["null (unset)" if c is None else c.describe() for c in constraints]
    return " or ".join(parts)


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if is_int(x) and x >= 2 ** 31:
        return f"2^{int(x + 1).bit_length() - 1} - 1" if (x + 1) & x == 0 else str(x)
    return str(x)
