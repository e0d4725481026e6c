"""``python -m tcm_core evaluate``: JSON contract, agreement with the reference, bad files."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from conftest import ROOT, clustered

KEYS = {"n", "dim", "n_classes", "skipped_classes", "recall_at_1", "opis", "eps_opis", "t_min",
        "t_max", "far_range", "beta", "eps", "num_thresholds"}


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tcm_core", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_json_agrees_with_reference(tmp_path):
    x, y = clustered(11, n=350, classes=12, dim=10)
    y = np.concatenate([y, [99]])  # one singleton class: reported, left out of OPIS
    x = np.concatenate([x, np.ones((1, 10))])
    f = tmp_path / "e.npz"
    np.savez(f, embeddings=x.astype(np.float32), labels=y)
    out = cli("evaluate", f, "--json", "--far-range", "0.005", "0.2", "--num-thresholds", "101",
              "--beta", "1.5", "--eps", "0.25")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert KEYS <= set(got)
    r = ref.evaluate(x.astype(np.float32), y, far_range=(0.005, 0.2), k=101, beta=1.5, eps=0.25)
    assert got["opis"] == pytest.approx(r["opis"], rel=2e-3)
    assert got["eps_opis"] == pytest.approx(r["eps_opis"], rel=2e-3)
    assert got["t_min"] == pytest.approx(r["t_min"], abs=1e-4)
    assert got["t_max"] == pytest.approx(r["t_max"], abs=1e-4)
    assert got["recall_at_1"] == r["recall_at_1"]
    assert (got["n"], got["dim"], got["n_classes"], got["skipped_classes"]) == (351, 10, 12, 1)
    assert got["far_range"] == [0.005, 0.2] and got["num_thresholds"] == 101
    # bootstrap intervals over the classes bracket the point values
    assert got["opis_ci"][0] < got["opis"] < got["opis_ci"][1]
    assert got["eps_opis_ci"][0] < got["eps_opis"] < got["eps_opis_ci"][1]


def test_readable_summary_and_distance_range(tmp_path):
    x, y = clustered(12, n=120)
    f = tmp_path / "e.npz"
    np.savez(f, embeddings=x, labels=np.array([f"c{v}" for v in y]))
    out = cli("evaluate", f, "--distance-range", "0.5", "1.5")
    assert out.returncode == 0, out.stderr
    assert "OPIS" in out.stdout and "R@1" in out.stdout and "[0.5000, 1.5000]" in out.stdout
    assert "95% bootstrap over classes" in out.stdout


def _bad_files(tmp):
    x, y = clustered(13, n=40, classes=3)
    (tmp / "text.npz").write_text("not numpy at all")
    (tmp / "empty.npz").write_bytes(b"")
    np.save(tmp / "single.npy", x)
    np.savez(tmp / "missing.npz", embeddings=x)
    np.savez(tmp / "nan.npz", embeddings=np.where(x > 1, np.nan, x), labels=y)
    np.savez(tmp / "shape.npz", embeddings=x[:, 0], labels=y)
    np.savez(tmp / "length.npz", embeddings=x, labels=y[:-3])
    np.savez(tmp / "nrows.npz", embeddings=np.zeros((0, 3)), labels=np.zeros(0))
    np.savez(tmp / "object.npz", embeddings=x, labels=np.array([object()] * len(y), dtype=object))
    (tmp / "pickle.npz").write_bytes(pickle.dumps({"embeddings": x, "labels": y}))
    np.savez(tmp / "oneclass.npz", embeddings=x, labels=np.zeros(len(y), int))
    z = x.copy(); z[3] = 0
    np.savez(tmp / "zero.npz", embeddings=z, labels=y)
    return {
        "text.npz": "not an .npz", "empty.npz": "not", "single.npy": "single .npy",
        "missing.npz": "lacks array", "nan.npz": "NaN", "shape.npz": "shape", "length.npz": "match",
        "nrows.npz": "empty", "object.npz": "pickle", "pickle.npz": "not an .npz",
        "oneclass.npz": "at least 2 classes", "zero.npz": "zero-norm", "nofile.npz": "not found",
    }


def test_bad_files_one_line_exit_2(tmp_path):
    for name, needle in _bad_files(tmp_path).items():
        out = cli("evaluate", tmp_path / name)
        assert out.returncode == 2, (name, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, out.stderr)
        assert needle in lines[0], (name, lines[0])
        assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args,needle", [
    (["--far-range", "0.2", "0.1"], "far_range"), (["--far-range", "0", "1.5"], "far_range"),
    (["--distance-range", "1.5", "0.5"], "distance_range"), (["--num-thresholds", "1"], "num_thresholds"),
    (["--eps", "1"], "eps"), (["--eps", "0"], "eps"), (["--beta", "-1"], "beta"),
    (["--far-range", "0.1", "0.2", "--distance-range", "0.1", "1"], "not allowed"),
    (["--num-thresholds", "ten"], "invalid int"),
])
def test_bad_options_one_line_exit_2(tmp_path, args, needle):
    x, y = clustered(14, n=40, classes=3)
    np.savez(tmp_path / "ok.npz", embeddings=x, labels=y)
    out = cli("evaluate", tmp_path / "ok.npz", *args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr, out.stderr


def test_help_lists_every_subcommand():
    """`python -m tcm_core --help` (and each subcommand's) prints, exit 0: no help text may trip
    argparse's %-formatting."""
    out = cli("--help")
    assert out.returncode == 0, out.stderr
    for name in ("evaluate", "threshold", "compare", "suggest-margins", "train", "study", "tune"):
        assert name in out.stdout
    from tcm_core.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert parser.format_help(), name
