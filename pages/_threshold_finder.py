"""The threshold page's target-FAR panel: the exact global threshold for a target false-accept
rate (``metrics.thresholds``), and the classes that break the target there, for each run shown;
with the per-class table as CSV and the threshold as JSON to take away."""

import json
from pathlib import Path

import streamlit as st

from pages._common import load_run, run_mtime
from pages._links import linked
from tcm_core.metrics.thresholds import find_threshold
from tcm_core.viz import format_metric
from tcm_core.viz.export import table_csv

TARGETS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2]


@st.cache_resource(max_entries=32, show_spinner="Finding the exact threshold (one pass over the pairs) ...")
def _report(path: str, mtime: float, far: float):
    _, _, embeddings, labels = load_run(Path(path))
    return find_threshold(embeddings, labels, far=far)


def target_far_ui(named_runs: dict[str, Path]) -> None:
    """``named_runs``: display name -> run folder (one run, or baseline and +TCM)."""
    linked("target_far", options=TARGETS)
    far = st.select_slider("Target global FAR (false accepts among all different-class pairs)", TARGETS,
                           value=1e-3, format_func=lambda v: f"{v:g}", key="target_far")
    cols = st.columns(len(named_runs))
    for col, (name, path) in zip(cols, named_runs.items()):
        report = _report(str(path), run_mtime(path), far)
        broken = report.classes[report.classes["far"] > far]
        with col:
            st.markdown(f"**{name}**: threshold d ≤ **{report.threshold:.4f}** (cosine ≥ {report.similarity:.4f}); "
                        f"global FAR {format_metric(report.far, 'rate')}, FRR {format_metric(report.frr, 'rate')}")
            st.markdown(f"**{len(broken)} of {len(report.classes)} classes** have a FAR above the target "
                        + ("(worst first):" if len(broken) else "."))
            if len(broken):
                st.dataframe(broken, height=min(320, 38 + 35 * len(broken)), width="stretch",
                             column_config={c: st.column_config.NumberColumn(format="%.5f") for c in ("far", "frr")})
            slug = name.replace(" ", "_").replace("+", "")
            d1, d2 = st.columns(2)
            d1.download_button("Per-class table (CSV)", table_csv(report.classes),
                               f"classes_far{far:g}_{slug}.csv", "text/csv", key=f"csv::{name}")
            d2.download_button("Threshold (JSON)", json.dumps(report.to_dict(), indent=2),
                               f"threshold_far{far:g}_{slug}.json", "application/json", key=f"json::{name}")
