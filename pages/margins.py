"""Tune TCM margins: what m+ / m- penalize on the validation pairs, a quick retrain, a margin search."""

import streamlit as st

from pages._common import load_run, require_pair, similarities
from pages._links import linked
from pages._exports import figure_downloads
from pages._margin_panels import retrain_ui, search_ui
from pages._suggest_panel import suggestion_ui
from tcm_core.losses.tcm import LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS
from tcm_core.metrics.similarities import penalized_shares, tcm_terms
from tcm_core.training.retrain import RetrainBudget
from tcm_core.viz import format_metric
from tcm_core.viz.margins import retrain_note, similarity_histogram_figure


def margins_ui(cfg: dict) -> tuple[float, float, float, float]:  # (m+, m-, λ+, λ-): the +TCM run's, else defaults
    for key, low, high in (("mg_pos", -1, 1), ("mg_neg", -1, 1), ("mg_lpos", 0, 5), ("mg_lneg", 0, 5)):
        linked(key.removeprefix("mg_"), key, low=low, high=high)
    get = lambda name, default: float(cfg.get(name, default))  # noqa: E731
    c = st.columns(4)
    return (c[0].slider("m⁺ (margin_pos)", -1.0, 1.0, get("margin_pos", MARGIN_POS), 0.01, key="mg_pos"),
            c[1].slider("m⁻ (margin_neg)", -1.0, 1.0, get("margin_neg", MARGIN_NEG), 0.01, key="mg_neg"),
            c[2].slider("λ⁺ (lambda_pos)", 0.0, 5.0, get("lambda_pos", LAMBDA_POS), 0.1, key="mg_lpos"),
            c[3].slider("λ⁻ (lambda_neg)", 0.0, 5.0, get("lambda_neg", LAMBDA_NEG), 0.1, key="mg_lneg"))


st.title("Tune TCM margins")
st.markdown("TCM penalizes **hard pairs** only: same-class pairs less similar than **m⁺** and different-class pairs "
            "more similar than **m⁻**. The histograms are the cosine similarities of all **validation** pairs of the "
            "**baseline** run (what TCM would start from; margins are chosen on validation classes, never on test): "
            "the shaded bands are what your margins would act on.")
pair = require_pair(single=True)
uploaded = "uploaded" in load_run(pair.baseline)[0]
if uploaded:
    st.info("Uploaded embeddings: the histograms are all pairs of the uploaded baseline file. Choose margins on "
            "classes you will not test on (upload a validation split's embeddings for that).")
elif not load_run(pair.baseline)[1].get("validation"):
    st.info("This pair was trained before validation splits existed, so it has no validation metrics: a retrain "
            "or search from it trains new runs that do, but a frozen-backbone search reuses this baseline and "
            "then chooses on test classes (the search's caption says which).")
h, split = similarities(pair.baseline)
m_pos, m_neg, l_pos, l_neg = margins_ui(load_run(pair.tcm or pair.baseline)[0])
(share_pos, share_neg), (term_pos, term_neg) = penalized_shares(h, m_pos, m_neg), tcm_terms(h, m_pos, m_neg, l_pos, l_neg)
c = st.columns(3)
c[0].metric("Positives penalized (s ≤ m⁺)", format_metric(share_pos, "recall"), help=f"of {h.positive_pairs:,} same-class {split} pairs")
c[1].metric("Negatives penalized (s ≥ m⁻)", format_metric(share_neg, "rate"), help=f"of {h.negative_pairs:,} different-class {split} pairs")
c[2].metric("L_TCM on all pairs", format_metric(term_pos + term_neg, "loss"), help=f"positive term {term_pos:.4f} + negative term {term_neg:.4f}")
st.plotly_chart(fig := similarity_histogram_figure(h, m_pos, m_neg, split=split), width="stretch")
figure_downloads(fig, "pair_similarities")

st.subheader("Margins from targets")
suggestion_ui(h, split, getattr(pair, "name", pair.baseline.parent.name))
if uploaded:  # a single upload too (its pair.tcm is None)
    st.info("Retraining and the margin search need the model and its data: these are uploaded embeddings. Train "
            "your model with the margins above, e.g. `TCMLoss(margin_pos=m⁺, margin_neg=m⁻)` added to its loss.")
    st.stop()

st.subheader("Retrain with these margins")
st.caption(retrain_note(RetrainBudget()))
retrain_ui(pair, m_pos, m_neg, l_pos, l_neg)

st.subheader("Margin search (Optuna)")
st.caption("A study with two objectives, validation OPIS (down) and validation R@1 (up); each trial is a fair quick "
           "retrain with its margins. The grid visits every point once (for teaching); TPE and NSGA-II tune within "
           "the ranges. Searches are saved under the runs folder and resume where they stopped; the command line "
           "runs the same search: `python -m tcm_core tune PAIR_DIR --sampler tpe --out DIR`.")
search_ui(pair)
