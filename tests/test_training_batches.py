"""How inputs reach the model (training.batches), the losses read back in windows (engine's
``StepLosses``, the GPU path run on the CPU), the pair trained side by side (pair_threads)
against one run after the other, and torch's thread count across the metrics."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tcm_core.data import ClassBalancedBatchSampler
from tcm_core.data.small import TensorImageDataset
from tcm_core.data.workers import loader_options
from tcm_core.io import load_embeddings
from tcm_core.training import Callback, TrainConfig, TrainingDiverged, engine, pair_threads, runs, train
from tcm_core.training.batches import TrainBatches, eval_chunks, in_memory
from tcm_core.tasks.retrain import RetrainTask
from tcm_core.training.retrain import ProgressCallback

DIGITS = dict(dataset="digits", epochs=1, batch_size=32, samples_per_class=4, embedding_dim=8,
              loss="multi_similarity", device="cpu", tcm=True)
CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a CUDA device object needs no GPU


class Files(Dataset):
    """Items computed one at a time, like decoded image files (a transform on each)."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i] * 2 - 1, int(self.labels[i])


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(6), 9)
    return torch.randn(len(labels), 1, 8, 8, generator=g), labels


def plain_batches(dataset, sampler):
    return [(x, y) for x, y in DataLoader(dataset, batch_sampler=sampler)]


def test_every_path_fetches_what_the_per_item_loader_fetches(data):
    images, labels = data
    sampler = ClassBalancedBatchSampler(labels, 3, 3, seed=1)
    memory = TensorImageDataset(images, labels)
    files = Files(images, labels)
    want = plain_batches(memory, sampler)
    assert in_memory(memory) is not None and in_memory(files) is None
    batches = TrainBatches(memory, labels, sampler, CPU)
    assert batches.loader is None and len(batches) == len(want)  # indexed, no DataLoader
    for (x, y), (wx, wy) in zip(batches, want, strict=True):
        assert torch.equal(x, wx) and torch.equal(y, wy) and y.dtype == torch.long
    loaded = TrainBatches(files, labels, sampler, CPU)
    assert loaded.loader is not None
    for (x, y), (wx, wy) in zip(loaded, plain_batches(files, sampler), strict=True):
        assert torch.equal(x, wx) and torch.equal(y, wy)
    features = torch.randn(len(labels), 5, generator=torch.Generator().manual_seed(2))
    for (x, y), idx in zip(TrainBatches(features, labels, sampler, CPU, features=True), sampler, strict=True):
        assert torch.equal(x, features[idx]) and torch.equal(y, torch.tensor(labels[idx]))
    sampler.set_epoch(1)  # a new epoch, or a new sampler, is what the next pass draws
    assert [y.tolist() for _, y in batches] == [y.tolist() for _, y in plain_batches(memory, sampler)]
    other = ClassBalancedBatchSampler(labels, 2, 2, seed=5)
    batches.sampler = other
    assert [y.tolist() for _, y in batches] == [y.tolist() for _, y in plain_batches(memory, other)]
    assert in_memory(TensorDataset(images, torch.tensor(labels))) is not None


def test_eval_chunks_keep_the_order_of_the_indices(data):
    images, labels = data
    share = np.arange(3, 50)
    for inputs, features in ((TensorImageDataset(images, labels), False), (Files(images, labels), False),
                             (images.flatten(1), True)):
        got = torch.cat(list(eval_chunks(inputs, share, CPU, features=features)))
        want = images.flatten(1)[share] if features else torch.stack([inputs[int(i)][0] for i in share])
        assert torch.equal(got, want)


