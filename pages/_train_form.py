"""The Train page's form: its widgets -> the pair's ``TrainConfig`` and seeds (the Streamlit
demos' ``*_ui()`` pattern), kept out of the page so the page reads top to bottom. In classroom
mode (``TCM_CLASSROOM=1``, ``bash run.sh app --classroom``) the form keeps only what a lesson
changes: the base loss, TCM's margins and the seed."""

import os

import streamlit as st

from pages._common import SUGGESTED_MARGINS
from tcm_core.data import DATASETS, available_datasets
from tcm_core.losses import BASE_LOSSES, LAMBDA_NEG, LAMBDA_POS, MARGIN_NEG, MARGIN_POS
from tcm_core.models import BACKBONES
from tcm_core.training import TrainConfig
from tcm_core.training.repeats import parse_seeds

DEFAULT = TrainConfig()
LESSON_IMAGES = 20_000  # the default pair's training images (about 80 s on a laptop CPU)


def classroom() -> bool:
    return os.environ.get("TCM_CLASSROOM", "").strip().lower() in ("1", "true", "yes")


def margins_ui(c) -> tuple[float, float]:
    """m+ / m- sliders in columns ``c[0]``, ``c[1]``, starting from the margins page's suggestion."""
    m_pos, m_neg = st.session_state.get(SUGGESTED_MARGINS, (MARGIN_POS, MARGIN_NEG))
    return (c[0].slider("m⁺ (margin_pos)", -1.0, 1.0, float(m_pos), 0.05),
            c[1].slider("m⁻ (margin_neg)", -1.0, 1.0, float(m_neg), 0.05))


def train_form_ui() -> tuple[TrainConfig, list[int]] | None:
    """The Train page's form -> (the pair's config, its seeds) once submitted; TCMError if bad."""
    return classroom_form_ui() if classroom() else full_form_ui()


def classroom_form_ui() -> tuple[TrainConfig, list[int]] | None:
    """Loss, margins and seed; the rest as the full form's defaults (so both forms' default pair
    is one run in the cache): the MNIST toy, or the 8x8 digits when MNIST is not on the server."""
    dataset = "mnist" if "mnist" in available_datasets() else "digits"
    with st.form("train"):
        c = st.columns(4)
        loss = c[0].selectbox("Base loss", sorted(BASE_LOSSES), index=sorted(BASE_LOSSES).index(DEFAULT.loss), key="loss")
        m_pos, m_neg = margins_ui(c[1:3])
        seed = c[3].number_input("Seed", 0, 1_000_000, DEFAULT.seed, key="seed_one",
                                 help="Same seed, same settings: the same result, so the class shares one training")
        st.caption(f"{DATASETS[dataset].description}; {DEFAULT.epochs} epoch, the rest at the defaults.")
        if not st.form_submit_button("Train baseline and +TCM", type="primary"):
            return None
    return TrainConfig(dataset=dataset, loss=loss, margin_pos=m_pos, margin_neg=m_neg, seed=int(seed), embedding_dim=3,
                       max_train_samples=LESSON_IMAGES if dataset == "mnist" else None), [int(seed)]


def full_form_ui() -> tuple[TrainConfig, list[int]] | None:
    """Every setting of the pair."""
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
        max_train = c[3].number_input("Training images (0: all)", 0, 10_000_000, LESSON_IMAGES, step=1000, key="max_train")
        c = st.columns(4)
        batch = c[0].number_input("Batch size", 4, 4096, DEFAULT.batch_size, key="batch")
        per_class = c[1].number_input("Samples per class (K)", 1, 64, DEFAULT.samples_per_class, key="per_class")
        lr = c[2].number_input("Learning rate", 1e-5, 1.0, DEFAULT.lr, format="%.4f")
        freeze = c[3].checkbox("Freeze backbone (train the head on cached features)")
        c = st.columns(6)
        m_pos, m_neg = margins_ui(c)
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
