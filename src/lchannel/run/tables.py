"""Tables people read: summary statistics over seeds and aligned plain-text tables.

One place for what the CLI's result tables, ``lchannel experiments list/show`` and the
experiment reports share.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable


# How a table shows the sample standard deviation of a single run (n = 1), which does
# not exist: "97.12 ± —", "97.84 (—) [1 × 100 ep]".  Machine-readable outputs leave the
# field empty (NaN) and keep n.
NO_SD = "—"
SINGLE_RUN_NOTE = "± —: a single run (one seed), which has no sample standard deviation."


def mean_sd(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the finite ``values`` (NaN: diverged or
    missing, left out); ``(nan, nan, 0)`` when none is left.  A single value has no sample
    standard deviation: ``(value, nan, 1)``, never an sd of 0."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else math.nan), len(vals)


def fmt_sd(sd: float, fmt) -> str:
    """``fmt(sd)``, or :data:`NO_SD` where there is none (NaN: one run)."""
    return NO_SD if math.isnan(sd) else fmt(sd)


def pm(mean: float, sd: float, fmt, missing: str = "—") -> str:
    """``mean ± sd`` through ``fmt`` (e.g. ``lambda x: f"{100 * x:.2f}"``): ``97.12 ± 0.31``,
    ``97.12 ± —`` for a single run, ``missing`` without a mean."""
    return missing if math.isnan(mean) else f"{fmt(mean)} ± {fmt_sd(sd, fmt)}"


def single_run_note(rows: Iterable[Iterable]) -> str:
    """The footnote a ``mean ± sd`` table needs when one of its cells is a single run
    (``± —``), else ""."""
    return SINGLE_RUN_NOTE if any(f"± {NO_SD}" in str(c) for r in rows for c in r) else ""


def text_table(rows: list[list], header: list[str], numbers_right: bool = True) -> str:
    """A plain-text table with aligned columns: the first column left-aligned, the others
    right-aligned (``numbers_right``) or all left-aligned; trailing blanks stripped."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(r) -> str:
        cells = (str(x).ljust(w) if i == 0 or not numbers_right else str(x).rjust(w)
                 for i, (x, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])
