"""A study: every (base loss, batch size, seed), each trained with and without TCM.

``run_study(spec, DIR)`` writes

- ``DIR/study.json``: the spec (``StudySpec.to_dict``: the base ``TrainConfig`` as a dict, plus
  ``losses``, ``batch_sizes`` and ``seeds``), written first;
- ``DIR/<loss>-bs<batch>/``: one *repeats folder* per cell, exactly what
  ``training.repeats.train_repeats(config, folder, seeds, resume=True)`` writes
  (``seed-<n>/{baseline,tcm}`` and ``summary.json``);
- ``DIR/study.csv``: one row per run and split (``COLUMNS``), rewritten atomically after every
  finished cell.

It resumes: running the same spec into the same folder again keeps every finished pair (and a
pair stopped halfway continues from its checkpoint), so a crashed study loses at most the run
in progress. A different spec in an existing folder is refused. Progress goes to an engine
``Callback`` with run names prefixed by the cell (``multi_similarity-bs32/seed-0/tcm``) and
``on_stage`` notes ``cell 2/6: multi_similarity, batch 32``; a ``StudyCallback`` also hears
when each cell starts and ends.

With a frozen backbone the batch size changes nothing in feature extraction: the features are
extracted once and then read from the cache (``models.feature_cache``, ``$TCM_CACHE_DIR``).
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tcm_core.errors import TCMError
from tcm_core.io import atomic_write, save_json
from tcm_core.training import runs
from tcm_core.training.callbacks import Callback, TrainingStopped
from tcm_core.training.config import TrainConfig
from tcm_core.training.repeats import SeedCallback, check_seeds, seed_dir, train_repeats

SPEC, TABLE = "study.json", "study.csv"
COLUMNS = ["dataset", "backbone", "loss", "batch_size", "seed", "tcm", "margin_pos", "margin_neg",
           "lambda_pos", "lambda_neg", "split", "recall_at_1", "map_at_r", "opis", "eps_opis", "run_dir"]
SCORES = ("recall_at_1", "map_at_r", "opis", "eps_opis")
SPLITS = ("test", "validation")  # a run's rows, in this order (validation only where measured)
_DTYPES = {"batch_size": "int64", "seed": "int64", "tcm": "bool", "margin_pos": "float64",
           "margin_neg": "float64", "lambda_pos": "float64", "lambda_neg": "float64",
           **{k: "float64" for k in SCORES}}
# the numbers read back from study.csv are the runs' own, bit for bit (pandas 3 reads floats
# exactly by default and deprecates the option)
_EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def cell_name(loss: str, batch_size: int) -> str:
    """A cell's folder in the study: ``multi_similarity-bs32``."""
    return f"{loss}-bs{int(batch_size)}"


@dataclass(frozen=True)
class StudySpec:
    """What a study trains: ``base`` with each loss of ``losses`` and each batch size of
    ``batch_sizes`` (the cells, losses outer), one baseline / +TCM pair per seed of ``seeds``.

    Checked at construction (TCMError): known loss names, non-empty lists without repeats,
    batch sizes that hold two classes of ``base.samples_per_class``, ``base.loss_options``
    that every loss takes. ``base``'s own loss, batch size, seed and tcm flag say nothing
    about the study, so they are set to the first cell's (loss, batch size), the first seed and
    False: two specs that train the same runs are equal.
    """

    base: TrainConfig
    losses: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self):
        from tcm_core.losses import BASE_LOSSES

        if isinstance(self.base, dict):
            object.__setattr__(self, "base", TrainConfig.from_dict(self.base))
        if not isinstance(self.base, TrainConfig):
            raise TCMError(f"a study's base must be a TrainConfig; got {type(self.base).__name__}")
        losses = _listed("losses", self.losses, "base loss")
        unknown = [name for name in losses if name not in BASE_LOSSES]
        if unknown:
            raise TCMError(f"unknown loss(es) {', '.join(map(repr, unknown))}; choose from "
                           f"{', '.join(BASE_LOSSES)}")
        batch_sizes = _listed("batch_sizes", self.batch_sizes, "batch size")
        for b in batch_sizes:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise TCMError(f"batch sizes must be positive integers; got {b!r}")
            if b < 2 * self.base.samples_per_class:
                raise TCMError(f"batch size {b} must hold at least 2 classes of samples_per_class "
                               f"({self.base.samples_per_class}): use batch sizes >= "
                               f"{2 * self.base.samples_per_class}")
        seeds = tuple(check_seeds(self.seeds))
        if self.base.loss_options:
            for name in losses:
                rejected = sorted(set(self.base.loss_options) - set(BASE_LOSSES[name].defaults))
                if rejected:
                    raise TCMError(f"loss option(s) {', '.join(rejected)} do not apply to {name} "
                                   f"(its options: {', '.join(BASE_LOSSES[name].defaults) or 'none'}); "
                                   f"a study gives its loss options to every loss")
        object.__setattr__(self, "losses", tuple(losses))
        object.__setattr__(self, "batch_sizes", tuple(batch_sizes))
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "base", self.base.replace(loss=losses[0], batch_size=batch_sizes[0],
                                                          seed=seeds[0], tcm=False))

    @property
    def cells(self) -> list[tuple[str, int]]:
        """(loss, batch size) of every cell, in training order (losses outer)."""
        return [(loss, b) for loss in self.losses for b in self.batch_sizes]

    def config(self, loss: str, batch_size: int) -> TrainConfig:
        """The config of a cell (its seed and tcm flag are set by ``train_repeats``)."""
        return self.base.replace(loss=loss, batch_size=int(batch_size))

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "losses": list(self.losses),
                "batch_sizes": list(self.batch_sizes), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, d: dict) -> StudySpec:
        keys = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) != keys:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise TCMError(f"a study spec has the keys {sorted(keys)}; got {got}")
        return cls(TrainConfig.from_dict(d["base"]), tuple(d["losses"]), tuple(d["batch_sizes"]),
                   tuple(d["seeds"]))


