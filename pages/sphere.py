"""Placeholder: built next (issue 5)."""

import streamlit as st

st.title("Sphere")
st.info("This page is being built.")
