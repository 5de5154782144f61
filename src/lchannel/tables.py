"""Tables people read: summary statistics over seeds and aligned plain-text tables.

One place for what the CLI's result tables, ``lchannel experiments list/show`` and the
experiment reports share.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable


def mean_sd(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the finite ``values`` (NaN: diverged or
    missing, left out); ``(nan, nan, 0)`` when none is left, sd 0 for a single value."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0), len(vals)


def text_table(rows: list[list], header: list[str], numbers_right: bool = True) -> str:
    """A plain-text table with aligned columns: the first column left-aligned, the others
    right-aligned (``numbers_right``) or all left-aligned; trailing blanks stripped."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(r) -> str:
        cells = (str(x).ljust(w) if i == 0 or not numbers_right else str(x).rjust(w)
                 for i, (x, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])
