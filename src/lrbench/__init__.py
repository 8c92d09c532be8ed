"""LRBench: choose good learning-rate policies for training deep neural networks.

``import lrbench`` imports no deep-learning framework; the torch, Keras and JAX adapters live in
``lrbench.integrations`` and are imported only when used. ``lrbench.train`` (the torch trainer,
:func:`lrbench.trainer.train`) is loaded on first use, as are the ranking functions
``lrbench.rank``, ``lrbench.summarize`` and ``lrbench.pareto_front`` (:mod:`lrbench.ranking`).

>>> import lrbench
>>> lrbench.parse("SIN2(k0=0.01, k1=0.06, l=2000)")(2000)
0.06
"""

from typing import Any

from lrbench.policies import Composite, Policy, from_dict, make, parse

__version__ = "0.1.0"
__all__ = ["Composite", "Policy", "from_dict", "make", "parse", "__version__"]

_RANKING = ("rank", "summarize", "pareto_front")


def __getattr__(name: str) -> Any:
    if name == "train":  # imports torch: only when asked for
        from lrbench.trainer import train

        return train
    if name in _RANKING:
        from lrbench import ranking

        return getattr(ranking, name)
    raise AttributeError(f"module 'lrbench' has no attribute {name!r}")
