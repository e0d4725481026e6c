"""Threshold consistency: per-class utility curves of a baseline and its +TCM twin, OPIS and
eps-OPIS as the calibration range, beta, eps and K move (METHOD.md)."""

import streamlit as st

from pages._common import histograms, load_run, metric_pair, pair_changes, require_pair, show_error
from pages._exports import figure_downloads, report_download, table_download
from tcm_core.errors import TCMError
from tcm_core.metrics import EvalSettings, pair_scores
from tcm_core.metrics.utility import DEFAULT_FAR_RANGE, DEFAULT_NUM_THRESHOLDS
from tcm_core.viz import class_table, utility_pair_figure

FAR_STEPS = sorted({1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, *DEFAULT_FAR_RANGE})
K_STEPS = sorted({11, 21, 51, 101, 201, 401, DEFAULT_NUM_THRESHOLDS})


def settings_ui(base_hist) -> EvalSettings:
    """The calibration range, beta, eps and K widgets -> ``EvalSettings`` (raises TCMError)."""
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
    return EvalSettings(num_thresholds=k, beta=beta, eps=eps, **chosen)


st.title("Threshold consistency")
st.markdown(
    "Each thin line is one test class's **utility** U(d) (an F-score of its true-accept and "
    "true-reject rates) as the global match threshold d moves. Where the lines disagree, one "
    "threshold serves classes unequally; **OPIS** is their variance over the shaded "
    "calibration range, **ε-OPIS** the gap between the worst ε of classes and the rest. Lower is better.")

pair = require_pair()
(base_cfg, base_m, *_), (_, tcm_m, *_) = load_run(pair.baseline), load_run(pair.tcm)
base_hist, tcm_hist = histograms(pair.baseline), histograms(pair.tcm)
try:
    settings = settings_ui(base_hist)
    base, tcm = pair_scores(base_hist, tcm_hist, settings)
except TCMError as exc:
    show_error(exc)
    st.stop()

changes, m = pair_changes(pair, base, tcm, settings), st.columns(6)
metric_pair(m[0:2], "OPIS", base.opis, tcm.opis, interval=changes.opis)
metric_pair(m[2:4], f"{settings.eps:g}-OPIS", base.eps_opis, tcm.eps_opis, interval=changes.eps_opis)
metric_pair(m[4:6], "R@1", base_m["recall_at_1"], tcm_m["recall_at_1"], "share", interval=changes.recall_at_1)
st.caption(f"Changes +TCM vs baseline: {changes.opis.method}"
           + (" (the mean change across seeds; the values shown are the picked seed's)" if "seeds" in changes.opis.method
              else "") + ". A change is colored only when its 95% interval excludes zero.")

st.plotly_chart(fig := utility_pair_figure(base.curves, tcm.curves, eps=settings.eps), width="stretch")
figure_downloads(fig, "utility_curves")
st.caption(f"{base_cfg['dataset']} · {base_cfg['loss']} · {base_cfg['embedding_dim']}-D embeddings · "
           f"{base.curves.classes.size} test classes · calibration range "
           f"[{base.curves.t_min:.3f}, {base.curves.t_max:.3f}] (baseline), "
           f"[{tcm.curves.t_min:.3f}, {tcm.curves.t_max:.3f}] (+TCM) · β={settings.beta:g}, K={settings.num_thresholds}")

st.subheader("Per class")
t = st.slider("Global threshold d for the FAR / FRR columns", 0.0, 2.0,
              float(round((base.curves.t_min + base.curves.t_max) / 2, 2)), 0.01)
table = class_table(base.curves, tcm.curves, base_hist, tcm_hist, t)
st.dataframe(table, width="stretch", height=320,
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns if c != "size"})
table_download(table, "per_class")
report_download(settings=settings, threshold=t)
