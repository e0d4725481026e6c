"""The app's shared Streamlit glue (the only one): session keys, run discovery and the run
picker, cached loading, the sidebar, headline metrics and error display. Pages stay thin
scripts over ``tcm_core``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import streamlit as st

from pages._links import RUN, link_box, share_link, start_run, url_param
from pages._links import SEED as URL_SEED
from tcm_core.data import available_datasets, resolve_data_dir
from tcm_core.device import describe_device, resolve_device
from tcm_core.errors import TCMError
from tcm_core.experiments.results import studies
from tcm_core.metrics import DEFAULT_EPS, distance_histograms, pair_scores, points_change, relative_change
from tcm_core.metrics.retrieval import class_hits
from tcm_core.metrics.scores import PairChanges, bootstrap_pair_changes, seed_pair_changes
from tcm_core.metrics.similarities import pair_similarities
from tcm_core.training import TrainConfig, runs, uploads
from tcm_core.training.folders import config_dict, folder_pair
from tcm_core.training.repeats import find_repeats, load_summary, seed_pairs, summary_changes
from tcm_core.training.retrain import resolve_paths
from tcm_core.viz import format_metric
from tcm_core.viz.format import change_with_interval, interval_note

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"

# session-state keys shared between pages (and read by the tests)
PAIR = "pair_label"  # the run pair picked in the sidebar
JOB = "job_id"  # this session's training job
OWNER = "owner_id"  # this session's id in the job queue: only a job's owners may stop it
ANNOUNCED = "announced"  # the finished job the run picker was last refreshed for
SUGGESTED_MARGINS = "suggested_margins"  # (m+, m-) sent from the margins page to the Train page
RETRAIN_RESULT = "mg_result"  # the margins page's last quick retrain (its queued job; the result in its progress)
TUNE = "tune_task"  # the margins page's Optuna margin search (its queued job, running a TuneTask)
RECHECK = "recheck_task"  # the margins page's re-check of chosen margins with repeats (its queued RecheckTask job)
SEED = "seed"  # the seed picked inside a repeats entry
PICKED_POINT = "picked_point"  # the accuracy page's last clicked point (study, split, cell, side)


def _leave_pages_folder_mode() -> None:
    """A page's URL opened as a fresh server's first request (a bookmark, a link sent to a class)
    runs before ``st.navigation`` ever has, and Streamlit then treats ``pages/`` as its older
    multipage folder (raw file names in the sidebar, no frame). Leave that mode for good and run
    the request again through ``app.py``: the page keeps its URL (page ids are URL names)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if PagesManager.uses_pages_directory and ctx is not None:
        PagesManager.uses_pages_directory = False
        if ctx.page_script_hash != ctx.pages_manager.main_script_hash:  # app.py itself goes on to st.navigation
            st.rerun()



def runs_root() -> Path:
    """Where the app saves trained pairs: ``$TCM_RUNS_DIR``, else ``runs/`` in the project."""
    return Path(os.environ.get("TCM_RUNS_DIR", ROOT / "runs"))


ENTRIES = "_entries"  # this run's picker entries: the folders are scanned once per run (in the sidebar)


def entries(refresh: bool = False) -> dict[str, Path]:
    """The picker's entries, scanned at the start of each run (``refresh``: scan again now, after
    this run added one); see ``_scan_entries``."""
    if refresh or ENTRIES not in st.session_state:
        st.session_state[ENTRIES] = _scan_entries()
    return st.session_state[ENTRIES]


def entry(label: str | None) -> Path | None:
    """The folder of the picker entry ``label`` (scanned again when this run created it)."""
    found = entries()
    return found.get(label) if label in found else entries(refresh=True).get(label)


