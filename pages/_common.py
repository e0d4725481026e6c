"""The app's shared Streamlit glue (the only one): run discovery and the run picker, cached
loading, the sidebar, and error display. Pages stay thin scripts over ``tcm_core``."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from tcm_core.data import available_datasets, resolve_data_dir
from tcm_core.device import describe_device, resolve_device
from tcm_core.errors import TCMError
from tcm_core.metrics import distance_histograms
from tcm_core.training import runs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"


def runs_root() -> Path:
    """Where the app saves trained pairs: ``$TCM_RUNS_DIR``, else ``runs/`` in the project."""
    return Path(os.environ.get("TCM_RUNS_DIR", ROOT / "runs"))


def pairs() -> dict[str, runs.RunPair]:
    """Label -> pair: trained pairs (newest first), then the ready examples."""
    found = {f"{p.root.name}": p for p in runs.find_pairs(runs_root())}
    found.update({f"example: {p.root.name}": p for p in runs.find_pairs(EXAMPLES)})
    return found


def _pick_pair() -> None:
    """The sidebar's run picker (drawn on every page); the choice lives in session state."""
    options = pairs()
    if not options:
        st.sidebar.info("No runs yet: train a pair on the Train page.")
        return
    labels = list(options)
    wanted = st.session_state.get("pair_label")
    index = labels.index(wanted) if wanted in labels else 0
    st.session_state["pair_label"] = st.sidebar.selectbox("Run pair (baseline vs + TCM)", labels, index=index)


def pick_pair() -> runs.RunPair | None:
    """The pair chosen in the sidebar, or None when there is none yet."""
    return pairs().get(st.session_state.get("pair_label"))


@st.cache_data(show_spinner=False, max_entries=32)
def _run(path: str, mtime: float):
    config = runs.load_config(path).to_dict()
    metrics = runs.load_metrics(path)
    embeddings, labels = runs.load_run_embeddings(path)
    return config, metrics, embeddings, labels


def load_run(path: Path):
    """(config dict, metrics dict, embeddings, labels) of a run, cached until it changes."""
    return _run(str(path), (path / runs.EMBEDDINGS).stat().st_mtime)


@st.cache_resource(show_spinner="Counting pair distances once for this run ...", max_entries=16)
def _histograms(path: str, mtime: float):
    _, _, embeddings, labels = _run(path, mtime)
    return distance_histograms(embeddings, labels)


def histograms(path: Path):
    """The run's fine per-class distance histograms (what every slider move reuses)."""
    return _histograms(str(path), (path / runs.EMBEDDINGS).stat().st_mtime)


@st.cache_resource
def _device_text() -> str:
    return describe_device(resolve_device("auto"))


@st.cache_data(ttl=30, show_spinner=False)
def _datasets(root: str) -> dict[str, str]:
    return available_datasets(root)


def sidebar() -> None:
    """Compute device, data root and what it holds."""
    root = resolve_data_dir(None)
    with st.sidebar:
        st.caption(f"**Compute:** {_device_text()}")
        found = _datasets(str(root))
        st.caption(f"**Data root:** `{root}`" + (" (set `TCM_DATA_DIR` to change)" if "TCM_DATA_DIR" not in os.environ else ""))
        st.caption("**Datasets there:** " + (", ".join(found) if found else "none yet (MNIST downloads on first use when online; the 8×8 digits always work)"))
    _pick_pair()


def show_error(exc: Exception) -> None:
    """One clear message for what a user can fix; anything else is reported as a bug."""
    if isinstance(exc, TCMError):
        st.error(str(exc))
    else:
        st.error(f"Unexpected error ({type(exc).__name__}): {exc}. This is a bug in TCM Explorer.")


@st.cache_resource
def job_manager():
    """One background-job registry for the whole server (training saturates the CPU)."""
    from tcm_core.jobs import JobManager

    return JobManager()
