"""Margins (metrics.similarities, training.retrain, viz.margins): histogram answers against
direct counts and TCMLoss, a quick retrain on the 8x8 digits (real training) with validation
scores and intervals, pair changes from embeddings against ``evaluate``, and the margin search's
figures on trials made by hand (the search itself, on Optuna, is tested in ``test_tune.py``)."""

import json
import shutil

import numpy as np
import pytest
import torch

from tcm_core.errors import TCMError
from tcm_core.experiments.tune import TuneTrial, trials_frame
from tcm_core.losses.tcm import TCMLoss
from tcm_core.metrics.change import points_change, relative_change
from tcm_core.metrics.evaluation import EvalSettings, evaluate
from tcm_core.metrics.scores import embedding_pair_changes, run_pair_changes
from tcm_core.metrics.similarities import pair_similarities, penalized_shares, tcm_terms, tcm_value
from tcm_core.training import TrainConfig, runs, train
from tcm_core.training.retrain import retrain
from tcm_core.viz.margins import (DISTINGUISHABLE, grid_heatmaps, pareto_figure, retrain_lines,
                                  similarity_histogram_figure, trial_text, tune_caption)

DIGITS = TrainConfig(dataset="digits", epochs=1, batch_size=32, samples_per_class=4, embedding_dim=8,
                     loss="multi_similarity", device="cpu")


def all_pairs(x, y):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.triu_indices(len(y), 1)
    s = np.sum(x[a] * x[b], axis=1)
    same = y[a] == y[b]
    return s[same], s[~same]


@pytest.mark.parametrize("seed", [0, 1])
def test_penalized_shares_match_a_direct_count(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(700, 5)), rng.integers(0, 6, 700)
    pos, neg = all_pairs(x, y)
    h = pair_similarities(x, y, block_rows=64)  # several blocks
    assert h.positive_pairs == pos.size and h.negative_pairs == neg.size
    for m_pos, m_neg in [(0.9, 0.5), (0.3, -0.2), (-1.0, 1.0), (1.0, -1.0)]:
        share_pos, share_neg = penalized_shares(h, m_pos, m_neg)
        # within one bin (width 0.001) of pairs of the exact count
        assert share_pos == pytest.approx(np.mean(pos <= m_pos), abs=2e-3)
        assert share_neg == pytest.approx(np.mean(neg >= m_neg), abs=2e-3)
    assert penalized_shares(h, 1.0, -1.0) == pytest.approx((1.0, 1.0))
    assert penalized_shares(h, -1.0, 1.0) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_tcm_value_matches_tcmloss_on_the_full_batch():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 4)) + 2 * rng.normal(size=(5, 4))[rng.integers(0, 5, 200)], None
    y = np.repeat(np.arange(5), 40)
    x = rng.normal(size=(5, 4))[y] * 1.5 + rng.normal(size=(200, 4))
    h = pair_similarities(x, y)
    emb, lab = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for m_pos, m_neg, l_pos, l_neg in [(0.9, 0.5, 1, 1), (0.7, 0.2, 2, 0.5), (0.2, 0.8, 1, 3)]:
        want = float(TCMLoss(m_pos, m_neg, l_pos, l_neg)(emb, lab))
        assert tcm_value(h, m_pos, m_neg, l_pos, l_neg) == pytest.approx(want, abs=2e-3, rel=1e-2)
    # no hard pair on either side: both terms are 0, not NaN
    assert tcm_terms(h, -1.0, 1.0) == (0.0, 0.0)


def test_method_worked_example():
    x, y = np.array([[0, 1], [0.43, 0.9], [1, 0], [0.5, 0.5]]), np.array([0, 0, 1, 1])
    pos, neg = tcm_terms(pair_similarities(x, y, num_bins=200_000), 0.9, 0.5)
    assert pos == pytest.approx(0.19289, abs=1e-4) and neg == pytest.approx(0.32498, abs=1e-4)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TCMError, match="labels have length 4 but embeddings have 3 rows"):
        pair_similarities(np.ones((3, 2)), np.zeros(4))  # the same check and wording as evaluate
    with pytest.raises(TCMError, match="zero-norm"):
        pair_similarities(np.zeros((3, 2)), np.zeros(3))
    h = pair_similarities(np.eye(3), [0, 0, 1])
    with pytest.raises(TCMError, match="margin_pos"):
        penalized_shares(h, 1.5, 0.5)
    with pytest.raises(TCMError, match="lambda_neg"):
        tcm_value(h, 0.9, 0.5, 1.0, -1.0)


