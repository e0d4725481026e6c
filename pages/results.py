"""Results: the article's table (R@1, the change in R@1, OPIS and eps-OPIS) over every pair,
repeats folder and study cell in the runs folder and the examples, filterable, with CSV,
Markdown and LaTeX downloads (``tcm_core.experiments.results``)."""

import pandas as pd
import streamlit as st

from pages._common import EXAMPLES, runs_root, show_error
from pages._links import linked
from tcm_core.errors import TCMError
from tcm_core.experiments.results import results_table, to_csv, to_latex, to_markdown
from tcm_core.viz.studies import style_results

EXAMPLE = "example: "

st.title("Results")
st.markdown(
    "One row per comparison of a baseline with its +TCM twin: a trained pair, a repeats folder "
    "or a study cell, named as in the run picker. **R@1** is the mean over seeds; the changes are "
    "+TCM minus baseline: R@1 in points (higher is better), **OPIS** and **ε-OPIS** in percent "
    "(negative: more consistent thresholds). With two seeds or more each change has its 95% "
    "interval across seeds (the *95% CI* columns) and is colored only when that interval excludes zero.")

linked("split", "results_split", kind=str, options=["test", "validation"])
split = st.radio("Split", ["test", "validation"], horizontal=True, key="results_split",
                 help="Validation is where margins are chosen; report the test split.")
damaged = []
try:
    found = [results_table(runs_root(), split=split, damaged=damaged),
             results_table(EXAMPLES, prefix=EXAMPLE, split=split, damaged=damaged)]
except TCMError as exc:
    show_error(exc)
    st.stop()
for message in damaged:
    st.warning(f"Left out: {message}")
table = pd.concat(found, ignore_index=True)
if table.empty:
    st.info("No comparisons yet: train a pair on the Train page.")
    st.stop()
table["kind"] = table["kind"].where(~table["source"].str.startswith(EXAMPLE), "example " + table["kind"])
table[["dataset", "loss"]] = table[["dataset", "loss"]].fillna("unknown")


def filters_ui(table: pd.DataFrame) -> pd.Series:
    """Multiselects for dataset, loss and source kind (all chosen at first) -> the rows kept."""
    keep = pd.Series(True, index=table.index)
    for col, (column, label) in zip(st.columns(3), (("dataset", "Dataset"), ("loss", "Loss"),
                                                    ("kind", "Source kind"))):
        options = sorted(table[column].unique())
        chosen = col.multiselect(label, options, default=options, key=f"results_{column}")
        keep &= table[column].isin(chosen)
    return keep


shown = table[filters_ui(table)].reset_index(drop=True)
styled = style_results(shown)  # the numbers first, then what the runs were
order = ["source", "batch_size", "seeds", *(c for c in styled.data.columns if c.startswith(("R@1", "Δ"))),
         "loss", "dataset", "backbone", "kind"]
st.dataframe(styled, hide_index=True, width="stretch", column_order=order,
             column_config={"batch_size": st.column_config.Column("batch", width="small"),
                            "seeds": st.column_config.Column(width="small")})
st.caption(f"{len(shown)} of {len(table)} comparisons on the {split} split · click a column header to sort · "
           "the downloads hold the rows shown.")

c1, c2, c3 = st.columns(3)
c1.download_button("Download CSV", to_csv(shown), "tcm_results.csv", "text/csv", key="dl_csv",
                   icon=":material/table:")
c2.download_button("Download Markdown", to_markdown(shown), "tcm_results.md", "text/markdown", key="dl_md",
                   icon=":material/article:")
c3.download_button("Download LaTeX", to_latex(shown), "tcm_results.tex", "application/x-tex", key="dl_tex",
                   icon=":material/functions:")
with st.expander("Markdown preview"):
    st.markdown(to_markdown(shown) if len(shown) else "_no rows_")