def _scan_entries() -> dict[str, Path]:
    """Label -> folder: trained pairs and repeats (newest first), then uploads (pairs, then
    single runs), then the ready examples. A repeats folder (``seed-<n>/`` pairs and
    ``summary.json``) is one entry with its seeds inside; a study's cells (repeats folders one
    level down, e.g. ``my-study/multi_similarity-bs32``) are entries labelled ``<study>/<cell>``."""
    found = {}
    for prefix, root in (("", runs_root()), ("example: ", EXAMPLES)):
        for folder in sorted([p.root for p in runs.find_pairs(root)] + find_repeats(root),
                             key=lambda p: p.stat().st_mtime, reverse=True):
            found[prefix + folder.name] = folder
        for study in studies(root):
            found.update({f"{prefix}{study.name}/{cell.name}": cell for cell in find_repeats(study)
                          if (folder_pair(cell).tcm / runs.EMBEDDINGS).is_file()})  # viewable cells only
        if prefix == "":
            found.update(_uploaded(root))
    return found


def _uploaded(root: Path) -> dict[str, Path]:
    """Label -> folder of the uploads: ``upload pair: <name>`` and ``upload: <name>`` (a short
    hash is added when two share a name)."""
    found = {}
    for prefix, items in (("upload pair: ", uploads.find_upload_pairs(root)), ("upload: ", uploads.find_uploads(root))):
        for item in items:
            folder = getattr(item, "folder", None) or item.root
            label = prefix + item.name
            found[label if label not in found else f"{label} ({folder.name[:8]})"] = folder
    return found


def upload_label(item) -> str | None:
    """The run picker's label of a stored ``uploads.Upload`` or ``UploadPair``."""
    folder = getattr(item, "folder", None) or item.root
    return next((label for label, f in entries(refresh=True).items() if f == folder), None)


def _pick_pair() -> None:
    """The sidebar's run picker (drawn on every page): a pair, and for repeats a seed; the
    choice lives in session state."""
    options = entries(refresh=True)
    if not options:
        st.sidebar.info("No runs yet: train a pair on the Train page or upload embeddings.")
        return
    labels = list(options)
    linked_run = url_param(RUN)
    if linked_run is not None and linked_run not in labels:
        st.warning(f"The link's run “{linked_run}” is not on this server (deleted, or a link from another "
                   "server): showing the default view.")
    wanted = linked_run if linked_run in labels else st.session_state.get(PAIR)
    label = st.sidebar.selectbox("Run (baseline vs +TCM, or an upload)", labels,
                                 index=labels.index(wanted) if wanted in labels else 0)
    st.session_state[PAIR] = label
    seeds = list(seed_pairs(options[label]))
    if seeds:
        linked_seed = url_param(URL_SEED)
        seed = int(linked_seed) if linked_seed in [str(s) for s in seeds] else st.session_state.get(SEED)
        st.session_state[SEED] = st.sidebar.selectbox(f"Seed ({len(seeds)} repeats)", seeds,
                                                      index=seeds.index(seed) if seed in seeds else 0)


def pick_repeats() -> dict[int, runs.RunPair]:
    """Seed -> pair of the picked entry when it is a repeats folder, else {}."""
    folder = entry(st.session_state.get(PAIR))
    return seed_pairs(folder) if folder is not None else {}


def pick_pair():
    """The pair chosen in the sidebar (for repeats, the chosen seed's; a ``SingleRun`` for a
    single upload), or None."""
    folder = entry(st.session_state.get(PAIR))
    return None if folder is None else folder_pair(folder, st.session_state.get(SEED))


def require_pair(*, single: bool = False):
    """The pair chosen in the sidebar, its runs loadable; the page stops here (after its
    introduction) without one, with one clear message for a damaged run folder, and for a
    single upload unless the page can show one run (``single=True``: a ``SingleRun`` comes back)."""
    pair = pick_pair()
    if pair is None:
        st.stop()
    if pair.tcm is None and not single:
        st.info(f"**{pair.name}** is a single run, and this view compares a baseline with its +TCM twin. "
                "Pick a pair in the sidebar, or upload two files as a pair on the *Your embeddings* page.")
        st.stop()
    try:
        for path in (pair.baseline, pair.tcm):
            if path is not None:
                load_run(path)
    except TCMError as exc:
        st.error(f"{exc}. Pick another run in the sidebar.")
        st.stop()
    return pair


