"""``python -m tcm_core train`` end to end: the MNIST ArcFace toy, torchrun with 2 CPU
processes, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED
from tcm_core.evaluate import evaluate
from tcm_core.io import load_embeddings


def run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TCM_CACHE_DIR=str(ROOT / ".cache" / "test-features"))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def test_mnist_arcface_toy(tmp_path):
    """The issue's acceptance command: 1 epoch on 5,000 MNIST digits, 3-D ArcFace + TCM."""
    out = run("-m", "tcm_core", "train", "--dataset", "mnist", "--data-dir", SHARED / "data",
              "--loss", "arcface", "--embedding-dim", "3", "--tcm", "--epochs", "1",
              "--max-train-samples", "5000", "--out", tmp_path / "toy")
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads((tmp_path / "toy/metrics.json").read_text())
    assert metrics["n"] == 10000 and metrics["dim"] == 3 and metrics["tcm"] is True
    assert metrics["recall_at_1"] >= 0.85
    x, y = load_embeddings(tmp_path / "toy/embeddings.npz")
    again = evaluate(x, y)
    assert again.recall_at_1 == metrics["recall_at_1"]
    assert again.opis == pytest.approx(metrics["opis"], rel=1e-9)


def test_torchrun_two_cpu_processes(tmp_path):
    out = run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              "-m", "tcm_core", "train", "--dataset", "digits", "--device", "cpu", "--epochs", "2",
              "--batch-size", "32", "--samples-per-class", "4", "--loss", "multi_similarity",
              "--embedding-dim", "8", "--compare", "--out", tmp_path / "ddp")
    assert out.returncode == 0, out.stderr[-3000:]
    for side in ("baseline", "tcm"):
        m = json.loads((tmp_path / "ddp" / side / "metrics.json").read_text())
        assert m["epochs_done"] == 2 and m["n"] == 540  # every test sample gathered once
        assert m["history"][0]["steps"] == 19  # each rank took half of the ~39 batches
        assert m["recall_at_1"] > 0.5


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "folder", "--data-dir", "/nonexistent/birds"], "/nonexistent/birds"),
    (["--dataset", "sop", "--data-dir", "/nonexistent/sop"], "Stanford_Online_Products"),
    (["--epochs", "0"], "epochs"),
    (["--resume"], "--resume needs --out"),
    (["--loss-option", "margin_rad"], "KEY=VALUE"),
])
def test_bad_input_one_line_exit_2(args, needle):
    out = run("-m", "tcm_core", "train", "--dataset", "digits", *args)
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1] == errors[0]  # progress notes may precede it
