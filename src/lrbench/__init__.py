"""LRBench: choose good learning-rate policies for training deep neural networks.

``import lrbench`` imports no deep-learning framework; the torch, Keras and JAX adapters live in
``lrbench.integrations`` and are imported only when used. ``lrbench.train`` (the torch trainer,
:func:`lrbench.trainer.train`) is loaded on first use.
"""

from typing import Any

from lrbench.policies import Composite, Policy, from_dict, make, parse

__version__ = "0.1.0"
__all__ = ["Composite", "Policy", "from_dict", "make", "parse", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "train":  # imports torch: only when asked for
        from lrbench.trainer import train

        return train
    raise AttributeError(f"module 'lrbench' has no attribute {name!r}")
