"""Colors and small layout helpers shared by the figures in ``viz``."""

from __future__ import annotations

from plotly.colors import hex_to_rgb, qualitative

BASELINE_COLOR = "#1f77b4"  # blue
TCM_COLOR = "#ff7f0e"  # orange
WORST_COLOR = "#d62728"  # red
MEAN_COLOR = "#111111"
RANGE_FILL = "#7f7f7f"
OTHER_COLORS = qualitative.Plotly[2:] + qualitative.Plotly[:2]

BASELINE_LABEL, TCM_LABEL = "baseline", "+TCM"  # the one way the two runs of a pair are named
PAIR_TITLES = ("Baseline", TCM_LABEL)
RUN_COLORS = {"baseline": BASELINE_COLOR, "tcm": TCM_COLOR, "+tcm": TCM_COLOR}


def run_colors(names) -> dict[str, str]:
    """Blue for a run named baseline, orange for tcm / +TCM, plotly defaults for the others."""
    colors, others = {}, 0
    for name in names:
        key = str(name).strip().lower().replace(" ", "")
        if key in RUN_COLORS:
            colors[name] = RUN_COLORS[key]
        else:
            colors[name] = OTHER_COLORS[others % len(OTHER_COLORS)]
            others += 1
    return colors


def rgba(color: str, alpha: float) -> str:
    """``'#1f77b4'`` -> ``'rgba(31,119,180,0.3)'``; non-hex colors are passed through."""
    if not (isinstance(color, str) and color.startswith("#") and len(color) == 7):
        return color
    r, g, b = hex_to_rgb(color)
    return f"rgba({r},{g},{b},{alpha:.3g})"
