"""How numbers read in the app: short formats per kind of number, and the color of a change.

Lower OPIS is better (METHOD.md, "OPIS"), so a score that went down is good news and green.
"""

from __future__ import annotations

import math

from tcm_core.errors import TCMError
from tcm_core.metrics.change import relative_change

FORMATS = {
    "opis": lambda v: f"{v:.4g}",  # small variances: 4 significant digits
    "recall": lambda v: f"{100 * v:.1f}%",  # R@1, MAP@R stored as shares in [0, 1]
    "share": lambda v: f"{v:.3f}",  # R@1, MAP@R as the share itself
    "loss": lambda v: f"{v:.4f}",
    "distance": lambda v: f"{v:.3f}",
    "rate": lambda v: f"{100 * v:.2f}%",  # FAR / FRR shares
    "change": lambda v: f"{v:+.1f}%".replace("-", "−"),  # relative_change percent
    "points": lambda v: f"{v:+.1f} pts".replace("-", "−"),  # points_change
    "seconds": lambda v: f"{v:.1f} s",
}


def format_metric(value, kind: str) -> str:
    """Short text for a number of the given ``kind`` (one of ``FORMATS``); "—" when missing."""
    if kind not in FORMATS:
        raise TCMError(f"unknown metric kind {kind!r}; valid kinds: {', '.join(FORMATS)}")
    if value is None or not math.isfinite(float(value)):
        return "—"
    return FORMATS[kind](float(value))


def change_color(base: float | None, new: float | None, *, lower_is_better: bool = True) -> str:
    """"green" when the score moved the good way, "red" the bad way, "gray" when equal or
    undefined (see ``metrics.change.relative_change``)."""
    pct = relative_change(base, new)
    if math.isnan(pct) or pct == 0:
        return "gray"
    return "green" if (pct < 0) == lower_is_better else "red"


def change_with_interval(interval, kind: str = "change") -> tuple[str, bool]:
    """``("−12.0% (95% CI −30.1% … +5.2%), within noise", False)`` for an
    ``metrics.uncertainty.Interval`` of a change (``kind`` "change" in percent or "points"):
    the text, and whether the interval excludes zero (only then is the change colored)."""
    text = format_metric(interval.value, kind)
    if math.isnan(interval.low) or math.isnan(interval.high):
        return f"{text} (no interval: {interval.method})", False
    text += (f" ({100 * interval.level:.0f}% CI {format_metric(interval.low, kind)} … "
             f"{format_metric(interval.high, kind)})")
    return (text, True) if interval.excludes_zero else (f"{text}, within noise", False)


def interval_note(interval, kind: str = "change") -> str:
    """The line under a change: ``"95% CI −30.1% … +5.2%: within noise"`` (or ``"...: beyond
    noise"`` when the interval excludes zero; ``"no interval: ..."`` when there is none)."""
    if math.isnan(interval.low) or math.isnan(interval.high):
        return f"no interval: {interval.method}"
    verdict = "beyond noise" if interval.excludes_zero else "within noise"
    return (f"{100 * interval.level:.0f}% CI {format_metric(interval.low, kind)} … "
            f"{format_metric(interval.high, kind)}: {verdict}")
