"""``python -m tcm_core study``: every loss x batch size x seed, with and without TCM, into one
folder (``experiments.study``), with a progress bar per run and one line per cell at the end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tcm_core.training.repeats import CHANGE_NAMES, format_change, load_summary


def add_study_parser(sub) -> None:
    """Add the ``study`` subcommand: ``train``'s data, model and training options (without
    ``--loss``, ``--tcm``, ``--batch-size``, ``--seed``) plus ``--losses``, ``--batch-sizes``,
    ``--seeds`` and ``--out``."""
    from tcm_core.losses import BASE_LOSSES
    from tcm_core.training.cli import add_config_options

    p = sub.add_parser(
        "study", help="train every loss x batch size x seed, with and without TCM (a study)",
        description="Trains one baseline / +TCM pair per (loss, batch size, seed) into "
                    "OUT/<loss>-bs<batch>/seed-<n>/{baseline,tcm} and writes OUT/study.csv (one row per "
                    "run and split). Run the same command again to resume: finished runs are kept.")
    add_config_options(p, per_run=False)
    p.add_argument("--losses", nargs="+", required=True, metavar="LOSS",
                   help=f"base losses, one cell row each: {', '.join(BASE_LOSSES)}")
    p.add_argument("--batch-sizes", nargs="+", type=int, required=True, metavar="B",
                   help="batch sizes (P x K images), one cell column each")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="N",
                   help="one baseline / +TCM pair per seed in every cell (default 0 1 2)")
    p.add_argument("--out", required=True, help="the study folder; give the same one again to resume")
    p.set_defaults(func=run_study_cli)


def spec_from_args(args):
    """The ``StudySpec`` of parsed ``study`` arguments (TCMError on bad input)."""
    from tcm_core.experiments.study import StudySpec
    from tcm_core.training.cli import config_from_args

    # the per-run fields are the spec's to set; a valid placeholder batch size lets the spec
    # itself say which batch size is too small
    fixed = dict(loss=args.losses[0], tcm=False, batch_size=2 * max(1, args.samples_per_class), seed=0)
    base = config_from_args(argparse.Namespace(**{**vars(args), **fixed}))
    return StudySpec(base, tuple(args.losses), tuple(args.batch_sizes), tuple(args.seeds))


def run_study_cli(args) -> int:
    from tcm_core.experiments.study import TABLE, run_study
    from tcm_core.training.callbacks import TrainingStopped
    from tcm_core.training.cli import ProgressBars

    spec = spec_from_args(args)
    out = Path(args.out)
    bars = ProgressBars()
    try:
        table = run_study(spec, out, callback=bars)
    except (KeyboardInterrupt, TrainingStopped):
        bars.close()
        print(f"stopped: run the same command again to resume {out} (finished runs are kept)", file=sys.stderr)
        raise
    finally:
        bars.close()
    print(format_study(out, spec))
    print(f"saved to {out} ({TABLE}: {len(table)} rows)")
    return 0


def format_study(out, spec) -> str:
    """One line per cell: +TCM's change against the baseline on test, mean over the seeds with a
    95% interval (from each cell's ``summary.json``)."""
    from tcm_core.experiments.study import cell_name

    names = [cell_name(loss, b) for loss, b in spec.cells]
    width = max(map(len, names))
    lines = ["+TCM vs baseline on test, mean over seeds [95% CI]:"]
    for name in names:
        summary = load_summary(Path(out) / name)
        parts = [f"{len(summary['seeds'])} seed{'s' if len(summary['seeds']) != 1 else ''}"]
        for key, (label, unit) in CHANGE_NAMES.items():
            text = format_change(summary["changes"][key], unit, long=False)
            parts.append(f"{label.replace(' change', '')} {text}")
        lines.append(f"  {name:<{width}}  " + "  ".join(parts))
    return "\n".join(lines)
