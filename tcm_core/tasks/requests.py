"""What a queued job is: a ``JobRequest``, a kind and plain JSON arguments, from which a worker
process builds the ``BackgroundTask`` that does the work (``build``). Plain data, so the queue
saves it (``queue.json``) and a restarted server rebuilds it, and hashes it for the run cache
(``training.run_cache.request_key``).

Kinds: ``train`` (a pair, one run or repeats: ``TrainingJob``), ``retrain`` (a quick retrain with
other margins: ``RetrainTask``), ``tune`` (a margin search: ``TuneTask``), ``recheck`` (margins as
repeats: ``RecheckTask``) and ``study`` (``StudyTask``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.training import runs
from tcm_core.training.config import TrainConfig
from tcm_core.training.run_cache import request_key


@dataclass(frozen=True)
class Kind:
    """How a kind of request is built and judged: ``volatile`` arguments do not change the
    result (left out of the cache key); ``result_on_disk``: a finished job's result is its folder
    (so it still counts as cached after a server restart)."""

    build: object  # args -> BackgroundTask (not started)
    volatile: tuple[str, ...] = ()
    result_on_disk: bool = False


def _train(a):
    from tcm_core.tasks.training_job import TrainingJob
    return TrainingJob(TrainConfig.from_dict(a["config"]), a["out"], a.get("compare", True),
                       resume=a.get("resume", False), seeds=tuple(a.get("seeds", ())))


def _retrain(a):
    from tcm_core.tasks.retrain import RetrainTask
    return RetrainTask(TrainConfig.from_dict(a["config"]), a["margin_pos"], a["margin_neg"], a["out"],
                       lambda_pos=a.get("lambda_pos"), lambda_neg=a.get("lambda_neg"), baseline=a.get("baseline"))


def _tune(a):
    from tcm_core.experiments.tune import TuneSpec
    from tcm_core.tasks.tune import TuneTask
    return TuneTask(TrainConfig.from_dict(a["config"]), a["baseline"], a["out"], TuneSpec.from_dict(a["spec"]),
                    trials_dir=a.get("trials_dir"))


def _recheck(a):
    from tcm_core.tasks.tune import RecheckTask
    return RecheckTask(TrainConfig.from_dict(a["config"]), a["margin_pos"], a["margin_neg"], a["out"],
                       tuple(a["seeds"]), lambda_pos=a.get("lambda_pos"), lambda_neg=a.get("lambda_neg"))


def _study(a):
    from tcm_core.experiments.study import StudySpec
    from tcm_core.tasks.study import StudyTask
    return StudyTask(StudySpec.from_dict(a["spec"]), a["out"])


KINDS = {"train": Kind(_train, ("out", "resume"), True), "retrain": Kind(_retrain, ("out",)),
         "tune": Kind(_tune), "recheck": Kind(_recheck), "study": Kind(_study, (), True)}


@dataclass(frozen=True)
class JobRequest:
    """One piece of background work: ``kind`` (see ``KINDS``) and its JSON-able ``args``
    (``out``: the folder it writes, always present)."""

    kind: str
    args: dict = field(hash=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TCMError(f"unknown job kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        if "out" not in self.args:
            raise TCMError(f"a {self.kind} request needs an output folder 'out'")

    @property
    def out(self) -> Path:
        return Path(self.args["out"])

    def build(self):
        """The task that does the work (not started); TCMError for bad arguments."""
        return KINDS[self.kind].build(self.args)

    def key(self) -> str:
        """The run-cache key: equal for requests that give the same result."""
        stable = {k: v for k, v in self.args.items() if k not in KINDS[self.kind].volatile}
        return request_key(self.kind, stable, self.args.get("config") or (self.args.get("spec") or {}).get("base"))

    def resumed(self) -> JobRequest:
        """The request that continues this one's folder (training: from its checkpoints; a
        search, re-check or study: its finished trials, seeds or cells are kept)."""
        return JobRequest(self.kind, {**self.args, "resume": True}) if self.kind == "train" else self

    def can_resume(self) -> bool:
        """Whether its folder holds something to continue from (a retrain starts over)."""
        if self.kind == "retrain":
            return False
        if self.kind != "train":
            return self.out.is_dir()
        return self.build().has_checkpoint()

    def finished_on_disk(self) -> bool:
        """A finished job's result is still there (for the run cache)."""
        if self.kind != "train":
            return self.out.is_dir()
        job = self.build()
        return all((job.run_dir(r.run) / runs.METRICS).is_file() for r in job.snapshot().progress.runs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "args": self.args}

    @classmethod
    def from_dict(cls, d: dict) -> JobRequest:
        return cls(d["kind"], dict(d["args"]))


def train_request(config: TrainConfig, out, *, compare: bool = True, seeds=(), resume: bool = False) -> JobRequest:
    """A pair (``compare``) or one run of ``config`` into ``out``; with several ``seeds``, repeats."""
    seeds = [int(s) for s in seeds] if len(seeds) > 1 else []
    return JobRequest("train", dict(config=config.to_dict(), out=str(out), compare=bool(compare),
                                    seeds=seeds, resume=resume))


def retrain_request(config: TrainConfig, margin_pos, margin_neg, out, *, lambda_pos=None, lambda_neg=None,
                    baseline=None) -> JobRequest:
    return JobRequest("retrain", dict(config=config.to_dict(), margin_pos=float(margin_pos), margin_neg=float(margin_neg),
                                      out=str(out), lambda_pos=lambda_pos, lambda_neg=lambda_neg,
                                      baseline=None if baseline is None else str(baseline)))


def tune_request(config: TrainConfig, baseline, out, spec, *, trials_dir=None) -> JobRequest:
    return JobRequest("tune", dict(config=config.to_dict(), baseline=str(baseline), out=str(out), spec=spec.to_dict(),
                                   trials_dir=None if trials_dir is None else str(trials_dir)))


def recheck_request(config: TrainConfig, margin_pos, margin_neg, out, seeds, *, lambda_pos=None,
                    lambda_neg=None) -> JobRequest:
    return JobRequest("recheck", dict(config=config.to_dict(), margin_pos=float(margin_pos), margin_neg=float(margin_neg),
                                      out=str(out), seeds=[int(s) for s in seeds], lambda_pos=lambda_pos,
                                      lambda_neg=lambda_neg))


def study_request(spec, out) -> JobRequest:
    return JobRequest("study", dict(spec=spec.to_dict(), out=str(out)))
