"""Tune TCM's margins: what m+ / m- penalize on the test pairs, a quick retrain, a margin sweep."""

import time
from pathlib import Path

import streamlit as st

from pages._common import load_run, pick_pair, runs_root, show_error
from tcm_core.errors import TCMError
from tcm_core.margins import ProgressCallback, pair_similarities, penalized_shares, retrain, tcm_terms
from tcm_core.sweep import MarginSweep, best_cell
from tcm_core.training import runs
from tcm_core.viz.margins import similarity_histogram_figure, sweep_heatmaps

st.title("Tune TCM margins")
st.markdown(
    "TCM penalizes **hard pairs** only: same-class pairs less similar than **m⁺** and "
    "different-class pairs more similar than **m⁻**. The histograms are the cosine similarities of "
    "all test pairs of the **baseline** run (the model TCM would start from, trained without it), "
    "so the shaded bands show what your margins would act on; retrains use the **+ TCM** run's config.")

pair = pick_pair()
if pair is None:
    st.stop()


@st.cache_resource(show_spinner="Counting pair similarities once for this run ...", max_entries=8)
def similarities(path: str, mtime: float):
    _, _, embeddings, labels = load_run(Path(path))
    return pair_similarities(embeddings, labels)


tcm_cfg, _, _, _ = load_run(pair.tcm)
base_m = load_run(pair.baseline)[1]
h = similarities(str(pair.baseline), (pair.baseline / runs.EMBEDDINGS).stat().st_mtime)
c = st.columns(4)
m_pos = c[0].slider("m⁺ (margin_pos)", -1.0, 1.0, float(tcm_cfg["margin_pos"]), 0.01, key="mg_pos")
m_neg = c[1].slider("m⁻ (margin_neg)", -1.0, 1.0, float(tcm_cfg["margin_neg"]), 0.01, key="mg_neg")
l_pos = c[2].slider("λ⁺ (lambda_pos)", 0.0, 5.0, float(tcm_cfg["lambda_pos"]), 0.1, key="mg_lpos")
l_neg = c[3].slider("λ⁻ (lambda_neg)", 0.0, 5.0, float(tcm_cfg["lambda_neg"]), 0.1, key="mg_lneg")
share_pos, share_neg = penalized_shares(h, m_pos, m_neg)
term_pos, term_neg = tcm_terms(h, m_pos, m_neg, l_pos, l_neg)
c = st.columns(3)
c[0].metric("Positives penalized (s ≤ m⁺)", f"{100 * share_pos:.1f}%", help=f"of {h.positive_pairs:,} same-class test pairs")
c[1].metric("Negatives penalized (s ≥ m⁻)", f"{100 * share_neg:.2f}%", help=f"of {h.negative_pairs:,} different-class test pairs")
c[2].metric("L_TCM on all test pairs", f"{term_pos + term_neg:.4f}", help=f"positive term {term_pos:.4f} + negative term {term_neg:.4f}")
st.plotly_chart(similarity_histogram_figure(h, m_pos, m_neg), width="stretch")

st.subheader("Retrain with these margins")
st.caption("Frozen-backbone runs retrain their head on the cached features with the run's whole budget "
           "(seconds); others get a reduced budget (3,000 training images, 1 epoch), and their baseline "
           "is retrained under the same budget so the comparison stays fair.")
if st.button("Retrain with these margins", type="primary"):
    bar = st.progress(0.0, text="starting")
    out = runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-retrain-mp{m_pos:.2f}-mn{m_neg:.2f}"
    try:
        config = runs.load_config(pair.tcm)
        st.session_state["mg_result"] = retrain(config, m_pos, m_neg, out, lambda_pos=l_pos, lambda_neg=l_neg,
                                                baseline=pair.baseline, callback=ProgressCallback(lambda f, t: bar.progress(f, text=t)))
    except Exception as exc:  # noqa: BLE001 -- shown, never a traceback
        show_error(exc)
    bar.empty()
res = st.session_state.get("mg_result")
if res is not None:
    c = st.columns(4)
    c[0].metric("OPIS baseline", f"{res.baseline_opis:.5f}")
    c[1].metric(f"OPIS retrained (m⁺ {res.margin_pos:.2f}, m⁻ {res.margin_neg:.2f})", f"{res.opis:.5f}",
                f"{100 * (res.opis / res.baseline_opis - 1):+.1f}%", delta_color="inverse")
    c[2].metric("R@1 baseline", f"{res.baseline_recall_at_1:.3f}")
    c[3].metric("R@1 retrained", f"{res.recall_at_1:.3f}", f"{100 * (res.recall_at_1 - res.baseline_recall_at_1):+.1f} pts")
    st.caption(f"{'Reduced budget; ' if res.reduced else ''}trained in {res.seconds:.1f} s, saved to `{res.out}` "
               f"(pick it in the sidebar). The pair's own baseline: OPIS {base_m['opis']:.5f}, R@1 {base_m['recall_at_1']:.3f}.")

st.subheader("Margin sweep")
c = st.columns([2, 2, 1])
grid_pos = c[0].multiselect("m⁺ values", [0.6, 0.7, 0.8, 0.9, 0.95], [0.7, 0.8, 0.9], key="sw_pos")
grid_neg = c[1].multiselect("m⁻ values", [0.2, 0.3, 0.4, 0.5, 0.6], [0.3, 0.4, 0.5], key="sw_neg")
if c[2].button("Start sweep", icon=":material/grid_on:"):
    try:
        out = runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-sweep"
        st.session_state["sweep"] = MarginSweep(runs.load_config(pair.tcm), out, sorted(grid_pos), sorted(grid_neg),
                                                cells_dir=runs_root(), baseline=pair.baseline).start()
    except TCMError as exc:
        show_error(exc)
sweep = st.session_state.get("sweep")


@st.fragment(run_every=1.0 if sweep is not None and not sweep.snapshot().done else None)
def sweep_view(sweep):
    snap = sweep.snapshot()
    st.progress(snap.fraction, text=f"{snap.status}: {snap.current} · {len(snap.results)}/{snap.total} cells · {snap.elapsed:.0f} s")
    if not snap.done and st.button("Stop sweep", icon=":material/stop:"):
        sweep.stop()
    if snap.error:
        st.error(snap.error)
    if not snap.results:
        return
    best = best_cell(snap.results)
    st.plotly_chart(sweep_heatmaps(snap.results, best), width="stretch")
    if snap.baseline:
        st.caption(f"Baseline under the same budget: OPIS {snap.baseline['opis']:.5f}, R@1 {snap.baseline['recall_at_1']:.3f}. "
                   "Ringed: Pareto cells (no other cell has both lower OPIS and higher R@1); star: the suggestion "
                   "(lowest OPIS among Pareto cells within 0.5 R@1 points of the best).")
    c = st.columns([3, 1, 2])
    cell = c[0].selectbox("Sweep cell", snap.results, format_func=lambda x: f"{x.label}: OPIS {x.opis:.4f}, R@1 {x.recall_at_1:.3f}",
                          index=snap.results.index(best), key="sw_cell")
    if c[1].button("Load in the sidebar"):
        st.session_state["pair_label"] = Path(cell.run_dir).name
        st.rerun()
    if best is not None and c[2].button("Send best margins to the Train page", type="primary"):
        st.session_state["suggested_margins"] = (best.margin_pos, best.margin_neg)
        st.success(f"The Train page now starts from m⁺ {best.margin_pos:g}, m⁻ {best.margin_neg:g}.")


if sweep is not None:
    sweep_view(sweep)
