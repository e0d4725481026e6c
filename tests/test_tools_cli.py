"""``python -m tcm_core threshold | compare | suggest-margins`` (``tcm_core.tools``): each
subcommand's happy path in a subprocess, agreeing with the library, and bad input as one
``error:`` line with exit status 2. The readable summaries are checked in-process."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, clustered

from tcm_core.metrics import EvalSettings
from tcm_core.metrics.suggest import suggest_margins
from tcm_core.metrics.thresholds import find_threshold
from tcm_core.tools.compare_cli import compare_embeddings, format_comparison
from tcm_core.tools.suggest_cli import format_suggestion
from tcm_core.tools.threshold_cli import format_threshold


def cli(*args):
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run([sys.executable, "-m", "tcm_core", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def assert_bad_input(out, *needles):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert out.stdout == ""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tools")
    (x, y), (x2, y2) = clustered(31, n=160, classes=7, dim=6), clustered(32, n=150, classes=7, dim=6)
    np.savez(tmp / "before.npz", embeddings=x, labels=y)
    np.savez(tmp / "after.npz", embeddings=x2, labels=y2)
    return tmp, (x, y), (x2, y2)


def test_threshold_json_and_csv(files):
    tmp, (x, y), _ = files
    out = cli("threshold", tmp / "before.npz", "--far", "1e-2", "--json", "--csv", tmp / "classes.csv")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = find_threshold(x, y, far=1e-2)
    assert {"threshold", "far", "frr", "classes"} <= set(got)
    assert got["threshold"] == want.threshold and got["far"] == want.far <= 1e-2
    assert got["frr"] == want.frr and got["target_far"] == 1e-2 and got["target_frr"] is None
    assert got["classes"] == want.class_records()
    assert set(got["classes"][0]) == {"class", "size", "far", "frr"}
    csv = (tmp / "classes.csv").read_text().splitlines()
    assert csv[0] == "class,size,far,frr" and len(csv) == 1 + len(got["classes"])
    assert int(csv[1].split(",")[0]) == got["classes"][0]["class"]


def test_compare_json(files):
    tmp, before, after = files
    out = cli("compare", tmp / "before.npz", tmp / "after.npz", "--json", "--far-range", "1e-2", "0.2")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = compare_embeddings(before, after, EvalSettings(far_range=(1e-2, 0.2)))
    for side in ("before", "after"):
        assert {"recall_at_1", "map_at_r", "opis", "eps_opis"} <= set(got[side])
        assert got[side]["file"].endswith(f"{side}.npz")
        assert {k: v for k, v in got[side].items() if k != "file"} == pytest.approx(want[side])
    assert set(got["changes"]) == {"recall_at_1_change_pts", "map_at_r_change_pts", "opis_change_pct",
                                   "eps_opis_change_pct"}
    for name, change in got["changes"].items():
        assert {"value", "low", "high"} <= set(change)
        assert change["value"] == pytest.approx(want["changes"][name]["value"])
    opis = got["changes"]["opis_change_pct"]
    assert opis["value"] == pytest.approx(100 * (got["after"]["opis"] / got["before"]["opis"] - 1))
    assert opis["low"] <= opis["value"] <= opis["high"]
    assert got["settings"]["far_range"] == [1e-2, 0.2]


def test_suggest_margins_json(files):
    tmp, (x, y), _ = files
    out = cli("suggest-margins", tmp / "before.npz", "--far", "0.01", "--frr", "0.1", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got == pytest.approx(suggest_margins(x, y, far=0.01, frr=0.1).to_dict())
    assert {"margin_neg", "margin_pos", "share_neg", "share_pos", "far", "frr"} <= set(got)


def test_bad_input_threshold(files):
    tmp, _, _ = files
    assert_bad_input(cli("threshold", tmp / "before.npz"), "--far", "--frr")


def test_bad_input_compare(files):
    tmp, (x, y), _ = files
    np.savez(tmp / "other.npz", embeddings=x, labels=y + 100)  # no class in common
    assert_bad_input(cli("compare", tmp / "before.npz", tmp / "other.npz"), "share 0")


def test_bad_input_suggest_margins(files):
    tmp, (x, y), _ = files
    (tmp / "pickled.npz").write_bytes(pickle.dumps({"embeddings": x, "labels": y}))
    assert_bad_input(cli("suggest-margins", tmp / "pickled.npz"), "never loaded")


def test_readable_summaries(files):
    _, before, after = files
    text = format_threshold(find_threshold(*before, frr=0.2), "f.npz")
    assert "the smallest with global FRR <= 0.2" in text and "highest FRR first" in text
    assert text.splitlines()[0] == "f.npz" and "cosine similarity >=" in text
    text = format_comparison(compare_embeddings(before, after))
    assert all(w in text for w in ("R@1", "MAP@R", "OPIS", "0.1-OPIS", "paired bootstrap"))
    text = format_suggestion(suggest_margins(*before), "f.npz")
    assert "m- = " in text and "m+ = " in text and "--tcm --margin-pos" in text
