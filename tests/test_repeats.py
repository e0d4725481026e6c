"""Repeats (issue: comparisons you can trust): one pair per seed, each exactly the pair that
seed trains alone, and summary.json's intervals against an independent computation."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT
from tcm_core.errors import TCMError
from tcm_core.training import TrainConfig, runs, train
from tcm_core.training.config import TrainConfig as Config
from tcm_core.training.repeats import load_summary, seed_pairs, train_repeats

FAST = dict(dataset="digits", loss="multi_similarity", embedding_dim=8, batch_size=32,
            samples_per_class=4, epochs=1, device="cpu")


@pytest.fixture(scope="module")
def repeats(tmp_path_factory):
    out = tmp_path_factory.mktemp("repeats")
    summary = train_repeats(TrainConfig(**FAST), out, [0, 1, 2])
    return out, summary


def test_each_seed_equals_that_seed_alone(repeats, tmp_path):
    out, _ = repeats
    alone = train(TrainConfig(**FAST, seed=1), tmp_path / "alone", compare=True)
    for side in runs.PAIR:
        inside = runs.load_metrics(out / "seed-1" / side)
        for key in ("recall_at_1", "map_at_r", "opis", "eps_opis", "t_min", "t_max"):
            assert inside[key] == alone[side][key], (side, key)
        assert inside["validation"]["opis"] == alone[side]["validation"]["opis"]
        a, b = runs.load_run_embeddings(out / "seed-1" / side), runs.load_run_embeddings(tmp_path / "alone" / side)
        np.testing.assert_array_equal(a[0], b[0])


def test_summary_intervals_agree_with_an_independent_computation(repeats):
    out, summary = repeats
    assert summary == load_summary(out) and summary["seeds"] == [0, 1, 2]
    assert sorted(seed_pairs(out)) == [0, 1, 2]
    metrics = [{side: runs.load_metrics(out / f"seed-{s}" / side) for side in runs.PAIR} for s in (0, 1, 2)]
    for key, change in (("opis_change_pct", lambda b, t: 100 * (t["opis"] - b["opis"]) / b["opis"]),
                        ("eps_opis_change_pct", lambda b, t: 100 * (t["eps_opis"] - b["eps_opis"]) / b["eps_opis"]),
                        ("recall_at_1_change_pts", lambda b, t: 100 * (t["recall_at_1"] - b["recall_at_1"]))):
        values = np.array([change(m["baseline"], m["tcm"]) for m in metrics])
        low, high = stats.t.interval(0.95, df=2, loc=values.mean(), scale=stats.sem(values))
        got = summary["changes"][key]
        assert got["n"] == 3
        assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_resume_keeps_finished_seeds(repeats):
    out, _ = repeats
    before = (out / "seed-0" / "tcm" / runs.METRICS).stat().st_mtime_ns
    train_repeats(TrainConfig(**FAST), out, [0, 1, 2], resume=True)
    assert (out / "seed-0" / "tcm" / runs.METRICS).stat().st_mtime_ns == before


def test_bad_seeds_and_missing_summary(tmp_path):
    with pytest.raises(TCMError, match="distinct non-negative"):
        train_repeats(TrainConfig(**FAST), tmp_path, [1, 1])
    with pytest.raises(TCMError, match="summary.json is missing"):
        load_summary(tmp_path)


def test_cli_seeds_needs_compare(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tcm_core", "train", "--dataset", "digits", "--seeds", "0", "1",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: --seeds trains one baseline / +TCM pair per seed: add --compare"]


def test_configs_written_before_still_load():
    legacy = {**Config().to_dict(), "eval_far_range": [0.01, 0.2], "eval_num_thresholds": 101,
              "eval_beta": 2.0, "eval_eps": 0.2}
    legacy.pop("eval")
    config = Config.from_dict(legacy)
    assert (config.eval.far_range, config.eval.num_thresholds, config.eval.beta, config.eval.eps) == (
        (0.01, 0.2), 101, 2.0, 0.2)
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
