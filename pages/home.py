"""Home: what threshold inconsistency is, shown on the ready example, and where to go next."""

import streamlit as st

from pages._common import histograms, pairs
from tcm_core.explore import ViewSettings, run_view
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
examples = {k: v for k, v in pairs().items() if k.startswith("example")}
if examples:
    label = next(iter(examples))
    view = run_view(histograms(examples[label].baseline), ViewSettings())
    st.plotly_chart(utility_figure(view.curves, title=f"Per-class utility vs threshold: {label} (baseline)"),
                    width="stretch")
    st.caption("One thin line per test class. Where the lines spread apart, a single threshold "
               "cannot serve every class equally well.")
st.markdown(
    """
**Next:** compare a baseline with its + TCM twin on the **Threshold consistency** page (ready
examples are there), or train your own pair on the **Train** page.
"""
)
c1, c2 = st.columns(2)
c1.page_link("pages/threshold.py", label="Open the threshold-consistency view", icon=":material/ssid_chart:")
c2.page_link("pages/train.py", label="Train a pair", icon=":material/model_training:")
