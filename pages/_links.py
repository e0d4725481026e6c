"""Links that carry the view (TensorFlow Playground style): the picked run, the seed and each
page's sliders live in the URL's query string, so a copied link opens the same page, run and
slider values in a fresh browser.

A page declares each shareable widget with ``linked(...)`` before drawing it: a value from the
URL is checked against the widget's options or range and put in session state once per session
(a bad or stale value is ignored). ``share_link()`` runs after the page and writes the URL from
session state, then fills the sidebar's "Link to this view" box (``st.code`` has a copy button).
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

import streamlit as st

APPLIED = "_link_applied"  # URL params already applied in this session
SHARED = "_link_keys"  # this run's shareable widgets: param -> (session key, kind)
BOX = "_link_box"  # the sidebar placeholder the link is written into
RUN, SEED = "run", "seed"  # the run picker's params


def start_run() -> None:
    """At the start of every run (from ``sidebar``): forget the last page's widgets."""
    st.session_state[SHARED] = {}
    st.session_state.setdefault(APPLIED, set())


def link_box() -> None:
    """The sidebar's place for the link, filled by ``share_link`` after the page has run."""
    st.session_state[BOX] = st.sidebar.empty()


def url_param(name: str) -> str | None:
    """The URL's value of ``name`` the first time this session asks, else None (the session's own
    state rules after that)."""
    applied = st.session_state.setdefault(APPLIED, set())
    if name in applied:
        return None
    applied.add(name)
    return st.query_params.get(name)


def linked(param: str, key: str | None = None, *, kind=float, options=None, low=None, high=None) -> None:
    """Declare the widget ``key`` (default: ``param``) shareable under the URL name ``param``:
    ``kind`` float, int, str or tuple (two floats); valid values lie in ``options`` or in
    [``low``, ``high``]."""
    key = key or param
    st.session_state[SHARED][param] = (key, kind)
    text = url_param(param)
    if text is None:
        return
    try:
        value = tuple(float(v) for v in text.split(",")) if kind is tuple else kind(text)
    except ValueError:
        return
    if _valid(value, options, low, high):
        st.session_state[key] = value


def _valid(value, options, low, high) -> bool:
    parts = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in parts):
        return False
    if options is not None:
        return all(v in options for v in parts)
    return all((low is None or v >= low) and (high is None or v <= high) for v in parts)


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_text(v) for v in value)
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def share_link(run: str | None, seed) -> None:
    """Write the view into the URL (the run, the seed, this run's shareable widgets) and show the
    link in the sidebar."""
    params = {} if run is None else {RUN: run}
    if seed is not None:
        params[SEED] = str(seed)
    for param, (key, _) in st.session_state.get(SHARED, {}).items():
        if key in st.session_state:
            params[param] = _text(st.session_state[key])
    applied = st.session_state.get(APPLIED, set())
    for name, value in st.query_params.items():  # a link's values for a page not opened yet wait for it
        if name not in applied and name not in params:
            params[name] = value
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    box = st.session_state.get(BOX)
    base = st.context.url
    if box is not None and base:
        with box.container():
            st.caption("**Link to this view** (page, run and sliders; copy with the icon):")
            st.code(base + ("?" + urlencode(params) if params else ""), language=None, wrap_lines=True)
