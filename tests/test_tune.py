"""The margin search on Optuna (experiments.tune, experiments.tune_cli, tasks.tune) on a digits
pair (real quick retrains): a grid visits each point once, an interrupted or crashed search
resumes without redoing finished trials, the Pareto front matches a direct computation and
Optuna's ``best_trials``, TPE / NSGA-II run their trials, ``--storage`` takes a URL, bad input
is a TCMError, and a re-check trains repeats with an interval across seeds."""

import itertools
import socket
import subprocess
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tcm_core.cli import _Parser
from tcm_core.errors import TCMError
from tcm_core.experiments.tune import (TuneCallback, TuneSpec, best_trial, load_study, load_tune, make_sampler,
                                       open_study, pareto_mask, pareto_trials, run_tune, study_trials, trials_frame)
from tcm_core.experiments.tune_cli import add_tune_parser
from tcm_core.tasks.base import TaskStatus
from tcm_core.tasks.tune import RecheckTask, TuneTask
from tcm_core.training import TrainConfig, runs, train
from tcm_core.training.callbacks import TrainingStopped
from tcm_core.training.repeats import load_summary, summary_changes

DIGITS = TrainConfig(dataset="digits", epochs=1, batch_size=32, samples_per_class=4, embedding_dim=8,
                     loss="multi_similarity", device="cpu")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    train(DIGITS, root / "pair", compare=True)
    return runs.RunPair(root / "pair")


@pytest.fixture(scope="module")
def grid_search(pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "grid"
    spec = TuneSpec("grid", (0.8, 0.9), (0.3, 0.5))
    return out, spec, run_tune(runs.load_config(pair.tcm), pair.baseline, out, spec)


def points(df, state="COMPLETE"):
    return sorted(zip(df[df["state"] == state]["margin_pos"], df[df["state"] == state]["margin_neg"]))


def test_grid_visits_each_point_once(pair, grid_search):
    out, spec, df = grid_search
    assert points(df) == sorted(spec.grid) and len(df) == 4 and (df["state"] == "COMPLETE").all()
    assert (out / "tune.db").is_file() and load_study(out).study_name == "grid"
    for _, row in df.iterrows():  # each trial a pair with its margins, scored on validation
        tcm = runs.load_metrics(f"{row['run_dir']}/tcm")
        assert runs.load_config(f"{row['run_dir']}/tcm").margin_pos == row["margin_pos"]
        assert row["chosen_on"] == "validation"
        assert (row["objective_opis"], row["objective_recall_at_1"]) == (tcm["validation"]["opis"],
                                                                         tcm["validation"]["recall_at_1"])
        assert (row["opis"], row["recall_at_1"]) == (tcm["opis"], tcm["recall_at_1"])
        assert row["val_opis_change_low"] <= row["val_opis_change"] <= row["val_opis_change_high"]
    # one baseline under the quick budget, shared by every trial (a fair comparison)
    assert len({runs.load_metrics(f"{d}/baseline")["opis"] for d in df["run_dir"]}) == 1
    assert load_tune(out).equals(df)
    again = run_tune(runs.load_config(pair.tcm), pair.baseline, out, spec)  # finished: nothing to redo
    assert again.equals(df)


def test_pareto_front_matches_a_direct_computation_and_optuna(grid_search):
    out, _, df = grid_search
    front = pareto_trials(df)
    direct = [int(r.number) for r in df.itertuples()
              if not any(o.objective_opis <= r.objective_opis and o.objective_recall_at_1 >= r.objective_recall_at_1
                         and (o.objective_opis < r.objective_opis or o.objective_recall_at_1 > r.objective_recall_at_1)
                         for o in df.itertuples())]
    assert sorted(front["number"]) == sorted(direct) == sorted(t.number for t in load_study(out).best_trials)
    assert list(df[df["on_pareto_front"]]["number"]) == sorted(direct)
    assert int(best_trial(df)["number"]) in direct


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pareto_mask_matches_optuna_with_ties(seed):
    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["minimize", "maximize"])
    dist = {"margin_pos": optuna.distributions.FloatDistribution(-1, 1),
            "margin_neg": optuna.distributions.FloatDistribution(-1, 1)}
    for _ in range(40):  # coarse values: ties and duplicates on both objectives
        study.add_trial(optuna.trial.create_trial(
            values=[float(rng.integers(0, 6)), float(rng.integers(0, 6))], distributions=dist,
            params={"margin_pos": 0.5, "margin_neg": 0.3}))
    df = trials_frame(study_trials(study))
    assert sorted(df[pareto_mask(df)]["number"]) == sorted(t.number for t in study.best_trials)


