"""Studies (issue 10, item 1): every loss x batch size x seed with and without TCM on the 8x8
digits, its table against the runs' metrics.json, resuming after a stop without retraining,
refused specs, the CLI's bad input and the background task."""

import json
import time

import pandas as pd
import pytest
import torch

from tcm_core.cli import _Parser
from tcm_core.errors import TCMError
from tcm_core.experiments.study import (
    COLUMNS,
    StudyCallback,
    StudySpec,
    cell_name,
    collect_study,
    load_study,
    run_study,
)
from tcm_core.experiments.study_cli import add_study_parser, spec_from_args
from tcm_core.losses import BASE_LOSSES
from tcm_core.tasks.base import TERMINAL, TaskStatus
from tcm_core.tasks.study import StudyProgress, StudyTask
from tcm_core.tasks.training_job import RunProgress
from tcm_core.training import TrainConfig, TrainingStopped, runs

FAST = dict(dataset="digits", embedding_dim=8, epochs=1, samples_per_class=4, device="cpu",
            max_train_samples=200, max_test_samples=200)
LOSSES, BATCHES, SEEDS = ("multi_similarity", "contrastive"), (16, 32), (0, 1)
CELLS = [f"{loss}-bs{b}" for loss in LOSSES for b in BATCHES]
RUNS = [f"{c}/seed-{s}/{side}" for c in CELLS for s in SEEDS for side in runs.PAIR]
TIMEOUT = 180  # seconds; generous because the 2 cores may be shared


def spec(**changes):
    kw = dict(base=TrainConfig(**FAST), losses=LOSSES, batch_sizes=BATCHES, seeds=SEEDS)
    return StudySpec(**{**kw, **changes})


class Recorder(StudyCallback):
    """Counts what the study reports; ``stop_after`` finished runs, it asks to stop."""

    def __init__(self, stop_after=None):
        self.stop_after, self.started, self.stepped, self.ended, self.stages, self.cells = stop_after, [], set(), [], [], []

    def on_stage(self, text, done=0, total=0):
        self.stages.append(text)

    def on_cell_start(self, cell, index, total):
        self.cells.append(("start", cell, index, total))

    def on_cell_end(self, cell, index, total):
        self.cells.append(("end", cell, index, total))

    def on_run_start(self, run, epochs, steps_per_epoch, start_epoch):
        self.started.append((run, start_epoch))

    def on_step(self, run, epoch, step, steps, loss):
        self.stepped.add(run)

    def on_run_end(self, run, metrics):
        self.ended.append(run)

    def should_stop(self):
        return self.stop_after is not None and len(self.ended) >= self.stop_after


def mtimes(out, names):
    return {n: (out / n / runs.METRICS).stat().st_mtime_ns for n in names}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tiny runs take ~10 ms a step on one thread, and 5 to 50 times longer on two
    threads when other processes share the cores; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def study(tmp_path_factory, one_thread):
    """A study stopped after its first cell and one more run, then resumed to the end."""
    out = tmp_path_factory.mktemp("study") / "s"
    first = Recorder(stop_after=5)  # cell 1 (2 seeds x 2 runs), then the next cell's first baseline
    with pytest.raises(TrainingStopped):
        run_study(spec(), out, callback=first)
    stopped_table = load_study(out)
    finished = first.ended[:]
    before = mtimes(out, finished)
    again = Recorder()
    table = run_study(spec(), out, callback=again)
    return dict(out=out, first=first, again=again, finished=finished, before=before,
                stopped_table=stopped_table, table=table)


def test_table_equals_the_runs_metrics(study):
    out, table = study["out"], study["table"]
    assert list(table.columns) == COLUMNS
    assert len(table) == len(RUNS) * 2  # every run on test and on validation
    assert table["run_dir"].tolist() == [r for r in RUNS for _ in ("test", "validation")]
    assert table["split"].tolist() == ["test", "validation"] * len(RUNS)
    for row in table.itertuples(index=False):
        metrics, config = runs.load_metrics(out / row.run_dir), runs.load_config(out / row.run_dir)
        block = metrics if row.split == "test" else metrics["validation"]
        for key in ("recall_at_1", "map_at_r", "opis", "eps_opis"):
            assert getattr(row, key) == block[key], (row.run_dir, row.split, key)
        assert (row.dataset, row.backbone, row.loss, row.batch_size, row.seed, row.tcm) == (
            "digits", "small_cnn", config.loss, config.batch_size, config.seed, config.tcm)
        assert row.run_dir == f"{cell_name(row.loss, row.batch_size)}/seed-{row.seed}/{'tcm' if row.tcm else 'baseline'}"
        assert (row.margin_pos, row.margin_neg, row.lambda_pos, row.lambda_neg) == (
            config.margin_pos, config.margin_neg, config.lambda_pos, config.lambda_neg)
    assert table["tcm"].dtype == bool and table["batch_size"].dtype == "int64"
    pd.testing.assert_frame_equal(load_study(out), table)  # study.csv round-trips exactly
    pd.testing.assert_frame_equal(collect_study(out), table)
    assert json.loads((out / "study.json").read_text()) == spec().to_dict()
    for cell in CELLS:  # each cell is a repeats folder
        assert json.loads((out / cell / "summary.json").read_text())["seeds"] == list(SEEDS)


