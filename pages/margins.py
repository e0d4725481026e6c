"""Placeholder: built next (issue 5)."""

import streamlit as st

st.title("Margins")
st.info("This page is being built.")