def run_mtime(path: Path) -> float:
    """When a run's test embeddings last changed (the cache key of what is derived from them)."""
    try:
        return (Path(path) / runs.EMBEDDINGS).stat().st_mtime
    except OSError:
        raise TCMError(f"run folder {'/'.join(Path(path).parts[-2:])!r} has no {runs.EMBEDDINGS} (an interrupted copy or a "
                       "run that never finished); retrain or delete the folder") from None


@st.cache_data(show_spinner=False, max_entries=32)
def _run(path: str, mtime: float):
    config = config_dict(path)
    metrics = runs.load_metrics(path)
    embeddings, labels = runs.load_run_embeddings(path)
    return config, metrics, embeddings, labels


def load_run(path: Path):
    """(config dict, metrics dict, embeddings, labels) of a run, cached until it changes."""
    return _run(str(path), run_mtime(path))


def run_config(path: Path) -> TrainConfig:
    """A run's config with its relative data and weight paths resolved against the project."""
    return resolve_paths(runs.load_config(path), ROOT)


_DERIVED = {"distances": distance_histograms, "similarities": pair_similarities, "hits": class_hits}


@st.cache_resource(show_spinner="Counting pair distances once for this run ...", max_entries=24)
def _derived(kind: str, path: str, mtime: float, split: str = "test"):
    embeddings, labels = _run(path, mtime)[2:] if split == "test" else runs.load_run_embeddings(path, split)
    return _DERIVED[kind](embeddings, labels)


def histograms(path: Path):
    """The run's fine per-class distance histograms (what every slider move reuses)."""
    return _derived("distances", str(path), run_mtime(path))


def hits(path: Path):
    """The run's R@1 hits per test class (for the R@1 change's bootstrap)."""
    return _derived("hits", str(path), run_mtime(path))


def pair_changes(pair: runs.RunPair, base, tcm, settings) -> PairChanges:
    """How +TCM changed the picked pair's scores (``RunScores`` under ``settings``), with
    intervals: across seeds when the picked entry holds repeats, else a paired bootstrap over
    the test classes."""
    repeats = pick_repeats()
    if len(repeats) < 2:
        return bootstrap_pair_changes(base, tcm, settings.eps, hits(pair.baseline), hits(pair.tcm))
    scores = [pair_scores(histograms(p.baseline), histograms(p.tcm), settings) for p in repeats.values()]
    recalls = [(load_run(p.baseline)[1]["recall_at_1"], load_run(p.tcm)[1]["recall_at_1"]) for p in repeats.values()]
    return seed_pair_changes(scores, recalls)


def finished_changes(folder: Path) -> tuple[dict, dict, PairChanges]:
    """(baseline metrics, +TCM metrics, changes) of a finished pair folder: for repeats the mean
    over seeds and the changes across seeds (``summary.json``), else a paired bootstrap."""
    pair = folder_pair(folder)
    if len(seed_pairs(folder)) >= 2:  # the mean over seeds, and the changes across seeds
        summary = load_summary(folder)
        base, tcm = ({k: float(np.mean([r[side][k] for r in summary["per_seed"]])) for k in ("opis", "recall_at_1")}
                     for side in runs.PAIR)
        c = summary_changes(summary)
        return base, tcm, PairChanges(c["opis_change_pct"], c["eps_opis_change_pct"], c["recall_at_1_change_pts"])
    base, tcm = load_run(pair.baseline)[1], load_run(pair.tcm)[1]
    scores = pair_scores(histograms(pair.baseline), histograms(pair.tcm))
    return base, tcm, bootstrap_pair_changes(*scores, DEFAULT_EPS, hits(pair.baseline), hits(pair.tcm))


