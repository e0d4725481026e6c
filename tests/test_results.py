"""The results table (issue 10, item 3): one row per comparison under a runs folder, its numbers
equal to the runs' metrics.json, and its exports (CSV, Markdown, LaTeX).

``make_study`` and ``make_pair`` build small run folders from synthetic embeddings (each run's
metrics.json is what ``evaluate`` says about its own embeddings.npz); the page and figure tests
import them from here."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import clustered
from tcm_core.errors import TCMError
from tcm_core.experiments.results import (COLUMNS, comparisons, results_table, studies, to_csv, to_latex,
                                          to_markdown)
from tcm_core.experiments.study import COLUMNS as STUDY_COLUMNS
from tcm_core.experiments.study import load_study
from tcm_core.metrics import evaluate
from tcm_core.training import TrainConfig, runs
from tcm_core.training.repeats import write_summary


def make_run(path, *, loss="multi_similarity", batch=32, seed=0, tcm=False, dataset="digits", spread=(0.3, 1.5)):
    """A finished run folder: config.json, embeddings.npz and metrics.json (with validation).
    The classes depend on the loss (their centers) and the batch size (bigger: tighter), the
    seed adds a little noise, and a pair's two runs differ only in how spread their classes are."""
    config = TrainConfig(dataset=dataset, loss=loss, batch_size=batch, seed=seed, tcm=tcm, embedding_dim=8,
                         samples_per_class=4)
    tight = 1.25 - 0.1 * np.log2(batch / 16)
    key = sum(map(ord, loss))
    (x, y), (vx, vy) = (clustered(key + offset, n=n, classes=8, dim=8, spread=(spread[0] * tight, spread[1] * tight))
                        for offset, n in ((0, 240), (1000, 160)))
    rng = np.random.default_rng(seed)
    x, vx = x + rng.normal(scale=0.15, size=x.shape), vx + rng.normal(scale=0.15, size=vx.shape)
    path.mkdir(parents=True)
    runs.save_config(path, config)
    runs.save_run_embeddings(path, x.astype(np.float32), y)
    metrics = evaluate(x, y).to_dict()
    metrics.update(epochs_done=1, epochs=1, tcm=tcm, loss=loss, dataset=dataset, history=[],
                   validation=evaluate(vx, vy).to_dict())
    runs.save_metrics(path, metrics)
    return config, metrics


def make_pair(folder, **kw):
    """A baseline / +TCM pair in ``folder``; +TCM's classes are spread more evenly."""
    return {side: make_run(folder / side, tcm=side == "tcm", spread=(0.6, 1.0) if side == "tcm" else (0.3, 1.5), **kw)
            for side in runs.PAIR}


def make_study(root, name="demo", losses=("multi_similarity", "arcface"), batches=(16, 64), seeds=(0, 1)):
    """A study folder as the study builder writes it: study.json, study.csv and one repeats
    folder per (loss, batch size) cell with a summary.json."""
    study, rows = root / name, []
    for loss in losses:
        for batch in batches:
            cell = study / f"{loss}-bs{batch}"
            for seed in seeds:
                pair = make_pair(cell / f"seed-{seed}", loss=loss, batch=batch, seed=seed)
                for side, (config, metrics) in pair.items():
                    for split, m in (("test", metrics), ("validation", metrics["validation"])):
                        rows.append(dict(dataset=config.dataset, backbone="small_cnn", loss=loss, batch_size=batch,
                                         seed=seed, tcm=config.tcm, margin_pos=config.margin_pos,
                                         margin_neg=config.margin_neg, lambda_pos=config.lambda_pos,
                                         lambda_neg=config.lambda_neg, split=split,
                                         **{k: m[k] for k in ("recall_at_1", "map_at_r", "opis", "eps_opis")},
                                         run_dir=f"{cell.name}/seed-{seed}/{side}"))
            write_summary(cell)
    (study / "study.json").write_text(json.dumps({"name": name, "losses": list(losses), "batch_sizes": list(batches),
                                                  "seeds": list(seeds)}))
    pd.DataFrame(rows, columns=STUDY_COLUMNS).to_csv(study / "study.csv", index=False)
    assert len(load_study(study)) == len(rows)  # what the study builder's reader accepts
    return study


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_pair(root / "plain", loss="arcface", batch=16)
    for seed in (0, 1, 2):
        make_pair(root / "rep" / f"seed-{seed}", seed=seed)
    write_summary(root / "rep")
    make_study(root, seeds=(0, 1))
    return root


