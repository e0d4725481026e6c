"""Train a baseline and its +TCM twin side by side, in the server's queue, with live progress."""

import streamlit as st

from pages._common import (ANNOUNCED, JOB, PAIR, finished_changes, job_manager, metric_pair, runs_root,
                           session_owner, show_error)
from pages._exports import figure_downloads, report_download
from pages._train_form import train_form_ui
from tcm_core.errors import TCMError
from tcm_core.tasks.base import TaskStatus
from tcm_core.tasks.requests import train_request
from tcm_core.training.runs import new_run_dir
from tcm_core.viz import format_metric, history_figure


@st.cache_resource(max_entries=32, show_spinner=False)
def _history(job_id: str, epochs: tuple, _histories):  # rebuilt only when an epoch arrives
    return history_figure(_histories)


def queue_note(queue, job) -> str:
    """Where a queued job stands: its place, what runs, and the estimated wait."""
    wait = queue.wait_seconds(job.job_id)
    when = "unknown until a job has finished here" if wait is None else f"about {format_metric(wait, 'seconds')}"
    return (f"Queued: number {queue.position(job.job_id)} of {len(queue.queued())} waiting; "
            f"{len(queue.running())} of {queue.workers} worker(s) busy. Estimated wait: {when}.")


def progress_ui(job) -> None:  # status, a bar per run, live charts, Stop / Resume / Open
    queue, owner, snap = job_manager(), session_owner(), job.snapshot()
    queue.watch(owner)
    st.subheader(f"{job.out.name}: {snap.status.value}")
    if snap.status == TaskStatus.QUEUED:
        st.info(queue_note(queue, job))
    if snap.stage and snap.status == TaskStatus.RUNNING:
        st.progress(snap.progress.stage_fraction or 0.0, text=snap.stage)
    for run in snap.progress.runs:
        loss = f", loss {run.loss:.4f}" if run.loss is not None else ""
        st.progress(run.fraction, text=f"{run.run}: epoch {min(run.epoch + 1, run.epochs)}/{run.epochs}{loss}")
    histories = {run.run: run.records for run in snap.progress.runs}
    if any(histories.values()):
        epochs = tuple(len(h) for h in histories.values())
        st.plotly_chart(fig := _history(job.job_id, epochs, histories), width="stretch")
        if job.done:  # not while the chart redraws every second
            figure_downloads(fig, f"training_history_{job.out.name}")
    if snap.status == TaskStatus.FINISHED:
        finished_ui(job)
    if snap.error:
        st.error(snap.error)
    c1, c2, c3 = st.columns(3)
    if not job.done and owner in job.owners and c1.button("Stop", icon=":material/stop:"):
        if not queue.stop(job.job_id, owner):
            st.info("Left the job: other sessions asked for the same training and still wait for it.")
    if job.resumable and c2.button("Resume", icon=":material/play_arrow:"):
        st.session_state[JOB] = queue.resume(job.job_id, owner).job_id
        st.rerun()
    if snap.status == TaskStatus.FINISHED:
        took = "" if job.seconds is None else f"Finished in {format_metric(job.seconds, 'seconds')} and saved"
        st.success(f"{took or 'Saved'} to `{job.out}`.")
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


def submit(queue, owner, config, seeds) -> None:
    """Queue the pair (or repeats); an identical finished run or queued job is reused."""
    job = queue.submit(train_request(config, new_run_dir(runs_root(), config.dataset, config.loss), seeds=seeds), owner)
    st.session_state[JOB] = job.job_id
    if job.done:
        st.toast("This exact training (config, seed, data and code) has already run: here is its result.")
    elif len(job.owners) > 1:
        st.toast(f"Joined the identical training that {len(job.owners) - 1} other session(s) asked for.")


st.title("Train a pair")
st.markdown("The same base loss with and without TCM, from **identical initial weights and batch order**, "
            "so the difference is TCM alone. Training runs in the server's queue, in its own process: other "
            "pages stay usable, and a training someone already ran comes back at once. The defaults (MNIST "
            "ArcFace toy, 3-D) take about a minute and a half on a laptop CPU.")
queue, owner = job_manager(), session_owner()
for note in queue.notes:  # what a restart could not bring back
    st.warning(note)
try:
    if (form := train_form_ui()) is not None:
        submit(queue, owner, *form)
except TCMError as exc:
    show_error(exc)

listed = [j for j in queue.jobs() if j.request.kind == "train"]  # trainings only (the queue holds searches too)
mine = [j for j in listed if owner in j.owners]  # this session's job, else its newest, else the newest (to watch)
job = next((j for j in listed if j.job_id == st.session_state.get(JOB)), None) or next(iter(mine or listed), None)
if job is not None:
    st.fragment(progress_ui, run_every=None if job.done else queue.watch(owner))(job)
