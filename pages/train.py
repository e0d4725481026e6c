"""Train a baseline and its + TCM twin side by side, in the background, with live progress."""

import time

import streamlit as st

from pages._common import job_manager, runs_root, show_error
from tcm_core.data import DATASETS
from tcm_core.errors import TCMError
from tcm_core.jobs import JobStatus
from tcm_core.losses import BASE_LOSSES
from tcm_core.models import BACKBONES
from tcm_core.training import TrainConfig
from tcm_core.viz import history_figure

st.title("Train a pair")
st.markdown("The same base loss with and without TCM, from **identical initial weights and "
            "batch order**, so the difference is TCM alone. Training runs in the background: "
            "other pages stay usable. The defaults (MNIST ArcFace toy, 3-D) take about a minute on a laptop CPU.")
manager = job_manager()

with st.form("train"):
    c = st.columns(4)
    dataset = c[0].selectbox("Dataset", list(DATASETS), index=list(DATASETS).index("mnist"), key="dataset")
    data_dir = c[1].text_input("Data folder", "", key="data_dir", help="Empty: the data root in the sidebar. For 'folder': the folder of class folders.")
    backbone = c[2].selectbox("Backbone", ["auto"] + sorted(BACKBONES), help="auto: small_cnn for small images, mobilenet_v2 for photos")
    weights = c[3].text_input("Weights", "", help="torchvision name (DEFAULT) or a local .pth file; empty: random")
    c = st.columns(4)
    loss = c[0].selectbox("Base loss", sorted(BASE_LOSSES), index=sorted(BASE_LOSSES).index("arcface"), key="loss")
    dim = c[1].number_input("Embedding dimension (0: auto)", 0, 2048, 3, key="dim")
    epochs = c[2].number_input("Epochs", 1, 500, 1, key="epochs")
    max_train = c[3].number_input("Training images (0: all)", 0, 10_000_000, 20_000, step=1000, key="max_train")
    c = st.columns(4)
    batch = c[0].number_input("Batch size", 4, 4096, 16, key="batch")
    per_class = c[1].number_input("Samples per class (K)", 1, 64, 2, key="per_class")
    lr = c[2].number_input("Learning rate", 1e-5, 1.0, 5e-3, format="%.4f")
    freeze = c[3].checkbox("Freeze backbone (train the head on cached features)")
    c = st.columns(6)
    m_pos = c[0].slider("m⁺ (margin_pos)", -1.0, 1.0, float(st.session_state.get("suggested_margins", (0.9, 0.5))[0]), 0.05)
    m_neg = c[1].slider("m⁻ (margin_neg)", -1.0, 1.0, float(st.session_state.get("suggested_margins", (0.9, 0.5))[1]), 0.05)
    l_pos = c[2].number_input("λ⁺", 0.0, 100.0, 1.0)
    l_neg = c[3].number_input("λ⁻", 0.0, 100.0, 1.0)
    seed = c[4].number_input("Seed", 0, 2**31 - 1, 0)
    device = c[5].selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="device")
    submitted = st.form_submit_button("Train baseline and + TCM", type="primary")

if submitted:
    try:
        config = TrainConfig(
            dataset=dataset, data_dir=data_dir or None, backbone=None if backbone == "auto" else backbone,
            weights=weights or None, freeze_backbone=freeze, embedding_dim=int(dim) or None, loss=loss,
            margin_pos=m_pos, margin_neg=m_neg, lambda_pos=l_pos, lambda_neg=l_neg, epochs=int(epochs),
            batch_size=int(batch), samples_per_class=int(per_class), lr=float(lr), seed=int(seed),
            device=device, max_train_samples=int(max_train) or None)
        out = runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{loss}"
        st.session_state["job_id"] = manager.submit(config, out, compare=True).job_id
    except TCMError as exc:
        show_error(exc)

job = manager.get(st.session_state["job_id"]) if "job_id" in st.session_state else next(iter(manager.jobs()), None)


@st.fragment(run_every=1.0 if job is not None and not job.done else None)
def progress(job):
    snap = job.snapshot()
    st.subheader(f"{snap.out.name}: {snap.status.value}")
    if snap.stage and snap.status == JobStatus.RUNNING:
        st.progress(snap.stage_fraction or 0.0, text=snap.stage) if snap.stage_fraction is not None else st.caption(snap.stage)
    for name, run in snap.runs.items():
        text = f"{name}: epoch {min(run.epoch + 1, run.epochs)}/{run.epochs}" + (f", loss {run.loss:.4f}" if run.loss is not None else "")
        st.progress(run.fraction, text=text)
    histories = {name: list(run.records) for name, run in snap.runs.items()}
    if any(histories.values()):
        st.plotly_chart(history_figure(histories), width="stretch")
        last = {name: h[-1] for name, h in histories.items() if h}
        cols = st.columns(2 * len(last))
        for i, (name, r) in enumerate(last.items()):
            cols[2 * i].metric(f"OPIS {name} (epoch {r['epoch']})", f"{r['opis']:.5f}")
            cols[2 * i + 1].metric(f"R@1 {name}", f"{r['recall_at_1']:.3f}")
    if snap.error:
        st.error(snap.error)
    c1, c2, c3 = st.columns(3)
    if not job.done and c1.button("Stop", icon=":material/stop:"):
        job.stop()
    if job.resumable and c2.button("Resume", icon=":material/play_arrow:"):
        try:
            st.session_state["job_id"] = manager.resume(job.job_id).job_id
            st.rerun()
        except TCMError as exc:
            show_error(exc)
    if snap.status == JobStatus.FINISHED:
        st.success(f"Finished in {snap.elapsed:.0f} s and saved to `{snap.out}`.")
        if c3.button("Open in the threshold view", type="primary"):
            st.session_state["pair_label"] = snap.out.name
            st.switch_page("pages/threshold.py")
        if st.session_state.get("announced") != snap.job_id:  # refresh the sidebar's run picker
            st.session_state["announced"] = snap.job_id
            st.rerun()


if job is not None:
    progress(job)
