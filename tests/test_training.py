"""The training engine on the 8x8 digits (seconds): run folders, pairing, resume, stop,
divergence, atomic writes and bad paths."""

import json

import numpy as np
import pytest
import torch

from tcm_core.errors import TCMError
from tcm_core.metrics.evaluation import evaluate
from tcm_core.io import atomic_write, load_embeddings
from tcm_core.training import Callback, TrainConfig, TrainingDiverged, TrainingStopped, train
from tcm_core.training import engine, runs
from tcm_core.training.records import EpochRecord, load_history

FAST = dict(dataset="digits", epochs=2, batch_size=32, samples_per_class=4, embedding_dim=8,
            loss="multi_similarity", device="cpu")


def test_run_folder_contents(tmp_path):
    metrics = train(TrainConfig(**FAST), tmp_path / "run")["baseline"]
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {runs.CONFIG, runs.METRICS, runs.EMBEDDINGS, runs.VAL_EMBEDDINGS,
                                               runs.CHECKPOINT}
    saved = json.loads((run / runs.METRICS).read_text())
    # the validation split's metrics sit beside the test ones, in the file and in every epoch
    val_x, val_y = runs.load_run_embeddings(run, "val")
    assert saved["validation"]["n"] == len(val_x) == len(val_y) and saved["validation"]["opis"] > 0
    assert saved["history"][-1]["val_opis"] == saved["validation"]["opis"]
    assert [h["epoch"] for h in saved["history"]] == [1, 2]
    for key in ("recall_at_1", "opis", "eps_opis", "map_at_r", "t_min", "t_max"):
        assert saved[key] == saved["history"][-1][key] == metrics[key]
    x, y = load_embeddings(run / runs.EMBEDDINGS)
    assert x.shape == (len(y), 8) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    again = evaluate(x, y)  # what `python -m tcm_core evaluate` computes from the file
    assert again.recall_at_1 == saved["recall_at_1"] and again.opis == pytest.approx(saved["opis"], rel=1e-12)
    assert runs.load_config(run) == TrainConfig(**FAST)
    assert saved["recall_at_1"] > 0.5  # 8x8 digits are easy; random embeddings give ~0.1


class Recorder(Callback):
    """Keeps every hook call, to check what the engine hands callbacks."""

    def __init__(self):
        self.calls = []

    def on_run_start(self, run, epochs, steps_per_epoch, start_epoch):
        self.calls.append(("start", run, epochs, start_epoch))

    def on_epoch_end(self, run, record):
        self.calls.append(("epoch", run, record))

    def on_run_end(self, run, metrics):
        self.calls.append(("end", run, metrics))


def test_history_is_typed_epoch_records(tmp_path):
    """Callbacks get EpochRecords; metrics.json stores their dicts, which read back equal."""
    seen = Recorder()
    metrics = train(TrainConfig(**FAST), tmp_path / "run", callback=seen)["baseline"]
    assert [c[:2] for c in seen.calls] == [("start", "baseline"), ("epoch", "baseline"),
                                           ("epoch", "baseline"), ("end", "baseline")]
    records = [c[2] for c in seen.calls if c[0] == "epoch"]
    assert all(type(r) is EpochRecord for r in records) and [r.epoch for r in records] == [1, 2]
    assert load_history(runs.load_metrics(tmp_path / "run")) == records  # a JSON round trip
    assert [EpochRecord.from_dict(h).to_dict() for h in metrics["history"]] == metrics["history"]
    assert records[-1].recall_at_1 == metrics["recall_at_1"] and records[-1].steps > 0
    assert seen.calls[-1][2] == metrics
    with pytest.raises(TCMError, match="lacks"):
        EpochRecord.from_dict({k: v for k, v in metrics["history"][0].items() if k != "opis"})


def test_pair_differs_by_tcm_alone(tmp_path):
    """With both TCM weights at 0 the +TCM run must repeat the baseline bit for bit."""
    cfg = TrainConfig(**FAST, lambda_pos=0.0, lambda_neg=0.0)
    r = train(cfg, tmp_path / "zero", compare=True)
    timeless = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]  # noqa: E731
    assert timeless(r["baseline"]["history"]) == timeless(r["tcm"]["history"])
    xb, _ = load_embeddings(tmp_path / "zero/baseline" / runs.EMBEDDINGS)
    xt, _ = load_embeddings(tmp_path / "zero/tcm" / runs.EMBEDDINGS)
    assert np.array_equal(xb, xt)
    r = train(TrainConfig(**FAST), tmp_path / "real", compare=True)
    assert r["tcm"]["history"][0]["tcm_loss"] > 0 and r["baseline"]["history"][0]["tcm_loss"] == 0
    assert r["tcm"]["opis"] != r["baseline"]["opis"]
    assert [p.root.name for p in runs.find_pairs(tmp_path)] == ["real", "zero"]


def test_resume_extends_history(tmp_path):
    out = tmp_path / "run"
    first = train(TrainConfig(**FAST), out)["baseline"]
    more = train(TrainConfig(**dict(FAST, epochs=3)), out, resume=True)["baseline"]
    assert len(more["history"]) == 3 and more["history"][:2] == first["history"]  # kept as saved
    assert runs.load_checkpoint(out)["epoch"] == 3
    with pytest.raises(TCMError, match="does not exist"):
        train(TrainConfig(**FAST), tmp_path / "fresh", resume=True)


class StopAfter(Callback):
    def __init__(self, steps):
        self.steps, self.seen = steps, 0

    def on_step(self, run, epoch, step, steps, loss):
        self.seen += 1

    def should_stop(self):
        return self.seen >= self.steps


def test_stop_keeps_last_epoch_and_resumes(tmp_path):
    out = tmp_path / "run"
    steps = len(engine._sampler(TrainConfig(**FAST), _prepared(), 0, 1))
    with pytest.raises(TrainingStopped):
        train(TrainConfig(**FAST), out, callback=StopAfter(steps + 3))  # inside epoch 2
    assert runs.load_checkpoint(out)["epoch"] == 1
    assert len(runs.load_metrics(out)["history"]) == 1
    done = train(TrainConfig(**FAST), out, resume=True)["baseline"]
    assert [h["epoch"] for h in done["history"]] == [1, 2]


def _prepared():
    from tcm_core.training.setup import prepare

    return prepare(TrainConfig(**FAST), torch.device("cpu"), Callback())


def test_divergence_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    calls = {"n": 0}
    real_forward = engine.Objective.forward

    def poisoned(self, x, y):
        calls["n"] += 1
        terms = real_forward(self, x, y)
        if calls["n"] > 60:  # well into epoch 2 (digits: ~35 steps per epoch)
            return type(terms)(terms.total * float("nan"), terms.base, terms.tcm)
        return terms

    monkeypatch.setattr(engine.Objective, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(TrainConfig(**FAST), out)
    assert runs.load_checkpoint(out)["epoch"] == 1


def test_atomic_write_never_leaves_half_a_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text('{"ok": 1}')

    def crash(f):
        f.write(b'{"half":')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, crash)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(dataset="folder", data_dir="/nonexistent/tcm"), "nonexistent"),
    (dict(dataset="cub", data_dir="/nonexistent/tcm"), "CUB_200_2011"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=4, samples_per_class=4), "batch_size"),
    (dict(loss="nope"), "unknown"),
])
def test_bad_configs(tmp_path, kwargs, match):
    with pytest.raises(TCMError, match=match):
        train(TrainConfig(**dict(FAST, **kwargs)), tmp_path / "run")
