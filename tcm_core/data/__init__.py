"""Datasets for TCM Explorer: loading, subsetting, transforms and class-balanced sampling.

``load_dataset(name, data_dir, ...)`` returns a ``DataSplits`` for the small closed-set toys
(MNIST, Fashion-MNIST, 8x8 digits) or the open-world DML benchmarks (image folders, CUB-200-2011,
Cars-196, Stanford Online Products, iNaturalist-2018), with train, validation and test splits
(validation: classes carved from the training classes, or held-out training images for the
toys; see ``validation``). ``ClassBalancedBatchSampler`` draws the P x K batches
metric-learning losses need.
"""

from tcm_core.data.load import load_dataset
from tcm_core.data.registry import DATASETS, SMALL, DatasetInfo, dataset_kind, normalize_name
from tcm_core.data.roots import available_datasets, resolve_data_dir
from tcm_core.data.sampler import ClassBalancedBatchSampler
from tcm_core.data.small import DatasetFallbackWarning
from tcm_core.data.splits import DataSplits
from tcm_core.data.subset import SubsetSpec
from tcm_core.data.transforms import default_test_transform, default_train_transform, describe_transform

__all__ = [
    "DATASETS", "SMALL", "ClassBalancedBatchSampler", "DataSplits", "DatasetFallbackWarning",
    "DatasetInfo", "SubsetSpec", "dataset_kind",
    "available_datasets", "default_test_transform", "default_train_transform",
    "describe_transform", "load_dataset", "normalize_name", "resolve_data_dir",
]
