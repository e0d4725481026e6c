"""Your embeddings: upload one file (a single run) or two (a before / after pair) from your own
model; they join the run picker of every page and stay stored under the runs folder."""

import pandas as pd
import streamlit as st

from pages._common import EXAMPLES, PAIR, runs_root, upload_label
from tcm_core.errors import TCMError
from tcm_core.io import FORMATS
from tcm_core.training import runs, uploads

NOTE = "upload_note"  # what the last upload did, shown after the rerun that refreshes the picker

st.title("Your embeddings")
st.markdown(
    "Bring the embeddings of your own model: **one file** is a single run (its utility curves, OPIS, a threshold "
    "for a target FAR, the margins its pairs suggest); **two files** are a before / after pair (e.g. your model "
    "without and with TCM), compared on every page. Accepted: `.npz` (arrays `embeddings (N, D)` and `labels (N,)`), "
    "`.safetensors` (the same two tensors), `.parquet` (a label column `label`/`labels` and either one list column "
    "`embeddings` or numbered columns `e0, e1, ...`). Files are checked with the rules of `tcm evaluate`, never "
    "unpickled, and stored by content hash under the runs folder: the same file again is instant.")

example = EXAMPLES / "mnist-arcface-3d" / "seed-0"
c1, c2 = st.columns(2)
c1.download_button("Example file to try: MNIST toy baseline (.npz)", (example / "baseline" / runs.EMBEDDINGS).read_bytes,
                   "mnist_toy_baseline.npz", "application/octet-stream", on_click="ignore")  # read on press
c2.download_button("... and its +TCM twin (.npz)", (example / "tcm" / runs.EMBEDDINGS).read_bytes,
                   "mnist_toy_tcm.npz", "application/octet-stream", on_click="ignore")
note = st.session_state.pop(NOTE, None)
if note:
    st.success(note)
files = st.file_uploader("Embedding files", type=[f.lstrip(".") for f in FORMATS], accept_multiple_files=True,
                         key="upload_files")
names = [f.name for f in files or []]
before = None
if len(names) == 2:
    c1, c2 = st.columns(2)
    before = c1.selectbox("Before (the baseline)", names, key="upload_before")
    after = names[1 - names.index(before)]
    pair_name = c2.text_input("Pair name", value=f"{before.rsplit('.', 1)[0]} vs {after.rsplit('.', 1)[0]}",
                              key=f"upload_pair_name::{before}::{after}")
elif len(names) > 2:
    st.info(f"{len(names)} files: each is stored as a single run (two files make a pair).")

if files and st.button("Add to the run picker", type="primary"):
    cap = int(st.get_option("server.maxUploadSize")) * 2**20
    checked, errors = {}, []
    with st.status(f"Checking and evaluating {len(files)} file(s) ...", expanded=True) as status:
        for f in files:
            st.write(f"{f.name}: reading, checking, computing R@1, MAP@R, OPIS ...")
            try:
                checked[f.name] = uploads.check_upload(runs_root(), f.name, f.getvalue(), max_bytes=cap)
            except TCMError as exc:
                errors.append(str(exc))
        failed = bool(errors)
        status.update(label="Nothing was added: fix the file(s) named below" if failed else "Done",
                      state="error" if failed else "complete", expanded=failed)
    for message in errors:
        st.error(message)
    item = None
    if not failed:  # all files or none: a pair with a refused half leaves nothing behind
        stored = {name: uploads.store_upload(runs_root(), c) for name, c in checked.items()}
        try:
            item = (uploads.add_upload_pair(runs_root(), stored[before], stored[after], pair_name)
                    if len(stored) == 2 else next(iter(stored.values())) if len(stored) == 1 else None)
        except TCMError as exc:
            st.error(str(exc))
    if item is not None:  # only made when nothing failed
        st.session_state[PAIR] = upload_label(item)
        st.session_state[NOTE] = (f"Added **{item.name}**: picked in the sidebar's run picker. Open *Threshold "
                                  "consistency*, *Tune TCM margins* or *Embeddings on the sphere* to see it.")
        st.rerun()
    elif not failed and len(checked) > 2:
        st.success(f"Added {len(checked)} single runs to the run picker.")

st.subheader("Stored uploads")
rows, stored = [], uploads.find_uploads(runs_root())
for u in stored:
    try:
        m = runs.load_metrics(u.folder)
    except TCMError:
        continue
    rows.append({"name": u.name, "file": u.file, "N": m["n"], "D": m["dim"], "classes": m["n_classes"],
                 "R@1": m["recall_at_1"], "OPIS": m["opis"], "ε-OPIS": m["eps_opis"], "added": u.time})
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4g") for c in ("R@1", "OPIS", "ε-OPIS")})
    st.caption(f"Stored in `{uploads.uploads_root(runs_root()).name}/` under the runs folder; OPIS at the default "
               "settings, exactly as `tcm evaluate` computes it.")
    c1, c2 = st.columns([3, 1])
    names = {f"{u.name} ({u.file}, {u.time})": u for u in stored}
    chosen = c1.multiselect("Remove uploads (with the pairs they belong to)", list(names), key="upload_remove")
    if c2.button("Remove", disabled=not chosen):
        pairs_gone = sum(uploads.remove_upload(runs_root(), names[n]) for n in chosen)
        st.session_state[NOTE] = f"Removed {len(chosen)} upload(s) and {pairs_gone} pair(s)."
        st.rerun()
else:
    st.caption("None yet.")