def _listed(name: str, values, what: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TCMError(f"{name} must be a list; got {values!r}")
    values = list(values)
    if not values:
        raise TCMError(f"{name} is empty: give at least one {what}")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise TCMError(f"{name} repeat {', '.join(repeated)}: give each {what} once")
    return values


class StudyCallback(Callback):
    """An engine ``Callback`` that also hears a study's cells (``index`` is 1-based, of ``total``)."""

    def on_cell_start(self, cell: str, index: int, total: int) -> None:
        """Cell ``cell`` (``<loss>-bs<batch>``) begins (its finished seeds are skipped)."""

    def on_cell_end(self, cell: str, index: int, total: int) -> None:
        """Cell ``cell`` finished and ``study.csv`` holds it."""


class CellCallback(SeedCallback):
    """Forwards the engine's hooks to ``inner`` with run names ``<cell>/<run>``
    (``train_repeats`` adds ``seed-<n>/`` inside)."""

    def __init__(self, inner: Callback, cell: str):
        self.inner, self.prefix = inner, f"{cell}/"


def load_spec(out) -> StudySpec:
    """The spec of the study in ``out`` (its ``study.json``)."""
    path = Path(out) / SPEC
    if not path.is_file():
        raise TCMError(f"{out} is not a study folder: {SPEC} is missing")
    try:
        return StudySpec.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError) as exc:
        raise TCMError(f"{path} is damaged ({exc}); start the study again with a new --out") from None
    except TCMError as exc:
        raise TCMError(f"{path} is not a valid study spec ({exc}); start the study again with a new --out") from None


def _claim(spec: StudySpec, out: Path) -> None:
    """Write ``study.json``, or check that the one there is ``spec``."""
    if out.exists() and not out.is_dir():
        raise TCMError(f"{out} is a file; a study needs a folder (give a new --out)")
    if (out / SPEC).is_file():
        stored = load_spec(out)
        if stored != spec:
            raise TCMError(f"{out} holds another study ({_differences(stored, spec)}); rerun it with its "
                           f"own settings to resume it, or give a new --out for this one")
        return
    save_json(out / SPEC, spec.to_dict())


def _differences(old: StudySpec, new: StudySpec) -> str:
    a, b = old.to_dict(), new.to_dict()
    a.update(a.pop("base"))  # one flat list of settings: the base config's and the study's
    b.update(b.pop("base"))
    derived = {"loss", "batch_size", "seed", "tcm"}  # the base's, which follow from the lists
    changed = [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
               if a.get(k) != b.get(k) and k not in derived]
    return "; ".join(changed) or "same settings, other types"