def test_one_row_per_comparison_labelled_as_the_picker(runs_folder):
    df = results_table(runs_folder)
    assert list(df.columns) == COLUMNS
    assert set(df["source"]) == {"plain", "rep", "demo/multi_similarity-bs16", "demo/multi_similarity-bs64",
                                 "demo/arcface-bs16", "demo/arcface-bs64"}
    assert dict(zip(df["source"], df["kind"]))["rep"] == "repeats" and set(df["kind"]) == {"pair", "repeats", "study"}
    assert dict(zip(df["source"], df["seeds"])) == {"plain": 1, "rep": 3, **{s: 2 for s in df["source"] if "/" in s}}
    assert studies(runs_folder) == [runs_folder / "demo"]
    assert [c.source for c in comparisons(runs_folder, "example: ")][-1] == "example: demo/multi_similarity-bs64"
    plain = df.set_index("source").loc["plain"]
    assert (plain["dataset"], plain["backbone"], plain["loss"], plain["batch_size"]) == ("digits", "small_cnn", "arcface", 16)


def test_plain_pair_numbers_equal_its_metrics(runs_folder):
    row = results_table(runs_folder).set_index("source").loc["plain"]
    base, tcm = (runs.load_metrics(runs_folder / "plain" / side) for side in runs.PAIR)
    assert row["R@1 baseline"] == base["recall_at_1"] and row["R@1 +TCM"] == tcm["recall_at_1"]
    assert row["ΔR@1 (pts)"] == pytest.approx(100 * (tcm["recall_at_1"] - base["recall_at_1"]), rel=1e-12)
    assert row["ΔOPIS (%)"] == pytest.approx(100 * (tcm["opis"] - base["opis"]) / base["opis"], rel=1e-12)
    assert row["Δε-OPIS (%)"] == pytest.approx(100 * (tcm["eps_opis"] - base["eps_opis"]) / base["eps_opis"], rel=1e-12)
    assert all(math.isnan(row[f"{c} CI {e}"]) for c in ("ΔR@1 (pts)", "ΔOPIS (%)") for e in ("low", "high"))


@pytest.mark.parametrize("source, folder, seeds", [("rep", "rep", (0, 1, 2)),
                                                    ("demo/arcface-bs64", "demo/arcface-bs64", (0, 1))])
def test_repeats_and_study_cells_mean_and_interval_across_seeds(runs_folder, source, folder, seeds):
    row = results_table(runs_folder).set_index("source").loc[source]
    m = [{side: runs.load_metrics(runs_folder / folder / f"seed-{s}" / side) for side in runs.PAIR} for s in seeds]
    assert row["R@1 baseline"] == pytest.approx(np.mean([x["baseline"]["recall_at_1"] for x in m]), rel=1e-12)
    assert row["R@1 +TCM"] == pytest.approx(np.mean([x["tcm"]["recall_at_1"] for x in m]), rel=1e-12)
    opis = np.array([100 * (x["tcm"]["opis"] - x["baseline"]["opis"]) / x["baseline"]["opis"] for x in m])
    low, high = stats.t.interval(0.95, df=len(seeds) - 1, loc=opis.mean(), scale=stats.sem(opis))
    assert row["ΔOPIS (%)"] == pytest.approx(opis.mean(), rel=1e-12)
    assert (row["ΔOPIS (%) CI low"], row["ΔOPIS (%) CI high"]) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    summary = json.loads((runs_folder / folder / "summary.json").read_text())  # the same numbers as summary.json
    assert row["ΔR@1 (pts)"] == pytest.approx(summary["changes"]["recall_at_1_change_pts"]["mean"], rel=1e-12)
    assert row["Δε-OPIS (%) CI high"] == pytest.approx(summary["changes"]["eps_opis_change_pct"]["ci_high"], rel=1e-12)


