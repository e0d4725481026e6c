"""Threshold consistency: per-class utility curves of a baseline and its +TCM twin (or of one
uploaded run), OPIS and eps-OPIS as the calibration range, beta, eps and K move (METHOD.md), and
the exact threshold for a target FAR with the classes that break it."""

import streamlit as st

from pages._common import histograms, load_run, metric_pair, pair_changes, require_pair
from pages._exports import figure_downloads, report_download, table_download
from pages._links import linked
from pages._threshold_finder import target_far_ui
from tcm_core.errors import TCMError
from tcm_core.metrics import EvalSettings, pair_scores, scores_from_histograms
from tcm_core.metrics.scores import exact_scores
from tcm_core.metrics.utility import DEFAULT_FAR_RANGE, DEFAULT_NUM_THRESHOLDS
from tcm_core.viz import class_table, format_metric, utility_figure, utility_pair_figure

FAR_STEPS = sorted({1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, *DEFAULT_FAR_RANGE})
K_STEPS = sorted({11, 21, 51, 101, 201, 401, DEFAULT_NUM_THRESHOLDS})
LAST = "threshold_settings"  # the last valid settings, kept while a range is empty


def settings_ui(base_hist) -> EvalSettings:
    """The calibration range, beta, eps and K widgets -> ``EvalSettings``. A range whose two
    thumbs meet is refused beside the control and the last valid settings stay in use."""
    linked("range", "range_mode", kind=str, options=["FAR band", "distance"])
    linked("far", "far_band", kind=tuple, options=FAR_STEPS)
    linked("dist", "dist_range", kind=tuple, low=0.0, high=2.0)
    linked("beta", low=0.25, high=4.0)
    linked("eps", low=0.05, high=0.5)
    linked("k", kind=int, options=K_STEPS)
    c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 2])
    mode = c2.radio("Calibration range as", ["FAR band", "distance"], horizontal=True, key="range_mode")
    if mode == "FAR band":
        far = c1.select_slider("Calibration range: global false-accept rate band", FAR_STEPS,
                               value=DEFAULT_FAR_RANGE, format_func=lambda v: f"{v:g}", key="far_band")
        chosen = dict(far_range=far)
    else:
        lo, hi = base_hist.calibration_range()
        dist = c1.slider("Calibration range: distance", 0.0, 2.0, (round(lo, 2), round(hi, 2)), 0.01, key="dist_range")
        chosen = dict(distance_range=dist)
    beta = c3.slider("β (> 1 weighs false rejects more)", 0.25, 4.0, 1.0, 0.25, key="beta")
    eps = c4.slider("ε (share of worst classes)", 0.05, 0.5, 0.1, 0.05, key="eps")
    k = c5.select_slider("K thresholds", K_STEPS, value=DEFAULT_NUM_THRESHOLDS, key="k")
    try:
        st.session_state[LAST] = EvalSettings(num_thresholds=k, beta=beta, eps=eps, **chosen)
    except TCMError as exc:
        c1.warning(f"{exc}: move the two ends apart. Showing the last valid range.")
    return st.session_state.get(LAST) or EvalSettings(beta=beta, eps=eps, num_thresholds=k)


st.title("Threshold consistency")
st.markdown(
    "Each thin line is one test class's **utility** U(d) (an F-score of its true-accept and "
    "true-reject rates) as the global match threshold d moves. Where the lines disagree, one "
    "threshold serves classes unequally; **OPIS** is their variance over the shaded "
    "calibration range, **ε-OPIS** the gap between the worst ε of classes and the rest. Lower is better.")

pair = require_pair(single=True)
(base_cfg, base_m, *_) = load_run(pair.baseline)
base_hist = histograms(pair.baseline)
settings = settings_ui(base_hist)
if pair.tcm is None:  # one uploaded run: its curves, scores and thresholds, no comparison
    base = exact_scores(scores_from_histograms(base_hist, settings), base_m, settings)
    m = st.columns(3)
    m[0].metric("OPIS", format_metric(base.opis, "opis"))
    m[1].metric(f"{settings.eps:g}-OPIS", format_metric(base.eps_opis, "opis"))
    m[2].metric("R@1", format_metric(base_m["recall_at_1"], "share"))
    st.plotly_chart(fig := utility_figure(base.curves, eps=settings.eps, title=pair.name,
                                                  scores=(base.opis, base.eps_opis)), width="stretch")
    figure_downloads(fig, "utility_curves")
    st.caption(f"{base.curves.classes.size} classes · calibration range [{base.curves.t_min:.3f}, "
               f"{base.curves.t_max:.3f}] · β={settings.beta:g}, K={settings.num_thresholds}. A single run: upload a "
               "second file as a pair to compare.")
    st.subheader("Threshold for a target FAR")
    target_far_ui({pair.name: pair.baseline})
    st.stop()

tcm_m, tcm_hist = load_run(pair.tcm)[1], histograms(pair.tcm)
base, tcm = (exact_scores(s, m, settings) for s, m in zip(pair_scores(base_hist, tcm_hist, settings), (base_m, tcm_m)))
changes, m = pair_changes(pair, base, tcm, settings), st.columns(6)
metric_pair(m[0:2], "OPIS", base.opis, tcm.opis, interval=changes.opis)
metric_pair(m[2:4], f"{settings.eps:g}-OPIS", base.eps_opis, tcm.eps_opis, interval=changes.eps_opis)
metric_pair(m[4:6], "R@1", base_m["recall_at_1"], tcm_m["recall_at_1"], "share", interval=changes.recall_at_1)
st.caption(f"Changes +TCM vs baseline: {changes.opis.method}"
           + (" (the mean change across seeds; the values shown are the picked seed's)" if "seeds" in changes.opis.method
              else "") + ". A change is colored only when its 95% interval excludes zero.")

st.plotly_chart(fig := utility_pair_figure(base.curves, tcm.curves, eps=settings.eps,
                                                scores=[(r.opis, r.eps_opis) for r in (base, tcm)]), width="stretch")
figure_downloads(fig, "utility_curves")
st.caption(f"{base_cfg['dataset']} · {base_cfg['loss']} · {base_cfg['embedding_dim']}-D embeddings · "
           f"{base.curves.classes.size} test classes · calibration range "
           f"[{base.curves.t_min:.3f}, {base.curves.t_max:.3f}] (baseline), "
           f"[{tcm.curves.t_min:.3f}, {tcm.curves.t_max:.3f}] (+TCM) · β={settings.beta:g}, K={settings.num_thresholds}")

st.subheader("Threshold for a target FAR")
target_far_ui({"baseline": pair.baseline, "+TCM": pair.tcm})

st.subheader("Per class")
linked("d", "class_t", low=0.0, high=2.0)
t = st.slider("Global threshold d for the FAR / FRR columns", 0.0, 2.0,
              float(round((base.curves.t_min + base.curves.t_max) / 2, 2)), 0.01, key="class_t")
table = class_table(base.curves, tcm.curves, base_hist, tcm_hist, t)
st.dataframe(table, width="stretch", height=320,
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns if c != "size"})
table_download(table, "per_class")
report_download(settings=settings, threshold=t)
