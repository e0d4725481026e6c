"""tcm_core.margins and tcm_core.sweep: histogram answers against direct counts and TCMLoss,
a quick retrain and a 2x2 sweep on the 8x8 digits (real training), Pareto cells by hand."""

import json

import numpy as np
import pytest
import torch

from tcm_core.errors import TCMError
from tcm_core.losses.tcm import TCMLoss
from tcm_core.margins import pair_similarities, penalized_shares, retrain, tcm_terms, tcm_value
from tcm_core.sweep import MarginSweep, SweepCell, best_cell, load_sweep, pareto_cells
from tcm_core.training import TrainConfig, runs, train
from tcm_core.viz.margins import similarity_histogram_figure, sweep_heatmaps

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
    with pytest.raises(TCMError, match="embeddings must be"):
        pair_similarities(np.zeros((3, 2)), np.zeros(4))
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


def test_pareto_cells_by_hand():
    cells = [SweepCell(0.9, 0.5, opis=0.010, recall_at_1=0.80, eps_opis=0, run_dir="a"),
             SweepCell(0.9, 0.4, opis=0.020, recall_at_1=0.85, eps_opis=0, run_dir="b"),
             SweepCell(0.8, 0.5, opis=0.030, recall_at_1=0.82, eps_opis=0, run_dir="c"),  # dominated by b
             SweepCell(0.8, 0.4, opis=0.010, recall_at_1=0.78, eps_opis=0, run_dir="d"),  # tie on OPIS with a
             SweepCell(0.7, 0.5, opis=0.005, recall_at_1=0.70, eps_opis=0, run_dir="e")]
    assert [c.run_dir for c in pareto_cells(cells)] == ["a", "b", "d", "e"]
    assert best_cell(cells).run_dir == "b"
    assert best_cell(cells, r1_tolerance=0.06).run_dir == "a"
    assert pareto_cells([]) == [] and best_cell([]) is None


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
    assert runs.load_metrics(tmp_path / "re" / "tcm")["opis"] == r.opis
    assert len(runs.load_metrics(tmp_path / "re" / "tcm")["history"]) == 1  # evaluated once


def test_sweep_2x2_on_digits(digits_pair, tmp_path):
    config = runs.load_config(digits_pair.tcm)
    sweep = MarginSweep(config, tmp_path / "sw", (0.8, 0.9), (0.3, 0.5), baseline=digits_pair.baseline).start()
    assert sweep.wait(120)
    snap = sweep.snapshot()
    assert snap.status == "finished" and snap.error is None and snap.fraction == 1.0
    assert [(c.margin_pos, c.margin_neg) for c in snap.results] == [(0.8, 0.3), (0.8, 0.5), (0.9, 0.3), (0.9, 0.5)]
    for c in snap.results:  # each cell is a run pair with its margins
        assert runs.load_config(f"{c.run_dir}/tcm").margin_pos == c.margin_pos
        assert runs.load_metrics(f"{c.run_dir}/tcm")["opis"] == c.opis
    front = pareto_cells(snap.results)
    for c in snap.results:
        dominated = any(o.opis < c.opis and o.recall_at_1 > c.recall_at_1 for o in snap.results)
        assert (c in front) != dominated
    saved = load_sweep(tmp_path / "sw")
    assert saved["results"] == list(snap.results) and saved["pareto"] == front
    assert json.loads((tmp_path / "sw" / "sweep.json").read_text())["status"] == "finished"
    spec = sweep_heatmaps(snap.results, best_cell(snap.results)).to_dict()
    assert [t["type"] for t in spec["data"]].count("heatmap") == 2


def test_sweep_stops(digits_pair, tmp_path):
    sweep = MarginSweep(runs.load_config(digits_pair.tcm), tmp_path / "sw", (0.7, 0.8, 0.9), (0.3, 0.5))
    sweep.stop()
    sweep.start()
    assert sweep.wait(60)
    assert sweep.snapshot().status == "stopped" and len(sweep.snapshot().results) < 6