def test_histogram_figure_shades_and_annotates():
    rng = np.random.default_rng(0)
    h = pair_similarities(rng.normal(size=(100, 3)), rng.integers(0, 4, 100))
    spec = similarity_histogram_figure(h, 0.8, 0.3).to_dict()
    assert len(spec["data"]) == 2
    shapes = spec["layout"]["shapes"]
    assert {round(s["x1"], 2) for s in shapes if s["type"] == "rect"} >= {0.8, 1.0}
    texts = " ".join(a["text"] for a in spec["layout"]["annotations"])
    share_pos, share_neg = penalized_shares(h, 0.8, 0.3)
    assert f"{100 * share_pos:.1f}%" in texts and f"{100 * share_neg:.1f}%" in texts


def search_trial(number, val_opis, val_r1, change=None, state="COMPLETE", margin_neg=0.3, chosen_on="validation"):
    return TuneTrial(number, state, margin_pos=0.5 + 0.1 * number, margin_neg=margin_neg, objective_opis=val_opis,
                     objective_recall_at_1=val_r1, chosen_on=chosen_on, val_opis=val_opis, val_recall_at_1=val_r1,
                     opis=0.02, recall_at_1=0.7, val_opis_change=change, baseline_val_opis=0.03,
                     baseline_val_recall_at_1=0.75, run_dir=f"/runs/t{number}")


SEARCH = [search_trial(0, 0.030, 0.70, (-20.0, -35.0, -5.0)),  # excludes 0
          search_trial(1, 0.010, 0.80, (-10.0, -25.0, 4.0)),  # within noise; Pareto
          search_trial(2, 0.005, 0.60, (15.0, 2.0, 30.0)),  # excludes 0 (worse); Pareto
          search_trial(3, 0.020, 0.65, (5.0, None, None)),  # no interval
          search_trial(4, None, None, state="FAIL")]  # failed: not drawn


def test_pareto_figure_joins_the_front_and_rings_distinguishable_trials():
    df = trials_frame(SEARCH)
    spec = pareto_figure(df, best=1).to_dict()
    by_name = {t["name"]: t for t in spec["data"]}
    assert sorted(by_name["trials"]["customdata"]) == [0, 1, 2, 3]
    front = by_name["Pareto front"]
    assert list(front["customdata"]) == [2, 1] and front["mode"] == "lines+markers"  # joined, by OPIS
    assert sorted(by_name[DISTINGUISHABLE]["customdata"]) == [0, 2]
    assert list(by_name["suggested"]["customdata"]) == [1]
    assert list(by_name["baseline (same budget)"]["x"]) == [0.03]
    assert "m⁺ 0.6" in front["text"][1] and "test: OPIS" in front["text"][1]
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("validation OPIS")
    old = trials_frame([search_trial(0, 0.01, 0.8, chosen_on="test")])  # runs without validation
    assert pareto_figure(old).to_dict()["layout"]["xaxis"]["title"]["text"].startswith("test OPIS")
    assert "made on test classes" in tune_caption(old) and "validation classes" in tune_caption(df)
    assert pareto_figure(trials_frame([])).data == ()


def test_grid_heatmaps_mark_exactly_the_cells_whose_interval_excludes_zero():
    df = trials_frame(SEARCH)
    fig = grid_heatmaps(df, best=1)
    assert fig.data[0].z[0][0] == 0.03  # the objective (validation), m+ 0.5 row
    spec = fig.to_dict()
    assert [a["text"].split(" (")[0] for a in spec["layout"]["annotations"]] == ["validation OPIS", "validation R@1"]
    marks = [t for t in spec["data"] if t.get("name") == DISTINGUISHABLE]
    assert len(marks) == 1 and sorted(zip(marks[0]["y"], marks[0]["x"])) == [("0.5", "0.3"), ("0.7", "0.3")]
    opis_map = next(t for t in spec["data"] if t["type"] == "heatmap")
    assert sorted(t for row in opis_map["text"] for t in row if t.endswith("*")) == ["0.0050*", "0.0300*"]
    pareto = [t for t in spec["data"] if t.get("name") == "Pareto cells"][0]
    assert sorted(pareto["y"]) == ["0.6", "0.7"]
    assert trial_text(df.iloc[1]).startswith("trial 1: m⁺ 0.6, m⁻ 0.3 · validation OPIS 0.01")


