"""The margins page's long panels: the quick retrain (validation chosen on, test beside) and
the Optuna margin search (settings, progress, the Pareto front, trial actions and the re-check
with repeats). All three run in the server's queue (``tcm_core.tasks.queue``); session state
holds this session's jobs, and each panel polls its job in a fragment."""

import hashlib
import json
from pathlib import Path

import streamlit as st

from pages._common import (PAIR, RECHECK, RETRAIN_RESULT, SUGGESTED_MARGINS, TUNE, job_manager, metric_pair,
                           run_config, runs_root, session_owner, show_error)
from tcm_core.experiments.tune import DEFAULT_TRIALS, TuneSpec, best_trial, trials_frame
from tcm_core.tasks.requests import recheck_request, retrain_request, tune_request
from tcm_core.training import TrainConfig
from tcm_core.training.runs import new_run_dir
from tcm_core.viz.margins import (finished_trials, grid_heatmaps, pareto_figure, recheck_caption, retrain_caption,
                                  trial_text, tune_caption, tune_status)


def submit(key: str, request) -> None:
    """Queue ``request`` for this session and keep its job under ``key`` (errors shown)."""
    try:
        st.session_state[key] = job_manager().submit(request, session_owner())
    except Exception as exc:  # noqa: BLE001 -- shown, never a traceback
        show_error(exc)


def watch(panel, job) -> None:
    """Draw ``panel(job)`` in a fragment that polls while the job is not done."""
    st.fragment(panel, run_every=None if job.done else job_manager().watch(session_owner()))(job)


def job_status(job, what: str) -> bool:
    """A job's bar, place in the queue, Stop (for its owners) and error; True once it finished.
    When it ends, the page reruns once so its fragment stops polling."""
    queue, owner, snap = job_manager(), session_owner(), job.snapshot()
    if snap.status == "queued":
        st.info(f"{what} is queued: number {queue.position(job.job_id)}, {len(queue.running())} of "
                f"{queue.workers} worker(s) busy.")
    elif not snap.done:
        st.progress(snap.fraction or 0.0, text=snap.stage or "starting")
        if owner in job.owners and st.button(f"Stop {what.lower()}", icon=":material/stop:"):
            queue.stop(job.job_id, owner)
    if snap.error:
        st.error(snap.error)
    if snap.done and st.session_state.get(f"ended-{job.job_id}") is None:
        st.session_state[f"ended-{job.job_id}"] = True
        st.rerun()
    return snap.status == "finished"


def retrain_ui(pair, m_pos, m_neg, l_pos, l_neg) -> None:
    """The margins page's "Retrain with these margins": the button, then the queued retrain's
    progress and the retrained pair's validation (chosen on) and test (reported) changes."""
    if st.button("Retrain with these margins", type="primary"):
        out = new_run_dir(runs_root(), "retrain", f"mp{m_pos:.2f}", f"mn{m_neg:.2f}")
        submit(RETRAIN_RESULT, retrain_request(run_config(pair.tcm), m_pos, m_neg, out, lambda_pos=l_pos,
                                               lambda_neg=l_neg, baseline=pair.baseline))
    if (job := st.session_state.get(RETRAIN_RESULT)) is not None:
        watch(retrain_panel, job)


def retrain_panel(job) -> None:
    if not job_status(job, "Retrain"):
        return
    if (res := job.snapshot().progress.result) is None:  # finished before a server restart: not kept
        return
    names = ("baseline", "retrained")
    if res.val_opis is None:
        st.info("These runs have no validation split (written before validation existed): only test is known.")
    else:
        c = st.columns(4)
        metric_pair(c[0:2], "Validation OPIS", res.baseline_val_opis, res.val_opis, names=names, interval=res.validation.opis)
        metric_pair(c[2:4], "Validation R@1", res.baseline_val_recall_at_1, res.val_recall_at_1, "share", names=names,
                    interval=res.validation.recall_at_1)
    c = st.columns(4)
    metric_pair(c[0:2], "OPIS", res.baseline_opis, res.opis, names=names, interval=res.test.opis)
    metric_pair(c[2:4], "R@1", res.baseline_recall_at_1, res.recall_at_1, "share", names=names, interval=res.test.recall_at_1)
    st.caption("Choose margins on the validation row; the test row is reported beside, for the record. "
               + retrain_caption(res))


# ------------------------------------------------------------------ margin search (Optuna)

SAMPLER_NAMES = {"grid": "Grid (for teaching)", "tpe": "TPE", "nsga2": "NSGA-II"}
RECHECK_SEEDS = (0, 1, 2)


def search_settings_ui() -> TuneSpec:
    """The search's sampler, grid values or ranges and trial count (TCMError if bad)."""
    c = st.columns([1.3, 2, 2, 1])
    sampler = c[0].radio("Sampler", list(SAMPLER_NAMES), format_func=SAMPLER_NAMES.get, key="tn_sampler")
    if sampler == "grid":
        pos = c[1].multiselect("m⁺ values", [0.6, 0.7, 0.8, 0.9, 0.95], [0.7, 0.8, 0.9], key="tn_pos")
        neg = c[2].multiselect("m⁻ values", [0.2, 0.3, 0.4, 0.5, 0.6], [0.3, 0.4, 0.5], key="tn_neg")
        c[3].metric("Trials", len(pos) * len(neg), help="every grid point once")
        return TuneSpec("grid", tuple(pos), tuple(neg))
    pos = c[1].slider("m⁺ range", -1.0, 1.0, (0.6, 0.95), 0.01, key="tn_pos_range")
    neg = c[2].slider("m⁻ range", -1.0, 1.0, (0.2, 0.6), 0.01, key="tn_neg_range")
    trials = c[3].number_input("Trials", 2, 500, DEFAULT_TRIALS, key="tn_trials")
    return TuneSpec(sampler, pos, neg, trials=int(trials))


