"""Headline numbers for comparing runs: the relative OPIS change and short text formats.

Lower OPIS is better (METHOD.md, "OPIS"), so a negative change is good news and shown green.
"""

from __future__ import annotations

import math

from tcm_core.errors import TCMError


def opis_change(base: float, tcm: float) -> tuple[float, str]:
    """Relative change of an inconsistency score from ``base`` to ``tcm``, in percent.

    ``100 * (tcm - base) / base``: negative means TCM lowered the inconsistency (better).
    Returns ``(percent, colour)`` with colour ``"green"`` when lower, ``"red"`` when higher and
    ``"gray"`` when equal or undefined. Undefined (``percent`` is NaN): either value missing or
    not finite, or ``base`` is 0 while ``tcm`` is not (no relative change from zero).
    """
    if base is None or tcm is None or not (math.isfinite(base) and math.isfinite(tcm)):
        return math.nan, "gray"
    if tcm == base:
        return 0.0, "gray"
    if base == 0:
        return math.nan, "gray"
    pct = 100.0 * (tcm - base) / abs(base)
    return float(pct), "green" if tcm < base else "red"


FORMATS = {
    "opis": lambda v: f"{v:.4g}",  # small variances: 4 significant digits
    "recall": lambda v: f"{100 * v:.1f}%",  # R@1, MAP@R stored as shares in [0, 1]
    "loss": lambda v: f"{v:.4f}",
    "distance": lambda v: f"{v:.3f}",
    "rate": lambda v: f"{100 * v:.2f}%",  # FAR / FRR shares
    "change": lambda v: f"{v:+.1f}%".replace("-", "−"),  # opis_change percent
    "seconds": lambda v: f"{v:.1f} s",
}


def format_metric(value, kind: str) -> str:
    """Short text for a number of the given ``kind`` (one of ``FORMATS``); "—" when missing."""
    if kind not in FORMATS:
        raise TCMError(f"unknown metric kind {kind!r}; valid kinds: {', '.join(FORMATS)}")
    if value is None or not math.isfinite(float(value)):
        return "—"
    return FORMATS[kind](float(value))