def test_loader_options_on_cuda_use_workers_and_pinned_memory(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    cuda = loader_options(CUDA)
    assert cuda["pin_memory"] and cuda["num_workers"] == 8 and cuda["prefetch_factor"] >= 2
    assert loader_options(CUDA, world=4)["num_workers"] == 3  # four processes share 16 cores
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert loader_options(CUDA)["num_workers"] == 1
    assert loader_options(CPU) == {"num_workers": 2}


class Seen(Callback):
    def __init__(self):
        self.steps = []

    def on_step(self, run, epoch, step, steps, loss):
        self.steps.append((step, loss))


class StubTrainer:
    """What ``StepLosses`` reads of a trainer; ``device`` decides how often it reads back."""

    name, run_dir = "tcm", "runs/x"
    diverged = engine.RunTrainer.diverged

    def __init__(self, device):
        self.device, self.callback = device, Seen()


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_step_losses_report_every_step_in_order_however_often_they_are_read(device):
    rows = torch.tensor([[1.0, 0.75, 0.25], [3.0, 2.0, 1.0], [2.0, 2.0, 0.0]] * 20)  # 60 steps
    trainer = StubTrainer(device)
    log = engine.StepLosses(trainer, 0, len(rows))
    for i, row in enumerate(rows):
        log.add(row.clone())
        # on CUDA nothing is read back until 25 steps are waiting: no sync per step
        assert len(trainer.callback.steps) == (i + 1 if device.type == "cpu" else 25 * ((i + 1) // 25))
    means = log.close()
    running = np.cumsum(rows[:, 0].double().numpy()) / np.arange(1, 61)
    assert [s for s, _ in trainer.callback.steps] == list(range(1, 61))
    assert [loss for _, loss in trainer.callback.steps] == pytest.approx(running, rel=1e-12)
    assert means == pytest.approx(dict(loss=2.0, base_loss=1.5833333, tcm_loss=0.4166667, steps=60))


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_step_losses_name_the_first_nan_step(device):
    log = engine.StepLosses(StubTrainer(device), 2, 40)
    with pytest.raises(TrainingDiverged, match="at epoch 3, step 8;"):
        for i in range(40):
            log.add(torch.tensor([float("nan") if i >= 7 else 1.0, 1.0, 0.0]))
        log.close()


def timeless(metrics):
    skip = {"seconds", "train_seconds"}
    return {k: ([{a: b for a, b in h.items() if a not in skip} for h in v] if k == "history" else v)
            for k, v in metrics.items() if k not in skip}


def test_side_by_side_pair_repeats_one_after_the_other_bit_for_bit(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(**DIGITS)
        alone = train(cfg, tmp_path / "alone", compare=True, eval_last_only=True)
        assert torch.get_num_threads() == 1  # the metrics' numba kernels did not change it
        used = []
        real = pair_threads.fit_side_by_side
        monkeypatch.setattr(pair_threads, "fit_side_by_side", lambda t: used.append(1) or real(t))
        scores = {}
        both = train(cfg, tmp_path / "both", compare=True, eval_last_only=True, side_by_side=True, scores=scores)
        assert used == [1] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    for run in runs.PAIR:
        assert timeless(both[run]) == timeless(alone[run])
        for name in (runs.EMBEDDINGS, runs.VAL_EMBEDDINGS):
            x, _ = load_embeddings(tmp_path / "alone" / run / name)
            y, _ = load_embeddings(tmp_path / "both" / run / name)
            assert np.array_equal(x, y)
        assert scores[run]["test"].scores.opis == both[run]["opis"]
        assert scores[run]["test"].hits.recall_at_1 == pytest.approx(both[run]["recall_at_1"], abs=1e-12)
    assert both["tcm"]["opis"] != both["baseline"]["opis"]


def test_side_by_side_only_where_nothing_else_could_differ(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        session = engine.Session.open(TrainConfig(**DIGITS), Callback(), eval_last_only=True)
        model = engine.InitialWeights(session).model
        assert pair_threads.can_share(session, 2, model)
        assert not pair_threads.can_share(session, 1, model)
        assert not pair_threads.can_share(session, 2, torch.nn.Sequential(model, torch.nn.Dropout(0.1)))
        every_epoch = engine.Session.open(TrainConfig(**DIGITS), Callback(), eval_last_only=False)
        assert not pair_threads.can_share(every_epoch, 2, model)
        torch.set_num_threads(2)
        assert not pair_threads.can_share(session, 2, model)  # two runs of two threads on two cores
    finally:
        torch.set_num_threads(threads)


def test_progress_of_runs_side_by_side_is_their_mean():
    seen = []
    cb = ProgressCallback(lambda f, t: seen.append(round(f, 3)))
    for run in runs.PAIR:
        cb.on_run_start(run, 1, 20, 0)
    cb.on_step("baseline", 0, 10, 20, 1.0)
    cb.on_step("tcm", 0, 20, 20, 1.0)
    cb.on_run_end("tcm", {})
    cb.on_step("baseline", 0, 20, 20, 1.0)
    assert seen == [0.25, 0.75, 1.0]


def test_a_retrain_task_reports_the_progress_callbacks_fraction(tmp_path):
    # the task is its own ProgressCallback: a finished run leaves the mean (on_run_end) and
    # should_stop is the task's
    task = RetrainTask(TrainConfig(**DIGITS), 0.8, 0.4, tmp_path / "re")
    seen = []
    for run in runs.PAIR:
        task.on_run_start(run, 1, 40, 0)
    for hook, args in (("on_step", ("baseline", 0, 10, 40, 1.0)), ("on_step", ("tcm", 0, 40, 40, 1.0)),
                       ("on_run_end", ("tcm", {})), ("on_step", ("baseline", 0, 30, 40, 1.0))):
        getattr(task, hook)(*args)
        seen.append(task.snapshot().fraction)
    assert seen == [0.125, 0.625, 0.625, 0.75]  # not (1 + 0.75) / 2 once tcm has ended
    assert task.snapshot().stage == "training baseline: epoch 1/1, step 30/40"
    assert not task.should_stop()
    task.stop()
    assert task.should_stop()