def test_validation_split_reads_the_validation_metrics(runs_folder):
    row = results_table(runs_folder, split="validation").set_index("source").loc["plain"]
    assert row["R@1 baseline"] == runs.load_metrics(runs_folder / "plain" / "baseline")["validation"]["recall_at_1"]
    with pytest.raises(TCMError, match="split must be"):
        results_table(runs_folder, split="train")


def test_empty_or_missing_folder_gives_an_empty_table(tmp_path):
    assert results_table(tmp_path).empty and list(results_table(tmp_path / "nope").columns) == COLUMNS


def test_csv_parses_back_to_the_same_numbers(runs_folder):
    df = results_table(runs_folder)
    back = pd.read_csv(io.StringIO(to_csv(df)))
    assert list(back.columns) == COLUMNS and len(back) == len(df)
    np.testing.assert_allclose(back["ΔOPIS (%)"], df["ΔOPIS (%)"], rtol=1e-5)
    np.testing.assert_allclose(back["R@1 +TCM"], df["R@1 +TCM"], rtol=1e-5)
    assert back.loc[back["source"] == "plain", "ΔOPIS (%) CI low"].isna().all()


def test_markdown_has_a_header_rule_and_one_line_per_row(runs_folder):
    df = results_table(runs_folder)
    lines = to_markdown(df).strip().splitlines()
    assert len(lines) == 2 + len(df)
    assert lines[0].startswith("| Source |") and "ΔOPIS (%)" in lines[0]
    assert set(lines[1].replace("|", "")) <= set("-:")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    rep = next(line for line in lines if line.startswith("| rep |"))
    row = df.set_index("source").loc["rep"]
    assert f"{100 * row['R@1 baseline']:.1f}" in rep and f"{row['ΔOPIS (%)']:+.1f} [" in rep  # with its interval


def test_latex_is_a_tabular_with_escaped_text(runs_folder):
    df = results_table(runs_folder)
    tex = to_latex(df)
    assert tex.startswith(r"\begin{tabular}{") and tex.rstrip().endswith(r"\end{tabular}")
    assert r"multi\_similarity" in tex and r"$\Delta$OPIS (\%)" in tex
    assert sum(line.endswith(r"\\") for line in tex.splitlines()) == 1 + len(df)
    assert all(line.count("&") - line.count(r"\&") == 10 for line in tex.splitlines() if line.endswith(r"\\"))


def test_a_trained_repeats_folder(tmp_path):
    """Real runs (tiny digits pairs) read the same way as the synthetic ones."""
    from tcm_core.training.repeats import train_repeats

    config = TrainConfig(dataset="digits", loss="multi_similarity", embedding_dim=8, batch_size=32,
                         samples_per_class=4, epochs=1, device="cpu", max_train_samples=400)
    summary = train_repeats(config, tmp_path / "tiny", [0, 1])
    row = results_table(tmp_path).set_index("source").loc["tiny"]
    assert (row["kind"], row["dataset"], row["backbone"], row["batch_size"], row["seeds"]) == \
        ("repeats", "digits", "small_cnn", 32, 2)
    assert row["R@1 +TCM"] == pytest.approx(np.mean([s["tcm"]["recall_at_1"] for s in summary["per_seed"]]), rel=1e-12)
    for column, key in (("ΔOPIS (%)", "opis_change_pct"), ("ΔR@1 (pts)", "recall_at_1_change_pts")):
        got = summary["changes"][key]
        assert (row[column], row[f"{column} CI low"], row[f"{column} CI high"]) == \
            (pytest.approx(got["mean"], rel=1e-12), pytest.approx(got["ci_low"], rel=1e-12), pytest.approx(got["ci_high"], rel=1e-12))
