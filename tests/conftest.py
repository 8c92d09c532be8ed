"""Shared test set-up."""

import os

# Keras 3 defaults to TensorFlow, which LRBench does not install; torch is always there.
os.environ.setdefault("KERAS_BACKEND", "torch")
