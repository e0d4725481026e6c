"""Models: backbones (a registry of image -> feature networks), their weights, the embedding
model (backbone + head, L2-normalized output) and an on-disk cache of backbone features.

    model = create_model("resnet18", embedding_dim=128, weights="DEFAULT")
    embeddings = model(images)  # (B, 128), unit norm
"""

from tcm_core.models.backbones import BACKBONES, BackboneSpec, create_backbone, get_backbone_spec
from tcm_core.models.embedding import EmbeddingModel, create_model, to_channels_last
from tcm_core.models.feature_cache import cache_key, cached_features, default_cache_dir, extract_features
from tcm_core.models.small_cnn import SmallCNN
from tcm_core.models.weights import is_random, is_weight_file, read_state_dict, weights_id

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "EmbeddingModel",
    "SmallCNN",
    "cache_key",
    "cached_features",
    "create_backbone",
    "create_model",
    "default_cache_dir",
    "extract_features",
    "get_backbone_spec",
    "is_random",
    "is_weight_file",
    "read_state_dict",
    "to_channels_last",
    "weights_id",
]
