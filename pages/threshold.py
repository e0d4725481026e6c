"""Threshold consistency: per-class utility curves of a baseline and its + TCM twin, OPIS and
eps-OPIS as the calibration range, beta, eps and K move (METHOD.md)."""

import numpy as np
import streamlit as st

from pages._common import histograms, load_run, pick_pair, show_error
from tcm_core.errors import TCMError
from tcm_core.explore import ViewSettings, pair_view
from tcm_core.viz import class_table, opis_change, utility_pair_figure

FAR_STEPS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]

st.title("Threshold consistency")
st.markdown(
    "Each thin line is one test class's **utility** U(d) (an F-score of its true-accept and "
    "true-reject rates) as the global match threshold d moves. Where the lines disagree, one "
    "threshold serves classes unequally; **OPIS** is their variance over the shaded "
    "calibration range, **ε-OPIS** the gap between the worst ε of classes and the rest. Lower is better.")

pair = pick_pair()
if pair is None:
    st.stop()
(base_cfg, base_m, *_), (tcm_cfg, tcm_m, *_) = load_run(pair.baseline), load_run(pair.tcm)
base_hist, tcm_hist = histograms(pair.baseline), histograms(pair.tcm)

c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 2])
mode = c2.radio("Calibration range as", ["FAR band", "distance"], horizontal=True, key="range_mode")
if mode == "FAR band":
    far = c1.select_slider("Calibration range: global false-accept rate band", FAR_STEPS,
                           value=(1e-3, 0.1), format_func=lambda v: f"{v:g}", key="far_band")
    settings_range = dict(far_range=far)
else:
    lo, hi = base_hist.calibration_range()
    dist = c1.slider("Calibration range: distance", 0.0, 2.0, (round(lo, 2), round(hi, 2)), 0.01, key="dist_range")
    settings_range = dict(distance_range=dist)
beta = c3.slider("β (> 1 weighs false rejects more)", 0.25, 4.0, 1.0, 0.25, key="beta")
eps = c4.slider("ε (share of worst classes)", 0.05, 0.5, 0.1, 0.05, key="eps")
k = c5.select_slider("K thresholds", [11, 21, 51, 101, 201, 401], value=201, key="k")

try:
    settings = ViewSettings(num_thresholds=k, beta=beta, eps=eps, **settings_range)
    base, tcm = pair_view(base_hist, tcm_hist, settings)
except TCMError as exc:
    show_error(exc)
    st.stop()

m = st.columns(6)
for col, (label, b, t) in zip((m[0:2], m[2:4]), [("OPIS", base.opis, tcm.opis), (f"{eps:g}-OPIS", base.eps_opis, tcm.eps_opis)]):
    change, _ = opis_change(b, t)
    col[0].metric(f"{label} baseline", f"{b:.5f}")
    col[1].metric(f"{label} + TCM", f"{t:.5f}", None if np.isnan(change) else f"{change:+.1f}%", delta_color="inverse")
m[4].metric("R@1 baseline", f"{base_m['recall_at_1']:.3f}")
m[5].metric("R@1 + TCM", f"{tcm_m['recall_at_1']:.3f}", f"{100 * (tcm_m['recall_at_1'] - base_m['recall_at_1']):+.1f} pts")

st.plotly_chart(utility_pair_figure(base.curves, tcm.curves, eps=eps), width="stretch")
st.caption(f"{base_cfg['dataset']} · {base_cfg['loss']} · {base_cfg['embedding_dim']}-D embeddings · "
           f"{base.curves.classes.size} test classes · calibration range "
           f"[{base.curves.t_min:.3f}, {base.curves.t_max:.3f}] (baseline), "
           f"[{tcm.curves.t_min:.3f}, {tcm.curves.t_max:.3f}] (+ TCM) · β={beta:g}, K={k}")

st.subheader("Per class")
t = st.slider("Global threshold d for the FAR / FRR columns", 0.0, 2.0,
              float(round((base.curves.t_min + base.curves.t_max) / 2, 2)), 0.01)
table = class_table(base.curves, tcm.curves, base_hist, tcm_hist, t)
st.dataframe(table, width="stretch", height=320,
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns if c != "size"})