def similarities(path: Path):
    """``(histograms, split)``: the run's positive / negative pair cosine similarities for the
    margins sliders, on its validation split (where margins are chosen) when it has one, else
    on test (runs written before validation existed)."""
    split = "val" if (Path(path) / runs.VAL_EMBEDDINGS).is_file() else "test"
    return _derived("similarities", str(path), run_mtime(path), split), "validation" if split == "val" else "test"


@st.cache_resource
def _device_text() -> str:
    return describe_device(resolve_device("auto"))


@st.cache_data(ttl=30, show_spinner=False)
def _datasets(root: str) -> dict[str, str]:
    return available_datasets(root)


def sidebar() -> None:
    """Compute device, data root and what it holds, then the run picker."""
    root = resolve_data_dir(None)
    with st.sidebar:
        st.caption(f"**Compute:** {_device_text()}")
        found = _datasets(str(root))
        st.caption(f"**Data root:** `{root}`" + (" (set `TCM_DATA_DIR` to change)" if "TCM_DATA_DIR" not in os.environ else ""))
        st.caption("**Datasets there:** " + (", ".join(found) if found else "none yet (MNIST downloads on first use when online; the 8×8 digits always work)"))
    start_run()
    _pick_pair()
    link_box()


def share_view() -> None:
    """After the page: the view (run, seed, the page's linked widgets) into the URL and the
    sidebar's link box."""
    share_link(st.session_state.get(PAIR), st.session_state.get(SEED) if pick_repeats() else None)


def metric_pair(cols, label: str, base: float, new: float, kind: str = "opis", *,
                names=("baseline", "+TCM"), interval=None) -> None:
    """Two ``st.metric``s, ``label baseline`` and ``label +TCM``, the second with the change as
    its delta: percent for inconsistency scores (lower is better, ``kind="opis"``), points for
    shares (higher is better, ``kind="share"``). With an ``uncertainty.Interval`` of the change,
    the interval is written right under it and the delta is colored only when the interval
    excludes zero ("within noise" otherwise)."""
    score = kind == "opis"
    change_kind = "change" if score else "points"
    value = interval.value if interval is not None else (relative_change(base, new) if score else points_change(base, new))
    delta = format_metric(value, change_kind)
    colored = True if interval is None else change_with_interval(interval, change_kind)[1]
    color = ("inverse" if score else "normal") if colored else "off"
    cols[0].metric(f"{label} {names[0]}", format_metric(base, kind))
    cols[1].metric(f"{label} {names[1]}", format_metric(new, kind),
                   None if delta == "—" else delta.replace("−", "-"),  # st.metric reads the sign from "-"
                   delta_color=color, help=None if interval is None else f"Interval: {interval.method}.")
    if interval is not None:
        cols[1].caption(interval_note(interval, change_kind))


def show_error(exc: Exception) -> None:
    """One clear message for what a user can fix; anything else is reported as a bug."""
    if isinstance(exc, TCMError):
        st.error(str(exc))
    else:
        st.error(f"Unexpected error ({type(exc).__name__}): {exc}. This is a bug in TCM Explorer.")


@st.cache_resource
def _queue(root: str):
    from tcm_core.tasks.queue import JobQueue

    return JobQueue(root)


def job_manager():
    """The server's one queue of background work (``tcm_core.tasks.queue``), shared by every
    session; saved in ``queue.json`` under the runs folder, so it outlives a restart."""
    return _queue(str(runs_root()))


def session_owner() -> str:
    """This session's owner id in the queue (a uuid kept in its state)."""
    if OWNER not in st.session_state:
        st.session_state[OWNER] = uuid.uuid4().hex[:12]
    return st.session_state[OWNER]


# Last, once this module is whole (another session's first run may be importing it at the same
# time): once per server process, since this module is imported by the first run.
_leave_pages_folder_mode()
