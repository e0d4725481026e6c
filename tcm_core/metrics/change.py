"""How a score changed from the baseline to the +TCM run (METHOD.md, "OPIS": lower is better).

``relative_change`` is the percent change of an inconsistency score; ``points_change`` the
change of a share (R@1) in percentage points. Both say NaN where a change is undefined, never
crash. How a change is colored and written is ``viz.format``'s business.
"""

from __future__ import annotations

import math


def relative_change(base: float | None, new: float | None) -> float:
    """``100 * (new - base) / |base|`` in percent: negative means the score went down.

    NaN when either value is missing or not finite, or when ``base`` is 0 while ``new`` is not
    (no relative change from zero); 0 when both are equal.
    """
    if base is None or new is None or not (math.isfinite(base) and math.isfinite(new)):
        return math.nan
    if new == base:
        return 0.0
    if base == 0:
        return math.nan
    return float(100.0 * (new - base) / abs(base))


def points_change(base: float | None, new: float | None) -> float:
    """``100 * (new - base)``: the change of a share in [0, 1] in percentage points (NaN if missing)."""
    if base is None or new is None or not (math.isfinite(base) and math.isfinite(new)):
        return math.nan
    return float(100.0 * (new - base))