def test_embedding_pair_changes_match_evaluate():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(8), 25)
    centers = rng.normal(size=(8, 6))
    base, tcm = centers[y] + rng.normal(size=(200, 6)), 2 * centers[y] + rng.normal(size=(200, 6))
    settings = EvalSettings(num_thresholds=51, eps=0.25)
    b, t, ch = embedding_pair_changes(base, y, tcm, y, settings)
    eb, et = evaluate(base, y, settings), evaluate(tcm, y, settings)
    assert (b.opis, b.eps_opis) == pytest.approx((eb.opis, eb.eps_opis), rel=1e-9)
    assert (t.opis, t.eps_opis) == pytest.approx((et.opis, et.eps_opis), rel=1e-9)
    assert ch.opis.value == pytest.approx(relative_change(eb.opis, et.opis), rel=1e-9)
    assert ch.eps_opis.value == pytest.approx(relative_change(eb.eps_opis, et.eps_opis), rel=1e-9)
    assert ch.recall_at_1.value == pytest.approx(points_change(eb.recall_at_1, et.recall_at_1), abs=1e-9)
    for iv in (ch.opis, ch.eps_opis, ch.recall_at_1):
        assert iv.low <= iv.value <= iv.high and iv.n == 8


@pytest.fixture(scope="module")
def digits_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("margins")
    train(DIGITS, root / "pair", compare=True)
    return runs.RunPair(root / "pair")


def test_retrain_on_digits_writes_a_pair(digits_pair, tmp_path):
    config = runs.load_config(digits_pair.tcm)
    r = retrain(config, 0.8, 0.4, tmp_path / "re", baseline=digits_pair.baseline)
    assert 0 < r.opis < 1 and 0.3 < r.recall_at_1 <= 1 and 0.3 < r.baseline_recall_at_1 <= 1
    assert runs.find_pairs(tmp_path)[0].root == tmp_path / "re"
    saved = runs.load_config(tmp_path / "re" / "tcm")
    assert (saved.tcm, saved.margin_pos, saved.margin_neg) == (True, 0.8, 0.4)
    tcm, base = runs.load_metrics(tmp_path / "re" / "tcm"), runs.load_metrics(tmp_path / "re" / "baseline")
    assert tcm["opis"] == r.opis
    assert len(tcm["history"]) == 1  # evaluated once
    # validation: the retrained runs' own numbers, and changes with intervals around them
    val, base_val = tcm["validation"], base["validation"]
    assert (r.val_opis, r.val_recall_at_1, r.val_eps_opis) == (val["opis"], val["recall_at_1"], val["eps_opis"])
    assert (r.baseline_val_opis, r.baseline_val_recall_at_1) == (base_val["opis"], base_val["recall_at_1"])
    for changes, t, b in ((r.validation, val, base_val), (r.test, tcm, base)):
        assert changes.opis.value == pytest.approx(relative_change(b["opis"], t["opis"]), rel=1e-6)
        assert changes.recall_at_1.value == pytest.approx(points_change(b["recall_at_1"], t["recall_at_1"]), abs=1e-6)
        for iv in (changes.opis, changes.eps_opis, changes.recall_at_1):
            assert iv.low <= iv.value <= iv.high
    # the intervals from the curves kept while training: those of the saved embeddings, exactly
    assert (r.test, r.validation) == (run_pair_changes(tmp_path / "re", "test", config.eval),
                                      run_pair_changes(tmp_path / "re", "val", config.eval))
    # a baseline copied (reused): its curves computed from its files beside the +TCM training
    again = retrain(config, 0.8, 0.4, tmp_path / "again", baseline=tmp_path / "re" / "baseline", reuse_baseline=True)
    assert again.baseline_opis == r.baseline_opis and again.opis == r.opis  # the same +TCM run, trained alone
    assert (again.test, again.validation) == (r.test, r.validation)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["validation"]["opis"]["value"] == pytest.approx(r.validation.opis.value)
    assert d["test"]["recall_at_1"]["high"] == pytest.approx(r.test.recall_at_1.high)
    lines = retrain_lines(r)
    assert lines[0].startswith("Validation") and lines[1].startswith("Test") and "95% CI" in lines[0]


def test_pair_changes_of_runs_without_validation(digits_pair, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(digits_pair.root, old)
    (old / "tcm" / runs.VAL_EMBEDDINGS).unlink()
    assert run_pair_changes(old, "val") is None
    assert run_pair_changes(old, "test").opis.n == 10
    with pytest.raises(TCMError, match="split"):
        run_pair_changes(old, "validation")