def run_study(spec: StudySpec, out, *, callback: Callback | None = None) -> pd.DataFrame:
    """Train every cell of ``spec`` into ``out`` (resuming whatever is there) and return the
    study's table (``collect_study``), which is also ``out/study.csv``.

    A stop (``callback.should_stop()``, also checked before each cell) raises
    ``TrainingStopped``; running the same spec again continues.
    """
    out, callback = Path(out), callback or Callback()
    _claim(spec, out)
    hooks = callback if isinstance(callback, StudyCallback) else StudyCallback()
    cells, table = spec.cells, None
    for index, (loss, batch_size) in enumerate(cells, 1):
        cell = cell_name(loss, batch_size)
        if callback.should_stop():
            raise TrainingStopped(f"study stopped before cell {index}/{len(cells)} ({cell})")
        hooks.on_cell_start(cell, index, len(cells))
        callback.on_stage(f"cell {index}/{len(cells)}: {loss}, batch {batch_size}")
        train_repeats(spec.config(loss, batch_size), out / cell, spec.seeds, resume=True,
                      callback=CellCallback(callback, cell))
        table = write_table(out, spec)
        hooks.on_cell_end(cell, index, len(cells))
    return table


def write_table(out, spec: StudySpec | None = None) -> pd.DataFrame:
    """Collect the finished runs under ``out`` and write ``out/study.csv`` atomically."""
    table = collect_study(out, spec)
    text = table.to_csv(index=False)
    atomic_write(Path(out) / TABLE, lambda f: f.write(text.encode()))
    return table


def _run_finished(run_dir: Path, epochs: int) -> dict | None:
    try:
        metrics = runs.load_metrics(run_dir)
    except (TCMError, json.JSONDecodeError):
        return None
    return metrics if metrics.get("epochs_done", 0) >= epochs else None


def collect_study(out, spec: StudySpec | None = None) -> pd.DataFrame:
    """The study's table from its run folders: one row per run and split (``COLUMNS``), for
    every seed whose baseline and +TCM runs both finished all epochs.

    Order: cells as in the spec (losses outer, then batch sizes), then seeds as in the spec,
    baseline before +TCM, test before validation. ``margin_*`` / ``lambda_*`` are the run's
    config (a baseline's are its +TCM twin's, which the baseline does not use); ``backbone``
    is the resolved one; ``run_dir`` is relative to ``out`` (``<cell>/seed-<n>/<side>``).
    """
    out = Path(out)
    spec = spec or load_spec(out)
    rows = []
    for loss, batch_size in spec.cells:
        cell = cell_name(loss, batch_size)
        for seed in spec.seeds:
            pair = seed_dir(out / cell, seed)
            metrics = [_run_finished(pair / side, spec.base.epochs) for side in runs.PAIR]
            if any(m is None for m in metrics):
                continue
            for side, m in zip(runs.PAIR, metrics):
                rows.extend(_rows(out, pair / side, m))
    return _typed(pd.DataFrame(rows, columns=COLUMNS))


def _rows(out: Path, run_dir: Path, metrics: dict) -> list[dict]:
    config = runs.load_config(run_dir)
    common = dict(dataset=config.dataset, backbone=_backbone(config, metrics), loss=config.loss,
                  batch_size=config.batch_size, seed=config.seed, tcm=bool(config.tcm),
                  margin_pos=config.margin_pos, margin_neg=config.margin_neg,
                  lambda_pos=config.lambda_pos, lambda_neg=config.lambda_neg,
                  run_dir=run_dir.relative_to(out).as_posix())
    measured = {"test": metrics, "validation": metrics.get("validation")}
    return [{**common, "split": split, **{k: measured[split][k] for k in SCORES}}
            for split in SPLITS if measured[split]]


def _backbone(config: TrainConfig, metrics: dict) -> str:
    """The backbone a run used: recorded, else configured, else the default for its data."""
    if metrics.get("backbone") or config.backbone:
        return metrics.get("backbone") or config.backbone
    from tcm_core.data import dataset_kind
    from tcm_core.training.setup import DEFAULT_BACKBONE

    return DEFAULT_BACKBONE[dataset_kind(config.dataset)]


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    return table.astype(_DTYPES)


def load_study(out) -> pd.DataFrame:
    """``out/study.csv`` as written by ``run_study`` (TCMError naming the file when it is
    missing or damaged)."""
    path = Path(out) / TABLE
    if not path.is_file():
        raise TCMError(f"{path} is missing: {out} is not a study folder, or its first cell has not finished")
    try:
        table = pd.read_csv(io.StringIO(path.read_text()), **_EXACT_FLOATS,
                            dtype={"dataset": str, "backbone": str, "loss": str, "split": str, "run_dir": str})
        if list(table.columns) != COLUMNS:
            raise ValueError(f"its columns are {list(table.columns)}, not {COLUMNS}")
        if len(table) and table["tcm"].dtype != bool:
            raise ValueError("its tcm column is not True / False")
        return _typed(table)
    except (ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise TCMError(f"{path} is damaged ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                       f"rerun the study into its folder to rewrite it") from None
