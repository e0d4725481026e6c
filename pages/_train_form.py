"""The Train page's form: its widgets -> the pair's ``TrainConfig`` and seeds (the Streamlit
demos' ``*_ui()`` pattern), kept out of the page so the page reads top to bottom."""

import streamlit as st

from pages._common import SUGGESTED_MARGINS
from tcm_core.data import DATASETS
from tcm_core.losses import BASE_LOSSES, LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS
from tcm_core.models import BACKBONES
from tcm_core.training import TrainConfig
from tcm_core.training.repeats import parse_seeds

DEFAULT = TrainConfig()


def train_form_ui() -> tuple[TrainConfig, list[int]] | None:
    """The Train page's form -> (the pair's config, its seeds) once submitted; TCMError if bad."""
    with st.form("train"):
        c = st.columns(4)
        dataset = c[0].selectbox("Dataset", list(DATASETS), index=list(DATASETS).index(DEFAULT.dataset), key="dataset")
        data_dir = c[1].text_input("Data folder", "", key="data_dir", help="Empty: the data root in the sidebar. For 'folder': the folder of class folders.")
        backbone = c[2].selectbox("Backbone", ["auto"] + sorted(BACKBONES), help="auto: small_cnn for small images, mobilenet_v2 for photos")
        weights = c[3].text_input("Weights", "", help="torchvision name (DEFAULT) or a local .pth file; empty: random")
        c = st.columns(4)
        loss = c[0].selectbox("Base loss", sorted(BASE_LOSSES), index=sorted(BASE_LOSSES).index(DEFAULT.loss), key="loss")
        dim = c[1].number_input("Embedding dimension (0: auto)", 0, 2048, 3, key="dim")
        epochs = c[2].number_input("Epochs", 1, 500, DEFAULT.epochs, key="epochs")
        max_train = c[3].number_input("Training images (0: all)", 0, 10_000_000, 20_000, step=1000, key="max_train")
        c = st.columns(4)
        batch = c[0].number_input("Batch size", 4, 4096, DEFAULT.batch_size, key="batch")
        per_class = c[1].number_input("Samples per class (K)", 1, 64, DEFAULT.samples_per_class, key="per_class")
        lr = c[2].number_input("Learning rate", 1e-5, 1.0, DEFAULT.lr, format="%.4f")
        freeze = c[3].checkbox("Freeze backbone (train the head on cached features)")
        c, (m_pos, m_neg) = st.columns(6), st.session_state.get(SUGGESTED_MARGINS, (MARGIN_POS, MARGIN_NEG))
        m_pos = c[0].slider("m⁺ (margin_pos)", -1.0, 1.0, float(m_pos), 0.05)
        m_neg = c[1].slider("m⁻ (margin_neg)", -1.0, 1.0, float(m_neg), 0.05)
        l_pos = c[2].number_input("λ⁺", 0.0, 100.0, LAMBDA_POS)
        l_neg = c[3].number_input("λ⁻", 0.0, 100.0, LAMBDA_NEG)
        seeds = c[4].text_input("Seeds (several: one pair each)", str(DEFAULT.seed), key="seeds",
                                help="e.g. 0 1 2: repeats, so the app can tell an effect from seed noise")
        device = c[5].selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="device")
        if not st.form_submit_button("Train baseline and +TCM", type="primary"):
            return None
    seeds = parse_seeds(seeds)
    return TrainConfig(
        dataset=dataset, data_dir=data_dir or None, backbone=None if backbone == "auto" else backbone,
        weights=weights or None, freeze_backbone=freeze, embedding_dim=int(dim) or None, loss=loss,
        margin_pos=m_pos, margin_neg=m_neg, lambda_pos=l_pos, lambda_neg=l_neg, epochs=int(epochs),
        batch_size=int(batch), samples_per_class=int(per_class), lr=float(lr), seed=seeds[0],
        device=device, max_train_samples=int(max_train) or None), seeds
