"""Accuracy vs consistency: a study's recognition error (1 - R@1) against OPIS over its losses and
batch sizes, baseline circles joined to their +TCM triangles (the article's figure,
``tcm_core.viz.studies``); a click on a point loads that cell into the run picker."""

import streamlit as st

from pages._common import EXAMPLES, PAIR, PICKED_POINT, entries, runs_root, show_error
from pages._links import linked
from pages._exports import figure_downloads
from tcm_core.errors import TCMError
from tcm_core.experiments.results import studies
from tcm_core.experiments.study import load_study
from tcm_core.viz.studies import accuracy_consistency_figure, clicked_cell

st.title("Accuracy vs consistency")
st.markdown(
    "Each circle is a base loss at one batch size (bigger marker: bigger batch) and each triangle the "
    "same run with TCM added, joined by a dotted line; down is more accurate and left is more "
    "consistent, so a triangle left of its circle means TCM lowered OPIS and one to the **right** "
    "means TCM *raised* it. Points are means over the study's seeds with error bars across seeds (a "
    "shift smaller than its bars may be noise); the article saw accuracy and consistency improve "
    "together up to a point, and accuracy bought with consistency beyond it.")

found = {prefix + s.name: s for prefix, root in (("", runs_root()), ("example: ", EXAMPLES)) for s in studies(root)}
if not found:
    st.info("No study yet. A study trains baseline and +TCM pairs over several losses, batch sizes "
            "and seeds into one folder (`study.json`, `study.csv`); it appears here once it has results.")
    st.stop()

linked("study", "accuracy_study", kind=str, options=list(found))
linked("split", "accuracy_split", kind=str, options=["test", "validation"])
linked("bars", "accuracy_bars", kind=str, options=["se", "ci95"])
c1, c2, c3 = st.columns([3, 1, 1])
name = c1.selectbox("Study", list(found), key="accuracy_study")
split = c2.radio("Split", ["test", "validation"], horizontal=True, key="accuracy_split")
bars = c3.radio("Error bars", ["se", "ci95"], horizontal=True, key="accuracy_bars",
                format_func={"se": "±1 SE", "ci95": "95% CI"}.get, help="Across seeds: the standard error of the "
                "mean, or its 95% Student t interval (12.7 standard errors wide on each side with 2 seeds).")
try:
    figure = accuracy_consistency_figure(load_study(found[name]), split, bars)
except TCMError as exc:  # no study.csv yet, a damaged one, or no runs on this split
    show_error(exc)
    st.stop()

event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="accuracy_chart", width="stretch")
figure_downloads(figure, f"accuracy_vs_consistency_{name}_{split}")
picked = clicked_cell(event.selection)
if picked is None:  # nothing selected (or a second click deselected): the next click counts again
    st.session_state.pop(PICKED_POINT, None)
elif (name, split, *picked) != st.session_state.get(PICKED_POINT):
    label = f"{name}/{picked[0]}"  # the run picker's label of the cell (examples keep their prefix)
    st.session_state[PICKED_POINT] = (name, split, *picked)
    if label in entries():
        st.session_state[PAIR] = label
        st.rerun()  # the sidebar's picker, drawn before this page, shows the new cell
    st.warning(f"`{label}` cannot be loaded: it has no finished seed with embeddings yet (a shipped "
               "study keeps only the metrics of its cells; the table and this figure need no more).")

current = st.session_state.get(PAIR, "")
if current.startswith(f"{name}/"):
    st.success(f"**{current}** is loaded in the run picker (sidebar).", icon=":material/check_circle:")
    st.page_link("pages/threshold.py", label="Open it on the Threshold consistency page", icon=":material/ssid_chart:")
else:
    st.caption("Click a point to load its cell (all its seeds) into the run picker.")
