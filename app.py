"""TCM Explorer: the Streamlit app's frame (``bash run.sh app``)."""

import streamlit as st

st.set_page_config(page_title="TCM Explorer", page_icon=":material/tune:", layout="wide")
navigation = st.navigation([st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)])
navigation.run()
