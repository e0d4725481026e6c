"""Home: what threshold inconsistency is, and what TCM Explorer measures."""

import streamlit as st

st.title("TCM Explorer")
st.markdown(
    """
Retrieval and verification systems built on embeddings declare *match* below **one global
distance threshold**. Classes differ in how spread out they are, so one threshold gives some
classes far more false accepts or false rejects than others: **threshold inconsistency**.

TCM Explorer measures it with **OPIS** and **ε-OPIS** and reduces it with **TCM**, a
regularizer added to any base loss (Zhang et al., ICLR 2024).

The metrics engine is ready; measure any embeddings from a terminal:

```
python -m tcm_core evaluate embeddings.npz --json
```
The interactive pages (training, utility curves, margins, the sphere) arrive next.
"""
)
