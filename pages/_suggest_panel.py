"""The margins page's "margins from targets" panel: m- and m+ at quantiles of the baseline's
negative and positive pair similarities (``metrics.suggest``), sent to the sliders on request,
and as JSON to take away."""

import json

import streamlit as st

from pages._links import linked
from tcm_core.metrics.suggest import DEFAULT_FAR, DEFAULT_FRR, suggest_margins_from_histograms
from tcm_core.viz import format_metric

FAR_TARGETS = [1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1]
FRR_TARGETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]


def _use(m_pos: float, m_neg: float) -> None:
    st.session_state["mg_pos"], st.session_state["mg_neg"] = round(m_pos, 2), round(m_neg, 2)


def suggestion_ui(h, split: str, run_name: str) -> None:
    """``h``: the baseline's ``SimilarityHistograms`` on ``split``."""
    linked("sg_far", options=FAR_TARGETS)
    linked("sg_frr", options=FRR_TARGETS)
    c = st.columns(2)
    far = c[0].select_slider("Target FAR on negatives (share of different-class pairs TCM pushes apart)", FAR_TARGETS,
                             value=DEFAULT_FAR, format_func=lambda v: f"{v:g}", key="sg_far")
    frr = c[1].select_slider("Target FRR on positives (share of same-class pairs TCM pulls together)", FRR_TARGETS,
                             value=DEFAULT_FRR, format_func=lambda v: f"{v:g}", key="sg_frr")
    s = suggest_margins_from_histograms(h, far=far, frr=frr)
    m = st.columns(4)
    m[0].metric("Suggested m⁻", f"{s.margin_neg:.3f}", help=f"the {1 - far:g} quantile of negative-pair similarities")
    m[1].metric("Negatives penalized", format_metric(s.share_neg, "rate"), help=f"of {s.negative_pairs:,} {split} pairs")
    m[2].metric("Suggested m⁺", f"{s.margin_pos:.3f}", help=f"the {frr:g} quantile of positive-pair similarities")
    m[3].metric("Positives penalized", format_metric(s.share_pos, "recall"), help=f"of {s.positive_pairs:,} {split} pairs")
    if s.note:
        st.warning(s.note)
    st.caption(f"From the {split} pairs' similarity histograms ({s.method}); the exact values from the embeddings: "
               f"`tcm suggest-margins FILE --far {far:g} --frr {frr:g}`. Train with `{s.train_options}`.")
    b1, b2 = st.columns(2)
    b1.button("Use these margins in the sliders above", on_click=_use, args=(s.margin_pos, s.margin_neg))
    b2.download_button("Suggested margins (JSON)", json.dumps({"run": run_name, "split": split, **s.to_dict()}, indent=2),
                       f"margins_far{far:g}_frr{frr:g}.json", "application/json")
