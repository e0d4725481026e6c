"""TCM Explorer: the Streamlit app's frame (``bash run.sh app``)."""

import streamlit as st

from pages._common import share_view, sidebar

st.set_page_config(page_title="TCM Explorer", page_icon=":material/tune:", layout="wide")
navigation = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/upload.py", title="Your embeddings", icon=":material/upload_file:"),
    st.Page("pages/threshold.py", title="Threshold consistency", icon=":material/ssid_chart:"),
    st.Page("pages/margins.py", title="Tune TCM margins", icon=":material/tune:"),
    st.Page("pages/sphere.py", title="Embeddings on the sphere", icon=":material/public:"),
    st.Page("pages/results.py", title="Results", icon=":material/table_chart:"),
    st.Page("pages/accuracy.py", title="Accuracy vs consistency", icon=":material/scatter_plot:"),
])
sidebar()
try:
    navigation.run()
finally:  # also after a page's st.stop(): the URL carries the view
    share_view()
