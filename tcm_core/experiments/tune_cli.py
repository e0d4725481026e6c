"""``python -m tcm_core tune PAIR_DIR``: a margin search on Optuna (``experiments.tune``).

Each trial retrains the pair's +TCM run with other margins (a fair quick retrain); the search
lives in ``--out`` (``tune.db``) or in ``--storage URL``, so running the same command again
resumes it and several machines can share one. Progress goes to stderr; the Pareto trials and
the suggested margins to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.experiments.tune import SAMPLERS, TuneCallback, TuneSpec, TuneTrial
from tcm_core.training.cli import ProgressBars


def add_tune_parser(sub) -> None:
    d = TuneSpec()
    p = sub.add_parser("tune", help="search TCM's margins with Optuna (quick fair retrains of a run pair)",
                       description="Minimize validation OPIS and maximize validation R@1 over (m+, m-): "
                                   "each trial retrains PAIR_DIR's +TCM run with its margins.")
    p.add_argument("pair", metavar="PAIR_DIR", help="a run pair folder (baseline/ and tcm/)")
    p.add_argument("--sampler", choices=SAMPLERS, default=d.sampler,
                   help="grid: every (m+, m-) of the grid once (for teaching); tpe / nsga2: tune within "
                        "the values' min..max (default grid)")
    p.add_argument("--margins-pos", type=float, nargs="+", default=list(d.margins_pos), metavar="M",
                   help="m+ values (grid), or their min and max (tpe, nsga2)")
    p.add_argument("--margins-neg", type=float, nargs="+", default=list(d.margins_neg), metavar="M",
                   help="m- values (grid), or their min and max (tpe, nsga2)")
    p.add_argument("--trials", type=int, help="finished trials that end the search (default: the whole grid, "
                                              "or 20 for tpe / nsga2)")
    p.add_argument("--lambda-pos", type=float, help="TCM lambda+ held fixed (default: the run's)")
    p.add_argument("--lambda-neg", type=float, help="TCM lambda- held fixed (default: the run's)")
    p.add_argument("--seed", type=int, default=d.seed, help="the sampler's seed")
    p.add_argument("--storage", metavar="URL", help="an Optuna storage URL (e.g. postgresql://user@host/db) "
                                                    "shared by several machines (default sqlite:///OUT/tune.db)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the search folder; its name names the study (run again to resume)")
    p.set_defaults(func=run_tune_command)


def spec_from_args(args) -> TuneSpec:
    return TuneSpec(sampler=args.sampler, margins_pos=tuple(args.margins_pos), margins_neg=tuple(args.margins_neg),
                    lambda_pos=args.lambda_pos, lambda_neg=args.lambda_neg, trials=args.trials, seed=args.seed)


def pair_config(pair_dir):
    """The +TCM run's config of a pair folder (relative data paths resolved from here)."""
    from tcm_core.training import runs
    from tcm_core.training.retrain import resolve_paths

    pair = runs.RunPair(Path(pair_dir))
    if not all((side / runs.CONFIG).is_file() for side in (pair.baseline, pair.tcm)):
        raise TCMError(f"{pair_dir} is not a run pair folder: it needs baseline/ and tcm/ runs "
                       "(train one with `train --compare`)")
    return resolve_paths(runs.load_config(pair.tcm), Path.cwd()), pair.baseline


class TerminalProgress(TuneCallback, ProgressBars):
    """Progress on stderr: a line per trial and the training bars."""

    def on_search(self, trials, total: int) -> None:
        done = sum(t.state == "COMPLETE" for t in trials)
        print(f"{done} of {total} trials finished", file=sys.stderr)

    def on_trial_start(self, number: int, margin_pos: float, margin_neg: float) -> None:
        print(f"trial {number}: m+ {margin_pos:g}, m- {margin_neg:g}", file=sys.stderr)

    def on_trial_end(self, trial: TuneTrial) -> None:
        self.close()
        print(f"{trial.label}: {trial.state.lower()}", file=sys.stderr)


def run_tune_command(args) -> int:
    from tcm_core.experiments.tune import (
        best_trial,
        pareto_trials,
        run_tune,
        trial_line,
    )

    spec = spec_from_args(args)
    config, baseline = pair_config(args.pair)
    try:
        import optuna
    except ImportError:
        raise TCMError("the tune command needs optuna: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bars = TerminalProgress()
    try:
        df = run_tune(config, baseline, args.out, spec, storage=args.storage, callback=bars)
    finally:
        bars.close()
    chosen_on = df["chosen_on"].dropna()
    print(f"Pareto trials ({chosen_on.iloc[0] if len(chosen_on) else 'validation'} OPIS lower, R@1 higher):")
    for _, row in pareto_trials(df).iterrows():
        print(f"  {trial_line(row)}")
    best = best_trial(df)
    if best is not None:
        print(f"suggested margins: --margin-pos {best['margin_pos']:g} --margin-neg {best['margin_neg']:g} "
              f"(trial {int(best['number'])})")
    print(f"saved to {args.out}")
    return 0
