"""``python -m tcm_core train`` end to end: the MNIST ArcFace toy, torchrun with 2 CPU
processes, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED
from tcm_core.metrics.evaluation import evaluate
from tcm_core.io import load_embeddings


def run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TCM_CACHE_DIR=str(ROOT / ".cache" / "test-features"))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def test_mnist_arcface_toy(tmp_path):
    """The issue's acceptance command: 1 epoch on 5,000 MNIST digits, 3-D ArcFace +TCM."""
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
        assert m["history"][0]["steps"] == _half_of_one_process_batches()  # each rank took half
        assert m["recall_at_1"] > 0.5


def _half_of_one_process_batches() -> int:
    """Half the batches one process takes per epoch in the torchrun test (from the data, so it
    follows changes to the digits splits)."""
    import torch

    from tcm_core.training import Callback, TrainConfig, engine
    from tcm_core.training.setup import prepare

    cfg = TrainConfig(dataset="digits", device="cpu", batch_size=32, samples_per_class=4,
                      loss="multi_similarity", embedding_dim=8)
    prepared = prepare(cfg, torch.device("cpu"), Callback())
    one, two = (len(engine._sampler(cfg, prepared, 0, world)) for world in (1, 2))
    assert two == one // 2
    return two


def test_progress_bars_are_a_callback(capsys):
    """The CLI's bars take the engine's hooks, the epoch record by attribute, on stderr only."""
    from tcm_core.training import Callback
    from tcm_core.training.cli import ProgressBars
    from tcm_core.training.records import EpochRecord

    bars = ProgressBars()
    assert isinstance(bars, Callback) and not bars.should_stop()
    bars.on_stage("loading digits")
    bars.on_run_start("tcm", epochs=2, steps_per_epoch=3, start_epoch=1)
    bars.on_step("tcm", 1, 1, 3, 0.5)
    bars.on_epoch_end("tcm", EpochRecord(epoch=2, loss=0.5, base_loss=0.4, tcm_loss=0.1, steps=3,
                                         recall_at_1=0.9, map_at_r=0.8, opis=0.001, eps_opis=0.002,
                                         t_min=0.1, t_max=1.2, seconds=1.0))
    bars.on_run_end("tcm", {})
    bars.close()
    out = capsys.readouterr()
    assert out.out == "" and "loading digits" in out.err
    assert "tcm epoch 2: R@1 0.9000  OPIS 0.001000  eps-OPIS 0.002000  loss 0.5000" in out.err


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
