"""``python -m tcm_core report PAIR_DIR --out report.html``: a pair's self-contained HTML report
(``viz.report``: numbers with intervals, figures, per-class table, configs, versions; opens
offline), and optionally every figure as PNG and SVG (``--figures DIR``, needs Chromium) and
the per-class table as CSV (``--csv``)."""

from __future__ import annotations

import re
from pathlib import Path


def add_report_parser(sub) -> None:
    from tcm_core.cli import _add_eval_options

    p = sub.add_parser(
        "report", help="a pair's self-contained HTML report (figures, numbers, per-class table, config)",
        description="Writes one HTML file that opens without a server or network: R@1, MAP@R, OPIS and "
                    "eps-OPIS of the baseline and +TCM runs with the changes and their 95%% intervals, the "
                    "figures, the per-class table, both configs and the software versions.")
    p.add_argument("pair", help="a pair folder (baseline/ and tcm/ runs) or a repeats folder (seed-<n>/ pairs)")
    p.add_argument("--out", required=True, metavar="HTML", help="where to write the report")
    p.add_argument("--seed", type=int, help="for a repeats folder: the seed whose pair is shown (default: the first)")
    p.add_argument("--threshold", type=float, metavar="D",
                   help="distance for the per-class FAR / FRR columns (default: the middle of the calibration range)")
    p.add_argument("--csv", metavar="PATH", help="also write the per-class table as CSV")
    p.add_argument("--figures", metavar="DIR", help="also write every figure as PNG and SVG (needs Chromium)")
    _add_eval_options(p)
    p.set_defaults(func=run_report_cli)


def run_report_cli(args) -> int:
    from tcm_core.cli import _eval_settings
    from tcm_core.io import atomic_write
    from tcm_core.viz.export import figure_image, table_csv
    from tcm_core.viz.report import build_pair_report, report_html

    report = build_pair_report(args.pair, seed=args.seed, settings=_eval_settings(args), threshold=args.threshold)
    text = report_html(report).encode("utf-8")
    atomic_write(args.out, lambda f: f.write(text))
    print(f"wrote {args.out} ({len(text) / 2**20:.1f} MiB)")
    if args.csv:
        atomic_write(args.csv, lambda f: f.write(table_csv(report.classes)))
        print(f"wrote {args.csv} ({len(report.classes)} classes)")
    if args.figures:
        for title, fig in report.figures.items():
            stem = Path(args.figures) / re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
            for fmt in ("png", "svg"):
                image = figure_image(fig, fmt)
                atomic_write(stem.with_suffix(f".{fmt}"), lambda f, data=image: f.write(data))
        print(f"wrote {2 * len(report.figures)} figures to {args.figures}")
    return 0