def test_best_trial_by_hand():
    values = [(0.010, 0.80), (0.020, 0.85), (0.030, 0.82), (0.010, 0.78), (0.005, 0.70)]
    study = optuna.create_study(directions=["minimize", "maximize"])
    dist = {"margin_pos": optuna.distributions.FloatDistribution(-1, 1)}
    for i, v in enumerate(values):
        study.add_trial(optuna.trial.create_trial(values=list(v), distributions=dist, params={"margin_pos": i / 10}))
    df = trials_frame(study_trials(study))
    assert list(pareto_trials(df)["number"]) == [4, 0, 1]  # 2 dominated by 1, 3 by 0
    assert int(best_trial(df)["number"]) == 1
    assert int(best_trial(df, r1_tolerance=0.06)["number"]) == 0
    assert best_trial(df.iloc[:0]) is None


class StopAtTrial(TuneCallback):
    def __init__(self, number):
        self.number = number

    def on_trial_start(self, number, margin_pos, margin_neg):
        if number == self.number:
            raise TrainingStopped("stopped by the test")


def test_stopped_search_resumes_without_redoing_finished_trials(pair, tmp_path):
    config, spec, out = runs.load_config(pair.tcm), TuneSpec("grid", (0.8, 0.9), (0.4,)), tmp_path / "s"
    with pytest.raises(TrainingStopped):
        run_tune(config, pair.baseline, out, spec, callback=StopAtTrial(1))
    df = load_tune(out)
    assert list(df["state"]) == ["COMPLETE", "FAIL"]
    first = df.iloc[0]
    assert not (out / "trials" / "trial-1").exists()  # no half pair left behind
    done = run_tune(config, pair.baseline, out, spec)
    assert points(done) == sorted(spec.grid)  # the stopped point retried, the finished one kept
    assert done[done["state"] == "COMPLETE"].iloc[0].equals(first)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks for the crashed trials by hand
def test_crashed_trials_are_failed_and_retried(pair, tmp_path):
    config, spec, out = runs.load_config(pair.tcm), TuneSpec("grid", (0.8, 0.9), (0.4,)), tmp_path / "c"
    study = open_study(out, spec, config, grace_period=1)
    study.sampler = make_sampler(spec)
    for worker in (f"{socket.gethostname()}:{dead_pid()}", "another-machine:1"):  # a dead process; a silent machine
        trial = study.ask()
        trial.suggest_float("margin_pos", 0.8, 0.9), trial.suggest_float("margin_neg", 0.4, 0.4)
        trial.set_user_attr("worker", worker)
        study._storage.record_heartbeat(trial._trial_id)
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2
    time.sleep(2.5)  # the second trial's heartbeat goes stale
    df = run_tune(config, pair.baseline, out, spec, grace_period=1)
    assert list(df["state"][:2]) == ["FAIL", "FAIL"]
    assert points(df) == sorted(spec.grid) and len(df) == 4


@pytest.mark.parametrize("sampler, trials", [("tpe", 3), ("nsga2", 2)])
def test_tpe_and_nsga2_run_their_trials_within_the_ranges(pair, tmp_path, sampler, trials):
    spec = TuneSpec(sampler, (0.7, 0.9), (0.3, 0.5), trials=trials, seed=1)
    df = run_tune(runs.load_config(pair.tcm), pair.baseline, tmp_path / sampler, spec)
    assert len(df) == trials and (df["state"] == "COMPLETE").all()
    for _, row in df.iterrows():
        assert 0.7 <= row["margin_pos"] <= 0.9 and 0.3 <= row["margin_neg"] <= 0.5
        assert round(row["margin_pos"] * 100, 6) == round(row["margin_pos"] * 100)  # steps of 0.01
    assert pareto_trials(df)["number"].isin(df["number"]).all()


def parser():
    p = _Parser(prog="python -m tcm_core")
    add_tune_parser(p.add_subparsers(dest="command", required=True, parser_class=_Parser))
    return p


