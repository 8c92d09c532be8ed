"""Datasets in their real formats, discovery and download, and in-memory batching.

``load_dataset(name)`` returns a ``Dataset`` (numpy arrays, normalized); ``dataset_info(name)``
describes one without loading it. ``TensorBatches`` and ``iter_eval`` (torch) live in
``lrbench.data.batches`` and are imported from here lazily, so ``import lrbench.data`` does not
import torch.

>>> from lrbench.data import load_dataset
>>> ds = load_dataset("digits")
>>> ds.info.n_classes, ds.info.input_shape, ds.info.n_train, ds.info.n_test
(10, (1, 8, 8), 1347, 450)
"""

from __future__ import annotations

from typing import Any

from lrbench.data.core import Dataset, DatasetError, DatasetInfo, DatasetNotFoundError
from lrbench.data.datasets import (
    CHECKSUMS,
    DATASET_NAMES,
    DEBIAN_FASHION_MNIST_DIR,
    cache_dir,
    canonical_name,
    clear_cache,
    dataset_info,
    load_dataset,
)

__all__ = [
    "CHECKSUMS",
    "DATASET_NAMES",
    "DEBIAN_FASHION_MNIST_DIR",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "TensorBatches",
    "cache_dir",
    "canonical_name",
    "clear_cache",
    "dataset_info",
    "iter_eval",
    "load_dataset",
]


def __getattr__(name: str) -> Any:
    if name in ("TensorBatches", "iter_eval"):
        from lrbench.data import batches

        return getattr(batches, name)
    raise AttributeError(f"module 'lrbench.data' has no attribute {name!r}")
