"""Home: what threshold inconsistency is, shown on the ready example, and where to go next."""

import streamlit as st

from pages._common import entries, finished_changes, histograms, metric_pair
from pages._exports import figure_downloads
from tcm_core.metrics import scores_from_histograms
from tcm_core.training.folders import folder_pair
from tcm_core.viz import utility_figure

st.title("TCM Explorer")
st.markdown(
    """
**Will one distance threshold work for all my classes?** Retrieval and verification systems
built on embeddings declare *match* when two embeddings are closer than **one global threshold**.
Classes differ in how spread out they are, so that one threshold gives some classes far more
false accepts or false rejects than others: **threshold inconsistency**.

TCM Explorer measures it with **OPIS** (the variance of per-class utility over a calibration
range) and **ε-OPIS** (how far the worst ε of classes sit from the rest), and reduces it with
**TCM**, a margin regularizer added to any base loss (Zhang et al., ICLR 2024).
"""
)
examples = [label for label in entries() if label.startswith("example")]
if examples:
    label = examples[0]
    folder = entries()[label]
    scores = scores_from_histograms(histograms(folder_pair(folder).baseline))
    st.plotly_chart(fig := utility_figure(scores.curves, title=f"Per-class utility vs threshold: {label} (baseline)"),
                    width="stretch")
    figure_downloads(fig, "utility_curves_example")
    st.caption("One thin line per test class. Where the lines spread apart, a single threshold "
               "cannot serve every class equally well.")
    base, tcm, changes = finished_changes(folder)
    m = st.columns(4)
    metric_pair(m[0:2], "OPIS", base["opis"], tcm["opis"], interval=changes.opis)
    metric_pair(m[2:4], "R@1", base["recall_at_1"], tcm["recall_at_1"], "share", interval=changes.recall_at_1)
    st.caption(f"What TCM changed on this example's test classes ({changes.opis.method}); a change is colored "
               "only when its 95% interval excludes zero, and called *within noise* otherwise.")
st.markdown(
    """
**Next:** compare a baseline with its +TCM twin on the **Threshold consistency** page (ready
examples are there), or train your own pair on the **Train** page.
"""
)
c1, c2 = st.columns(2)
c1.page_link("pages/threshold.py", label="Open the threshold-consistency view", icon=":material/ssid_chart:")
c2.page_link("pages/train.py", label="Train a pair", icon=":material/model_training:")