def search_name(pair, spec) -> str:
    """``search-<pair>-<sampler>-<hash>``: the same pair and search space resume one search."""
    space = {k: v for k, v in spec.to_dict().items() if k not in ("trials", "seed")}
    digest = hashlib.sha1(json.dumps([str(pair.root.resolve()), space]).encode()).hexdigest()[:6]
    return f"search-{pair.root.name}-{spec.sampler}-{digest}"


def search_ui(pair) -> None:
    """The margins page's "Margin search (Optuna)": settings, Start, and the live panels."""
    try:
        spec = search_settings_ui()
    except Exception as exc:  # noqa: BLE001 -- e.g. an empty grid: shown, never a traceback
        show_error(exc)
        spec = None
    task = st.session_state.get(TUNE)
    running = task is not None and not task.done
    if spec is not None and st.button("Start search", icon=":material/travel_explore:", disabled=running,
                                      help="Start again with the same settings to resume a search where it stopped"):
        out = runs_root() / search_name(pair, spec)
        submit(TUNE, tune_request(run_config(pair.tcm), pair.baseline, out, spec, trials_dir=runs_root()))
    if (task := st.session_state.get(TUNE)) is not None:
        watch(search_panel, task)
    if (check := st.session_state.get(RECHECK)) is not None:
        watch(recheck_panel, check)


def _spec(job) -> TuneSpec:
    return TuneSpec.from_dict(job.request.args["spec"])


def search_panel(task) -> None:
    """A search's progress, Pareto figure (and grid heatmaps), and what to do with a trial."""
    snap = task.snapshot()
    if snap.status != "queued":
        st.caption(tune_status(snap))
    job_status(task, "Search")
    df = trials_frame(snap.progress.trials)
    if finished_trials(df).empty:
        return
    best = best_trial(df)
    number = None if best is None else int(best["number"])
    st.plotly_chart(pareto_figure(df, number), width="stretch")
    if _spec(task).sampler == "grid":
        st.plotly_chart(grid_heatmaps(df, number), width="stretch")
    st.caption(tune_caption(df))
    trial_actions_ui(task, finished_trials(df), best)


def trial_actions_ui(task, rows, best) -> None:
    """Pick a trial: load its pair in the sidebar, or re-check its margins on test with repeats;
    send the suggested margins to the Train page."""
    numbers = [int(n) for n in rows["number"]]
    row_of = lambda n: rows[rows["number"] == n].iloc[0]  # noqa: E731
    c = st.columns([3, 1])
    picked = c[0].selectbox("Trial", numbers, index=numbers.index(int(best["number"])) if best is not None else 0,
                            key="tn_trial", format_func=lambda n: trial_text(row_of(n)))
    row = row_of(picked)
    if c[1].button("Load in the sidebar", key="tn_load"):
        st.session_state[PAIR] = Path(row["run_dir"]).name
        st.rerun()
    c = st.columns(2)
    if best is not None and c[0].button("Send best margins to the Train page", type="primary"):
        st.session_state[SUGGESTED_MARGINS] = (float(best["margin_pos"]), float(best["margin_neg"]))
        st.success(f"The Train page now starts from m⁺ {best['margin_pos']:g}, m⁻ {best['margin_neg']:g}.")
    check = st.session_state.get(RECHECK)
    busy = check is not None and not check.done
    if c[1].button(f"Re-check on test classes with {len(RECHECK_SEEDS)} seeds", disabled=busy,
                   help="Trains the picked trial's margins as repeats with the run's whole budget"):
        margins = (float(row["margin_pos"]), float(row["margin_neg"]))
        out = runs_root() / f"{task.out.name}-recheck-mp{margins[0]:.2f}-mn{margins[1]:.2f}"
        submit(RECHECK, recheck_request(TrainConfig.from_dict(task.request.args["config"]), *margins, out,
                                        RECHECK_SEEDS, lambda_pos=_spec(task).lambda_pos,
                                        lambda_neg=_spec(task).lambda_neg))
        st.rerun()


def recheck_panel(task) -> None:
    """A re-check's progress, then +TCM's change on the test classes across seeds."""
    snap, p = task.snapshot(), task.snapshot().progress
    st.caption(f"Re-check of m⁺ {p.margin_pos:g}, m⁻ {p.margin_neg:g} on {len(p.seeds)} seeds: {snap.status.value}")
    job_status(task, "Re-check")
    if (r := p.result) is None:
        return
    c = st.columns(4)
    metric_pair(c[0:2], "Test OPIS", r.baseline_opis, r.opis, interval=r.opis_change)
    metric_pair(c[2:4], "Test R@1", r.baseline_recall_at_1, r.recall_at_1, "share", interval=r.recall_at_1_change)
    st.caption(recheck_caption(r))
    if st.button("Load the repeats in the sidebar", key="tn_load_recheck"):
        st.session_state[PAIR] = Path(r.out).name
        st.rerun()

