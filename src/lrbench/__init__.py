"""LRBench: choose good learning-rate policies for training deep neural networks.

``import lrbench`` imports no deep-learning framework; the torch, Keras and JAX adapters live in
``lrbench.integrations`` and are imported only when used.
"""

from lrbench.policies import Composite, Policy, from_dict, make, parse

__version__ = "0.1.0"
__all__ = ["Composite", "Policy", "from_dict", "make", "parse", "__version__"]