def test_cli_with_an_explicit_sqlite_storage(pair, tmp_path, capsys):
    url, out = f"sqlite:///{tmp_path / 'shared.db'}", tmp_path / "machine-a" / "search"
    args = parser().parse_args(["tune", str(pair.root), "--margins-pos", "0.8", "--margins-neg", "0.4",
                                "--storage", url, "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "Pareto trials (validation" in printed and "suggested margins: --margin-pos 0.8 --margin-neg 0.4" in printed
    assert not (out / "tune.db").exists() and (tmp_path / "shared.db").is_file()
    df = load_tune(url)
    assert len(df) == 1 and df["state"][0] == "COMPLETE" and load_tune(out).equals(df)  # tune.json names the URL
    assert load_study(url).study_name == "search"


@pytest.mark.parametrize("argv, message", [
    (["--sampler", "random"], "invalid choice"),
    (["--margins-pos", "1.5"], "margins_pos"),
    (["--margins-neg", "x"], "invalid float"),
    (["--trials", "0"], "trials"),
    (["--margins-pos", "0.8", "--margins-neg", "0.4", "--trials", "2"], "exceeds the grid"),
    (["--sampler", "tpe", "--trials", "2.5"], "invalid int"),
    (["--lambda-pos", "-1"], "lambda_pos"),
    (["--storage", "not a url"], "not a database URL"),
    (["--storage", "nosuchdb://x"], "cannot open the study storage"),
])
def test_cli_rejects_bad_input(pair, tmp_path, argv, message):
    with pytest.raises(TCMError, match=message):
        args = parser().parse_args(["tune", str(pair.root), *argv, "--out", str(tmp_path / "o")])
        args.func(args)
    assert not (tmp_path / "o" / "trials").exists()  # nothing trained


def test_cli_rejects_a_missing_pair_and_out(tmp_path):
    with pytest.raises(TCMError, match="not a run pair folder"):
        args = parser().parse_args(["tune", str(tmp_path), "--out", str(tmp_path / "o")])
        args.func(args)
    with pytest.raises(TCMError, match="--out"):
        parser().parse_args(["tune", str(tmp_path)])


def test_a_folder_holds_one_search(pair, grid_search):
    out, _, _ = grid_search
    with pytest.raises(TCMError, match="holds another search"):
        run_tune(runs.load_config(pair.tcm), pair.baseline, out, TuneSpec("grid", (0.7,), (0.3,)))
    with pytest.raises(TCMError, match="not a search folder"):
        load_tune(out / "trials")


def test_spec_checks():
    assert TuneSpec("grid", (0.9, 0.8, 0.8), (0.4,)).margins_pos == (0.8, 0.9)
    assert TuneSpec("grid", (0.8, 0.9), (0.3, 0.5)).target == 4 and TuneSpec("tpe").target == 20
    for bad in (dict(sampler="cmaes"), dict(margins_pos=()), dict(margins_neg=(2,)), dict(trials=-1),
                dict(seed=-2), dict(lambda_neg=-0.5)):
        with pytest.raises(TCMError):
            TuneSpec(**bad)


def test_tune_task_stopped_before_it_starts(pair, tmp_path):
    task = TuneTask(runs.load_config(pair.tcm), pair.baseline, tmp_path / "t", TuneSpec("grid", (0.8,), (0.4,)))
    task.stop()
    assert task.start().wait(60)
    snap = task.snapshot()
    assert snap.status == TaskStatus.STOPPED and snap.progress.total == 1 and snap.progress.trials == ()
    with pytest.raises(TCMError, match="margin_pos"):  # checked before the thread starts
        RecheckTask(runs.load_config(pair.tcm), 1.5, 0.4, tmp_path / "r")


def test_recheck_trains_repeats_with_an_interval_across_seeds(pair, tmp_path):
    task = RecheckTask(runs.load_config(pair.tcm), 0.85, 0.35, tmp_path / "re", seeds=(0, 1)).start()
    assert task.wait(240)
    snap = task.snapshot()
    assert snap.status == TaskStatus.FINISHED and snap.fraction == 1.0, snap.error
    r = snap.progress.result
    assert r.seeds == (0, 1) and r.out == tmp_path / "re"
    for seed, side in itertools.product((0, 1), runs.PAIR):
        cfg = runs.load_config(tmp_path / "re" / f"seed-{seed}" / side)
        assert (cfg.seed, cfg.margin_pos, cfg.margin_neg, cfg.tcm) == (seed, 0.85, 0.35, side == "tcm")
        assert cfg.max_train_samples == DIGITS.max_train_samples  # the run's whole budget
    summary = load_summary(tmp_path / "re")
    assert r.opis_change == summary_changes(summary)["opis_change_pct"] and r.opis_change.n == 2
    assert r.opis == pytest.approx(np.mean([s["tcm"]["opis"] for s in summary["per_seed"]]))
    assert r.opis_change.low <= r.opis_change.value <= r.opis_change.high
