"""Train a baseline and its +TCM twin side by side, in the background, with live progress."""

import streamlit as st

from pages._common import ANNOUNCED, JOB, PAIR, finished_changes, job_manager, metric_pair, runs_root, show_error
from pages._exports import figure_downloads, report_download
from pages._train_form import train_form_ui
from tcm_core.errors import TCMError
from tcm_core.tasks.base import TaskStatus
from tcm_core.training.runs import new_run_dir
from tcm_core.viz import format_metric, history_figure


def progress_ui(job) -> None:  # status, a bar per run, live charts, Stop / Resume / Open
    snap = job.snapshot()
    st.subheader(f"{job.out.name}: {snap.status.value}")
    if snap.stage and snap.status == TaskStatus.RUNNING:
        st.progress(snap.progress.stage_fraction or 0.0, text=snap.stage)
    for run in snap.progress.runs:
        loss = f", loss {run.loss:.4f}" if run.loss is not None else ""
        st.progress(run.fraction, text=f"{run.run}: epoch {min(run.epoch + 1, run.epochs)}/{run.epochs}{loss}")
    histories = {run.run: run.records for run in snap.progress.runs}
    if any(histories.values()):
        st.plotly_chart(fig := history_figure(histories), width="stretch")
        if job.done:  # not while the chart redraws every second
            figure_downloads(fig, f"training_history_{job.out.name}")
    if snap.status == TaskStatus.FINISHED:
        finished_ui(job)
    if snap.error:
        st.error(snap.error)
    c1, c2, c3 = st.columns(3)
    if not job.done and c1.button("Stop", icon=":material/stop:"):
        job.stop()
    if job.resumable and c2.button("Resume", icon=":material/play_arrow:"):
        st.session_state[JOB] = manager.resume(job.job_id).job_id
        st.rerun()
    if snap.status == TaskStatus.FINISHED:
        st.success(f"Finished in {format_metric(snap.elapsed, 'seconds')} and saved to `{job.out}`.")
        if c3.button("Open in the threshold view", type="primary"):
            st.session_state[PAIR] = job.out.name
            st.switch_page("pages/threshold.py")
        if st.session_state.get(ANNOUNCED) != job.job_id:  # refresh the sidebar's run picker
            st.session_state[ANNOUNCED] = job.job_id
            st.rerun()


def finished_ui(job) -> None:  # the pair's changes with their intervals (across seeds for repeats)
    base, tcm, changes = finished_changes(job.out)
    m = st.columns(4)
    metric_pair(m[0:2], "OPIS", base["opis"], tcm["opis"], interval=changes.opis)
    metric_pair(m[2:4], "R@1", base["recall_at_1"], tcm["recall_at_1"], "share", interval=changes.recall_at_1)
    st.caption(f"Changes on the test classes: {changes.opis.method}. Colored only when the 95% interval excludes zero.")
    report_download(job.out)


st.title("Train a pair")
st.markdown("The same base loss with and without TCM, from **identical initial weights and batch order**, "
            "so the difference is TCM alone. Training runs in the background: other pages stay usable. "
            "The defaults (MNIST ArcFace toy, 3-D) take about a minute on a laptop CPU.")
manager = job_manager()
try:
    if (form := train_form_ui()) is not None:
        out = new_run_dir(runs_root(), form[0].dataset, form[0].loss)
        st.session_state[JOB] = manager.submit(form[0], out, seeds=form[1] if len(form[1]) > 1 else ()).job_id
except TCMError as exc:
    show_error(exc)

job = manager.get(st.session_state[JOB]) if JOB in st.session_state else next(iter(manager.jobs()), None)
if job is not None:
    st.fragment(progress_ui, run_every=1.0 if not job.done else None)(job)