def test_a_stopped_study_resumes_without_retraining(study):
    out, first, again = study["out"], study["first"], study["again"]
    assert first.ended == RUNS[:5]
    assert study["stopped_table"]["run_dir"].unique().tolist() == RUNS[:4]  # the first cell only
    assert [c for c in first.cells if c[0] == "end"] == [("end", CELLS[0], 1, 4)]
    assert mtimes(out, study["finished"]) == study["before"]  # finished runs untouched
    assert again.stepped == set(RUNS[5:])  # only what had not finished trained again
    assert [r for r, _ in again.started] == RUNS[4:]  # the half-done pair's baseline: its checkpoint
    assert dict(again.started)[RUNS[4]] == 1
    assert "cell 2/4: multi_similarity, batch 32" in again.stages
    assert [c[1] for c in again.cells if c[0] == "end"] == CELLS
    assert any(s.startswith(f"{CELLS[2]}/seed-0/") for s in again.stages)  # engine notes carry the cell
    quiet = Recorder()
    pd.testing.assert_frame_equal(run_study(spec(), out, callback=quiet), study["table"])
    assert quiet.started == [] and quiet.stepped == set()


def test_another_spec_in_the_same_folder_is_refused(study):
    out = study["out"]
    before = (out / "study.json").read_text()
    with pytest.raises(TCMError, match=r"holds another study \(seeds: \[0, 1\] there, \[0, 1, 2\] now\).*new --out"):
        run_study(spec(seeds=(0, 1, 2)), out)
    with pytest.raises(TCMError, match="epochs: 1 there, 2 now"):
        run_study(spec(base=TrainConfig(**{**FAST, "epochs": 2})), out)
    assert (out / "study.json").read_text() == before
    # the per-run fields of the base say nothing: the same runs are the same spec
    assert spec(base=TrainConfig(**FAST, loss="arcface", batch_size=64, seed=9, tcm=True)) == spec()
    assert StudySpec.from_dict(json.loads(json.dumps(spec().to_dict()))) == spec()


def test_bad_specs():
    with pytest.raises(TCMError, match="unknown loss.*'nope'.*choose from " + ", ".join(BASE_LOSSES)):
        spec(losses=("multi_similarity", "nope"))
    with pytest.raises(TCMError, match="losses is empty"):
        spec(losses=())
    with pytest.raises(TCMError, match="batch_sizes repeat 16"):
        spec(batch_sizes=(16, 16))
    with pytest.raises(TCMError, match="batch size 4 must hold at least 2 classes"):
        spec(batch_sizes=(4, 16))
    with pytest.raises(TCMError, match="positive integers"):
        spec(batch_sizes=(16.5,))
    with pytest.raises(TCMError, match="distinct non-negative"):
        spec(seeds=(1, 1))
    with pytest.raises(TCMError, match="distinct non-negative"):
        spec(seeds=())
    with pytest.raises(TCMError, match="do not apply to contrastive"):
        spec(base=TrainConfig(**FAST, loss_options={"alpha": 2.0}))


