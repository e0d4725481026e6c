"""Margin search on Optuna: TCM's (m+, m-) chosen by a multi-objective study.

Each trial is a fair quick retrain (``training.retrain``) of a pair's +TCM run with the trial's
margins. Its objective values are (OPIS, R@1) of the retrained +TCM run on the validation
classes (minimize, maximize): margins are chosen on validation, and test is kept beside in the
trial's user attributes (runs without a validation split fall back to test; ``chosen_on`` says
which). Samplers: ``grid`` visits every point of an m+ x m- grid once (for teaching); ``tpe`` and
``nsga2`` tune for real within the grid's min..max, in steps of 0.01.

The study is named after its folder and lives in ``<out>/tune.db`` (SQLite) unless a storage URL
is given (any database Optuna supports): several machines then work on one search. A search
resumes where it stopped: finished trials are kept; trials stopped, or left running by a crash
(a dead process on this machine, or no heartbeat for ``grace_period`` seconds anywhere), are
marked failed and, on a grid, retried. ``load_tune`` reads the trials as a table,
``pareto_trials`` keeps the non-dominated ones, and ``recheck`` trains chosen margins as repeats
and gives their change on the test classes with an interval across seeds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from tcm_core.checks import check_lambda, check_margin
from tcm_core.errors import TCMError
from tcm_core.io import save_json
from tcm_core.metrics.uncertainty import Interval
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.retrain import RetrainBudget, RetrainResult, quick_config, retrain

SAMPLERS = ("grid", "tpe", "nsga2")
DIRECTIONS = ("minimize", "maximize")  # OPIS, R@1 (validation)
PARAMS = ("margin_pos", "margin_neg")
DB, INFO = "tune.db", "tune.json"
GRACE_S = 120  # seconds without a heartbeat before a running trial counts as crashed
DEFAULT_TRIALS = 20  # of a TPE / NSGA-II search
STEP = 0.01  # TPE / NSGA-II propose margins in these steps
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # who runs a trial (for crash detection)


# ------------------------------------------------------------------ what to search

def _margins(values, name: str) -> tuple[float, ...]:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TCMError(f"{name} must be numbers in [-1, 1]; got {values!r}") from None
    if not numbers:
        raise TCMError(f"{name} is empty: give at least one value")
    return tuple(sorted({check_margin(name, v) for v in numbers}))


def _whole(value, name: str, low: int) -> int:
    try:
        whole = not isinstance(value, bool) and float(value).is_integer() and int(value) >= low
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise TCMError(f"{name} must be a whole number >= {low}; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TuneSpec:
    """A margin search: the sampler, the m+ / m- values (the grid; for TPE and NSGA-II their
    min..max is the range searched), λ+ / λ- held fixed (None: the run's), how many trials
    finish the search (None: the whole grid, or ``DEFAULT_TRIALS``) and the sampler's seed."""

    sampler: str = "grid"
    margins_pos: tuple[float, ...] = (0.7, 0.8, 0.9)
    margins_neg: tuple[float, ...] = (0.3, 0.4, 0.5)
    lambda_pos: float | None = None
    lambda_neg: float | None = None
    trials: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise TCMError(f"sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 -- frozen
        set_("margins_pos", _margins(self.margins_pos, "margins_pos"))
        set_("margins_neg", _margins(self.margins_neg, "margins_neg"))
        for name in ("lambda_pos", "lambda_neg"):
            if getattr(self, name) is not None:
                set_(name, check_lambda(name, getattr(self, name)))
        set_("seed", _whole(self.seed, "seed", 0))
        if self.trials is not None:
            set_("trials", _whole(self.trials, "trials", 1))
            if self.sampler == "grid" and self.trials > len(self.grid):
                raise TCMError(f"trials ({self.trials}) exceeds the grid's {len(self.grid)} points")

    @property
    def grid(self) -> list[tuple[float, float]]:
        return [(p, n) for p in self.margins_pos for n in self.margins_neg]

    @property
    def target(self) -> int:
        """Finished trials that complete the search."""
        return self.trials or (len(self.grid) if self.sampler == "grid" else DEFAULT_TRIALS)

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The interval each margin is drawn from (the grid's min..max; rounded to ``STEP``
        for TPE / NSGA-II)."""
        out = {"margin_pos": (self.margins_pos[0], self.margins_pos[-1]),
               "margin_neg": (self.margins_neg[0], self.margins_neg[-1])}
        if self.sampler != "grid":
            out = {k: (round(lo, 2), round(hi, 2)) for k, (lo, hi) in out.items()}
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["margins_pos"], d["margins_neg"] = list(self.margins_pos), list(self.margins_neg)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TuneSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def same_search(self, other: TuneSpec) -> bool:
        """Whether two specs search the same space (the trial count and seed may differ)."""
        key = lambda s: (s.sampler, s.margins_pos, s.margins_neg, s.lambda_pos, s.lambda_neg)  # noqa: E731
        return key(self) == key(other)


def make_sampler(spec: TuneSpec, offset: int = 0):
    """The Optuna sampler of ``spec`` (``offset``: trials already in the study, so a resumed TPE /
    NSGA-II search does not replay its first random draws)."""
    import optuna

    if spec.sampler == "grid":
        return optuna.samplers.GridSampler({"margin_pos": list(spec.margins_pos),
                                            "margin_neg": list(spec.margins_neg)}, seed=spec.seed)
    seed = spec.seed + offset
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, spec.target // 3)))
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, spec.target // 2)))


def _suggest(trial, spec: TuneSpec) -> tuple[float, float]:
    step = None if spec.sampler == "grid" else STEP
    return tuple(float(trial.suggest_float(name, lo, hi, step=None if lo == hi else step))
                 for name, (lo, hi) in spec.ranges().items())


# ------------------------------------------------------------------ storage

def study_name(out) -> str:
    return Path(out).resolve().name


def storage_url(out, storage: str | None = None) -> str:
    """``storage``, or the SQLite file ``<out>/tune.db``."""
    return storage or f"sqlite:///{Path(out).resolve() / DB}"


def _url(url: str):
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # noqa: BLE001 -- any unreadable URL is the user's to fix
        raise TCMError(f"storage {url!r} is not a database URL (e.g. sqlite:///tune.db, "
                       "postgresql://user@host/db)") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def open_storage(url: str, grace_period: int = GRACE_S):
    """An Optuna RDB storage with heartbeats (a trial silent for ``grace_period`` s is stale)."""
    import optuna

    _url(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=max(1, grace_period // 4),
                                              grace_period=max(1, int(grace_period)))
    except Exception as exc:  # noqa: BLE001 -- a server down, a driver missing: one line
        raise TCMError(f"cannot open the study storage {_safe(url)}: {_first_line(exc)}") from None


def _safe(url: str) -> str:
    return _url(url).render_as_string(hide_password=True)


def _search_key(config: TrainConfig) -> dict:
    """What must match for two machines to share a search (paths and devices may differ)."""
    d = {k: v for k, v in config.to_dict().items() if k not in ("data_dir", "device")}
    d["weights"] = d.get("weights") and Path(d["weights"]).name
    return json.loads(json.dumps(d))  # as stored (tuples become lists)


def open_study(out, spec: TuneSpec, config: TrainConfig, *, storage: str | None = None,
               baseline=None, grace_period: int = GRACE_S):
    """Create or load the study of ``out`` (TCMError when it holds another search) and write
    ``<out>/tune.json`` (the spec, the config and where the study is stored)."""
    import optuna

    out, url = Path(out), storage_url(out, storage)
    _url(url)
    out.mkdir(parents=True, exist_ok=True)
    try:
        study = optuna.create_study(storage=open_storage(url, grace_period), study_name=study_name(out),
                                    directions=list(DIRECTIONS), load_if_exists=True)
    except TCMError:
        raise
    except Exception as exc:  # noqa: BLE001 -- e.g. a study of that name with other directions
        raise TCMError(f"cannot open the study {study_name(out)!r} in {_safe(url)}: {_first_line(exc)}") from None
    _check_same(study, spec, config)
    _save_info(out, spec, config, storage, baseline)
    return study


def _check_same(study, spec: TuneSpec, config: TrainConfig) -> None:
    saved = study.user_attrs.get("spec")
    if saved is None:
        study.set_user_attr("spec", spec.to_dict())
        study.set_user_attr("config", _search_key(config))
        return
    if not spec.same_search(TuneSpec.from_dict(saved)) or study.user_attrs.get("config") != _search_key(config):
        raise TCMError(f"the study {study.study_name!r} holds another search (sampler {saved['sampler']}, "
                       f"m+ {saved['margins_pos']}, m- {saved['margins_neg']}, or another run's config): "
                       "choose another folder, or the same settings to resume it")


def _save_info(out: Path, spec: TuneSpec, config: TrainConfig, storage, baseline) -> None:
    info = dict(study_name=study_name(out), storage=None if storage is None else _safe(storage),
                storage_has_password=storage is not None and _url(storage).password is not None,
                spec=spec.to_dict(), config=config.to_dict(), baseline=None if baseline is None else str(baseline))
    save_json(out / INFO, info)


def _locate(where, name: str | None) -> tuple[str, str]:
    """(storage URL, study name) of a search folder or a storage URL."""
    import optuna

    if "://" in str(where):
        _url(str(where))
        try:
            names = optuna.get_all_study_names(storage=str(where))
        except Exception as exc:  # noqa: BLE001 -- a server down, a driver missing: one line
            raise TCMError(f"cannot read the study storage {_safe(str(where))}: {_first_line(exc)}") from None
        if name is None and len(names) != 1:
            raise TCMError(f"{_safe(str(where))} holds {len(names)} studies ({', '.join(names) or 'none'}): "
                           "name the one to load")
        return str(where), name or names[0]
    folder = Path(where)
    info = json.loads((folder / INFO).read_text()) if (folder / INFO).is_file() else {}
    if info.get("storage_has_password"):
        raise TCMError(f"{folder}'s study is stored at {info['storage']}: pass that URL with its password")
    if info.get("storage"):
        return info["storage"], name or info["study_name"]
    if not (folder / DB).is_file():
        raise TCMError(f"{folder} is not a search folder: {DB} is missing")
    return storage_url(folder), name or study_name(folder)


def load_study(where, name: str | None = None):
    """The Optuna study of a search folder (or of a storage URL, with the study's name unless
    it holds only one)."""
    import optuna

    url, name = _locate(where, name)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise TCMError(f"no study named {name!r} in {_safe(url)}") from None


# ------------------------------------------------------------------ trials

Change = tuple  # (value, low, high) of a change, None where undefined


def change_tuple(interval: Interval | None) -> Change | None:
    if interval is None:
        return None
    return tuple(float(v) if math.isfinite(v) else None for v in (interval.value, interval.low, interval.high))


def excludes_zero(change: Change | None) -> bool:
    """True when a change's interval lies wholly on one side of 0 (a distinguishable change)."""
    return bool(change and change[1] is not None and change[2] is not None and (change[1] > 0 or change[2] < 0))


def objective_values(res: RetrainResult) -> tuple[tuple[float, float], str]:
    """((OPIS, R@1) the choice is made on, "validation" or "test") of a retrain."""
    if res.val_opis is not None and res.val_recall_at_1 is not None:
        return (res.val_opis, res.val_recall_at_1), "validation"
    return (res.opis, res.recall_at_1), "test"


def _clean(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


SCORES = ("opis", "recall_at_1", "eps_opis", "val_opis", "val_recall_at_1", "val_eps_opis", "baseline_opis",
          "baseline_recall_at_1", "baseline_val_opis", "baseline_val_recall_at_1", "seconds")


def result_attrs(res: RetrainResult) -> dict:
    """A retrain's numbers as a trial's user attributes (JSON: None for NaN; each change a
    ``[value, low, high]`` list)."""
    attrs = dict(run_dir=str(res.out), chosen_on=objective_values(res)[1], reduced=res.reduced)
    attrs.update({k: _clean(getattr(res, k)) for k in SCORES})
    for split, changes in (("val", res.validation), ("test", res.test)):
        for name in ("opis", "recall_at_1"):
            change = change_tuple(None if changes is None else getattr(changes, name))
            attrs[f"{split}_{name}_change"] = None if change is None else list(change)
    return attrs


@dataclass(frozen=True)
class TuneTrial:
    """One trial of a search as plain data: its state (Optuna's name), margins, the objective
    values (``chosen_on``'s split), test and validation scores of the retrained +TCM run and of
    its baseline, +TCM's changes as ``(value, low, high)`` with a 95% paired-bootstrap interval
    (OPIS in percent, R@1 in points) and the trial's pair folder."""

    number: int
    state: str
    margin_pos: float | None = None
    margin_neg: float | None = None
    objective_opis: float | None = None
    objective_recall_at_1: float | None = None
    chosen_on: str | None = None
    val_opis: float | None = None
    val_recall_at_1: float | None = None
    val_eps_opis: float | None = None
    opis: float | None = None
    recall_at_1: float | None = None
    eps_opis: float | None = None
    baseline_val_opis: float | None = None
    baseline_val_recall_at_1: float | None = None
    baseline_opis: float | None = None
    baseline_recall_at_1: float | None = None
    val_opis_change: Change | None = None
    test_opis_change: Change | None = None
    val_recall_at_1_change: Change | None = None
    test_recall_at_1_change: Change | None = None
    run_dir: str | None = None
    seconds: float | None = None
    worker: str | None = None

    @property
    def label(self) -> str:
        text = lambda m: "?" if m is None else f"{m:g}"  # noqa: E731 -- a trial stopped before it drew margins
        return f"trial {self.number}: m+ {text(self.margin_pos)}, m- {text(self.margin_neg)}"


def trial_record(t) -> TuneTrial:
    """An Optuna ``FrozenTrial`` as a ``TuneTrial``."""
    attrs, params = t.user_attrs, t.params or t.system_attrs.get("fixed_params", {})
    values = t.values if t.values is not None else (None, None)
    known = {f.name for f in fields(TuneTrial)}
    extra = {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items() if k in known}
    return TuneTrial(number=t.number, state=t.state.name, margin_pos=params.get("margin_pos"),
                     margin_neg=params.get("margin_neg"), objective_opis=values[0],
                     objective_recall_at_1=values[1], **extra)


def study_trials(study) -> tuple[TuneTrial, ...]:
    return tuple(trial_record(t) for t in study.get_trials(deepcopy=False))


CHANGE_COLUMNS = ("val_opis_change", "test_opis_change", "val_recall_at_1_change", "test_recall_at_1_change")


def trials_frame(trials) -> pd.DataFrame:
    """A table of ``TuneTrial``s, one row each: the fields (each change as three columns,
    ``<name>``, ``<name>_low`` and ``<name>_high``) and ``on_pareto_front``."""
    rows = []
    for t in trials:
        row = {k: v for k, v in asdict(t).items() if k not in CHANGE_COLUMNS}
        for name in CHANGE_COLUMNS:
            change = getattr(t, name) or (None, None, None)
            row.update({name: change[0], f"{name}_low": change[1], f"{name}_high": change[2]})
        rows.append(row)
    columns = [f.name for f in fields(TuneTrial) if f.name not in CHANGE_COLUMNS]
    columns += [f"{n}{s}" for n in CHANGE_COLUMNS for s in ("", "_low", "_high")]
    df = pd.DataFrame(rows, columns=columns)
    for name in columns:
        if name not in ("state", "chosen_on", "run_dir", "worker"):
            df[name] = pd.to_numeric(df[name], errors="coerce")
    df["on_pareto_front"] = pareto_mask(df)
    return df


def load_tune(where, study_name: str | None = None) -> pd.DataFrame:
    """The trials of a search (its folder, or a storage URL) as ``trials_frame``'s table."""
    return trials_frame(study_trials(load_study(where, study_name)))


def pareto_mask(df: pd.DataFrame) -> np.ndarray:
    """Which rows are finished trials no other finished trial dominates (Optuna's dominance:
    OPIS no higher and R@1 no lower, and one of them strictly better)."""
    ok = (df["state"] == "COMPLETE").to_numpy() & df["objective_opis"].notna().to_numpy()
    opis, r1 = df["objective_opis"].to_numpy(float), df["objective_recall_at_1"].to_numpy(float)
    mask = np.zeros(len(df), bool)
    idx = np.flatnonzero(ok)
    for i in idx:
        o, r = opis[idx], r1[idx]
        mask[i] = not np.any((o <= opis[i]) & (r >= r1[i]) & ((o < opis[i]) | (r > r1[i])))
    return mask


def pareto_trials(df: pd.DataFrame) -> pd.DataFrame:
    """The Pareto front of a trials table (lower OPIS and higher R@1 on the split the margins
    are chosen on), by OPIS."""
    return df[pareto_mask(df)].sort_values(["objective_opis", "number"])


def best_trial(df: pd.DataFrame, r1_tolerance: float = 0.005) -> pd.Series | None:
    """Our suggestion: among the Pareto trials whose R@1 is within ``r1_tolerance`` of the best
    R@1, the one with the lowest OPIS (consistency without costing accuracy)."""
    front = pareto_trials(df)
    if front.empty:
        return None
    near = front[front["objective_recall_at_1"] >= front["objective_recall_at_1"].max() - r1_tolerance]
    return near.loc[near["objective_opis"].idxmin()]


def trial_line(row) -> str:
    """One line of a trial (a ``trials_frame`` row) for the terminal."""
    num = lambda v, f: "—" if v is None or pd.isna(v) else format(v, f)  # noqa: E731
    return (f"trial {int(row['number'])}: m+ {row['margin_pos']:.2f}, m- {row['margin_neg']:.2f} · "
            f"{row['chosen_on'] if isinstance(row['chosen_on'], str) else 'validation'} OPIS {num(row['objective_opis'], '.4g')}, "
            f"R@1 {num(row['objective_recall_at_1'], '.3f')} · test OPIS {num(row['opis'], '.4g')}, "
            f"R@1 {num(row['recall_at_1'], '.3f')}")


# ------------------------------------------------------------------ running a search

class TuneCallback(Callback):
    """A training ``Callback`` that also hears about trials (every hook a no-op here)."""

    def on_search(self, trials: tuple[TuneTrial, ...], total: int) -> None:
        """Before each pass of the search and once at its end: the study's trials so far;
        ``total`` finished trials end the search."""

    def on_trial_start(self, number: int, margin_pos: float, margin_neg: float) -> None:
        """Trial ``number`` starts training with these margins."""

    def on_trial_end(self, trial: TuneTrial) -> None:
        """A trial ended (finished, or failed without stopping the search)."""


def _alive_elsewhere(worker: str | None) -> bool:
    """False only for a trial run by a process of this machine that no longer exists."""
    host, _, pid = (worker or "").rpartition(":")
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def fail_crashed(study) -> list[int]:
    """Mark failed the trials a crash left running (stale heartbeat, or a dead process of this
    machine); returns the numbers marked here."""
    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    crashed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if not _alive_elsewhere(t.user_attrs.get("worker"))]
    for number in crashed:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    return crashed


def _point(t) -> tuple[float, float] | None:
    params = t.params or t.system_attrs.get("fixed_params", {})
    return (params["margin_pos"], params["margin_neg"]) if all(k in params for k in PARAMS) else None


def remaining(study, spec: TuneSpec, retry: bool = False) -> int:
    """Trials still to run for ``spec.target`` finished ones (those running elsewhere count as
    run; queued ones are to run). With ``retry``, grid points whose trials all failed are
    queued again (a grid visits every point once in all)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if spec.sampler != "grid":
        return max(0, spec.target - sum(t.state in (TrialState.COMPLETE, TrialState.RUNNING) for t in trials))
    grid = set(spec.grid)
    points = lambda *states: {p for t in trials if t.state in states and (p := _point(t)) in grid}  # noqa: E731
    done = points(TrialState.COMPLETE)
    running = points(TrialState.RUNNING) - done
    todo = max(0, spec.target - len(done) - len(running))
    queued = points(TrialState.WAITING) - done - running
    if retry:
        for p, n in sorted(points(TrialState.FAIL) - done - running - queued)[:max(0, todo - len(queued))]:
            study.enqueue_trial({"margin_pos": p, "margin_neg": n}, user_attrs={"retry": True})
    return todo


class _Search:
    """One worker's share of a search: the objective and what happens after each trial."""

    def __init__(self, config, baseline, out, spec, trials_dir, budget, callback):
        self.config, self.spec, self.budget, self.callback = config, spec, budget, callback
        self.baseline = None if baseline is None else Path(baseline)
        self.out, self.trials_dir = Path(out), None if trials_dir is None else Path(trials_dir)
        self.reduced = quick_config(config, spec.margins_pos[0], spec.margins_neg[0], budget=budget)[1]

    def trial_dir(self, number: int) -> Path:
        """``<out>/trials/trial-<n>``, or ``<trials_dir>/<out name>-trial-<n>``."""
        if self.trials_dir is None:
            return self.out / "trials" / f"trial-{number}"
        return self.trials_dir / f"{self.out.name}-trial-{number}"

    def _baseline(self, study) -> tuple[Path | None, bool | None]:
        """The original baseline under the original budget; under a reduced one, the baseline a
        finished trial of this machine trained under it (trained in the trial when none)."""
        if not self.reduced:
            return self.baseline, None
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            base = Path(t.user_attrs.get("run_dir", "")) / "baseline"
            if t.user_attrs.get("run_dir") and (base / runs.METRICS).is_file():
                return base, True
        return None, None

    def objective(self, trial) -> tuple[float, float]:
        trial.set_user_attr("worker", WORKER)  # first: a crash from here on is recognized
        margin_pos, margin_neg = _suggest(trial, self.spec)
        self.callback.on_trial_start(trial.number, margin_pos, margin_neg)
        base, reuse = self._baseline(trial.study)
        out = self.trial_dir(trial.number)
        try:
            res = retrain(self.config, margin_pos, margin_neg, out, lambda_pos=self.spec.lambda_pos,
                          lambda_neg=self.spec.lambda_neg, baseline=base, reuse_baseline=reuse,
                          budget=self.budget, callback=self.callback)
        except BaseException:  # a stopped or failed trial leaves no half pair behind
            shutil.rmtree(out, ignore_errors=True)
            raise
        for key, value in result_attrs(res).items():
            trial.set_user_attr(key, value)
        return objective_values(res)[0]

    def after_trial(self, study, frozen) -> None:
        self.callback.on_trial_end(trial_record(frozen))
        if self.callback.should_stop():
            study.stop()


def run_tune(config: TrainConfig, baseline, out, spec: TuneSpec, *, storage: str | None = None,
             callback: TuneCallback | None = None, trials_dir=None, budget: RetrainBudget = RetrainBudget(),
             grace_period: int = GRACE_S) -> pd.DataFrame:
    """Run (or resume) the margin search ``spec`` of ``config``'s +TCM run into ``out``.

    ``baseline``: the original baseline run folder (copied into each trial when the quick
    retrain keeps the run's budget). ``storage``: an Optuna storage URL (default
    ``sqlite:///<out>/tune.db``). ``callback``: training progress, trial hooks and the stop
    request (``TrainingStopped`` is raised once it asks to stop). ``trials_dir``: where trial
    pairs go (default ``out/trials``). Returns the trials table (``load_tune``).
    """
    callback = callback if callback is not None else TuneCallback()
    search = _Search(config, baseline, out, spec, trials_dir, budget, callback)
    study = open_study(out, spec, config, storage=storage, baseline=baseline, grace_period=grace_period)
    finished = -1
    while True:
        fail_crashed(study)
        todo, now = remaining(study, spec, retry=True), _count_complete(study)
        callback.on_search(study_trials(study), spec.target)
        if todo == 0 or now == finished:  # done, or the last pass finished nothing new
            break
        finished = now
        _check_stop(callback)
        study.sampler = make_sampler(spec, offset=len(study.get_trials(deepcopy=False)))
        study.optimize(search.objective, n_trials=todo, callbacks=[search.after_trial])
        _check_stop(callback)
    return trials_frame(study_trials(study))


def _count_complete(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _check_stop(callback: Callback) -> None:
    if callback.should_stop():
        raise TrainingStopped("search stopped")


# ------------------------------------------------------------------ re-check on test

@dataclass(frozen=True)
class RecheckResult:
    """Chosen margins trained as repeats with the run's whole budget: the mean test OPIS / R@1
    over seeds of the baselines and of +TCM, and +TCM's changes (OPIS and eps-OPIS in percent,
    R@1 in points) with a 95% Student t interval across seeds; ``out`` the repeats folder."""

    margin_pos: float
    margin_neg: float
    out: Path
    seeds: tuple[int, ...]
    baseline_opis: float
    opis: float
    baseline_recall_at_1: float
    recall_at_1: float
    opis_change: Interval
    eps_opis_change: Interval
    recall_at_1_change: Interval


def recheck(config: TrainConfig, margin_pos: float, margin_neg: float, out, seeds=(0, 1, 2), *,
            lambda_pos: float | None = None, lambda_neg: float | None = None,
            callback: Callback | None = None) -> RecheckResult:
    """Train baseline / +TCM pairs with the chosen margins, one per seed, into ``out/seed-<n>``
    (``training.repeats``; seeds already finished there are kept) and summarize them on the
    test classes: the check that margins chosen on validation hold on test."""
    from tcm_core.training.repeats import summary_changes, train_repeats

    changes = dict(margin_pos=check_margin("margin_pos", margin_pos), margin_neg=check_margin("margin_neg", margin_neg),
                   tcm=False)
    if lambda_pos is not None:
        changes["lambda_pos"] = check_lambda("lambda_pos", lambda_pos)
    if lambda_neg is not None:
        changes["lambda_neg"] = check_lambda("lambda_neg", lambda_neg)
    summary = train_repeats(config.replace(**changes), out, seeds, resume=True, callback=callback)
    mean = lambda side, key: float(np.mean([r[side][key] for r in summary["per_seed"]]))  # noqa: E731
    c = summary_changes(summary)
    return RecheckResult(float(margin_pos), float(margin_neg), Path(out), tuple(summary["seeds"]),
                         mean("baseline", "opis"), mean("tcm", "opis"), mean("baseline", "recall_at_1"),
                         mean("tcm", "recall_at_1"), c["opis_change_pct"], c["eps_opis_change_pct"],
                         c["recall_at_1_change_pts"])