def test_missing_or_damaged_table_names_the_file(tmp_path):
    with pytest.raises(TCMError, match="study.csv is missing"):
        load_study(tmp_path)
    (tmp_path / "study.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TCMError, match=r"study.csv is damaged \(its columns"):
        load_study(tmp_path)
    (tmp_path / "study.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TCMError, match="study.csv is damaged"):
        load_study(tmp_path)
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(TCMError, match="study.json is damaged"):
        run_study(spec(), tmp_path)
    with pytest.raises(TCMError, match="study.json is missing"):
        collect_study(tmp_path / "nothing")


def parse(*argv):
    parser = _Parser(prog="python -m tcm_core")
    add_study_parser(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    return parser.parse_args(["study", *map(str, argv)])


CLI = ("--dataset", "digits", "--embedding-dim", 8, "--epochs", 1, "--samples-per-class", 4, "--device", "cpu",
       "--max-train-samples", 200, "--max-test-samples", 200)


def test_cli_bad_input_is_one_tcm_error(tmp_path):
    args = parse(*CLI, "--losses", "multi_similarity", "nope", "--batch-sizes", 16, "--out", tmp_path / "x")
    with pytest.raises(TCMError, match="unknown loss.*'nope'"):
        args.func(args)
    args = parse(*CLI, "--losses", "contrastive", "--batch-sizes", 4, "--out", tmp_path / "x")
    with pytest.raises(TCMError, match="batch size 4 must hold"):
        args.func(args)
    with pytest.raises(TCMError, match="--out"):  # required
        parse(*CLI, "--losses", "contrastive", "--batch-sizes", 16)
    with pytest.raises(TCMError, match="invalid int"):
        parse(*CLI, "--losses", "contrastive", "--batch-sizes", "big", "--out", tmp_path / "x")
    with pytest.raises(TCMError, match="unrecognized arguments: --tcm"):  # the study trains both
        parse(*CLI, "--tcm", "--losses", "contrastive", "--batch-sizes", 16, "--out", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_on_a_finished_study_trains_nothing_and_prints_one_line_per_cell(study, capsys):
    args = parse(*CLI, "--losses", *LOSSES, "--batch-sizes", *BATCHES, "--seeds", *SEEDS, "--out", study["out"])
    assert args.seeds == list(SEEDS) and spec_from_args(args) == spec()
    assert parse(*CLI, "--losses", "contrastive", "--batch-sizes", 16, "--out", "x").seeds == [0, 1, 2]
    before = mtimes(study["out"], RUNS)
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("+TCM vs baseline on test") and len(out) == 1 + len(CELLS) + 1
    for line, cell in zip(out[1:], CELLS):
        assert line.split()[0] == cell and "2 seeds" in line and "OPIS" in line and "R@1" in line
    assert out[-1] == f"saved to {study['out']} (study.csv: {len(RUNS) * 2} rows)"
    assert mtimes(study["out"], RUNS) == before


def test_progress_fraction_hand_computed():
    run = RunProgress("a-bs16/seed-1/tcm", epochs=2, steps_per_epoch=10, epoch=1, step=5)  # 0.75 of the run
    p = StudyProgress(cells_total=4, runs_per_cell=4, cells_done=1, cell="a-bs16", cell_index=2, run=run, run_index=3)
    assert p.cell_fraction == (3 + 0.75) / 4 and p.fraction == (1 + (3 + 0.75) / 4) / 4
    assert StudyProgress(cells_total=4, runs_per_cell=4).fraction == 0.0


def poll(task, every=0.05):
    seen, deadline = [], time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        seen.append(task.snapshot())
        if seen[-1].status in TERMINAL:
            return seen
        time.sleep(every)
    task.stop()
    pytest.fail(f"study task still {seen[-1].status} after {TIMEOUT} s")


def test_task_stops_then_a_new_task_finishes_the_folder(tmp_path):
    one = spec(losses=("multi_similarity",), batch_sizes=(32,), seeds=(0,))
    out = tmp_path / "tiny"
    task = StudyTask(one, out).start()
    task.stop()
    last = poll(task)[-1]
    assert last.status == TaskStatus.STOPPED and "stopped" in last.stage
    again = task.resume(start=False)
    assert again.out == out and again.spec == one
    seen = poll(again.start())
    last = seen[-1]
    assert last.status == TaskStatus.FINISHED, last.error
    assert last.fraction == 1.0 and last.progress.fraction == 1.0
    assert (last.progress.cells_done, last.progress.cells_total) == (1, 1)
    fractions = [s.fraction for s in seen if s.fraction is not None]
    assert fractions == sorted(fractions)  # never goes back
    runs_seen = {s.progress.run.run for s in seen if s.progress.run is not None}
    assert runs_seen <= {"multi_similarity-bs32/seed-0/baseline", "multi_similarity-bs32/seed-0/tcm"}
    assert runs_seen
    assert len(again.table) == 4 and load_study(out).equals(again.table)
    with pytest.raises(TCMError, match="cannot be resumed"):
        again.resume()


def test_task_on_a_finished_study_finishes_at_once(study):
    task = StudyTask.from_folder(study["out"])
    assert task.spec == spec()
    last = poll(task.start())[-1]
    assert last.status == TaskStatus.FINISHED and last.progress.cells_done == len(CELLS)
    assert last.fraction == 1.0 and last.progress.run is None
    pd.testing.assert_frame_equal(task.table, study["table"])
