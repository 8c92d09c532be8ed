"""``build_model``: a network by name, shaped for a dataset, initialised as asked."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lrbench.models.networks import (
    CNN3,
    MLP,
    CifarResNet,
    DigitsCNN,
    LeNet,
    Shape,
    ShapeError,
)

#: name -> (builder(input_shape, n_classes), the class, one line of description)
MODELS: dict[str, tuple[Callable[[Shape, int], nn.Module], type[nn.Module], str]] = {
    "lenet": (LeNet, LeNet, "Caffe LeNet (MNIST)"),
    "cnn3": (CNN3, CNN3, "Caffe cifar10_quick (CIFAR-10)"),
    "resnet20": (lambda s, c: CifarResNet(s, c, 3), CifarResNet, "CIFAR ResNet-20, option A"),
    "resnet32": (lambda s, c: CifarResNet(s, c, 5), CifarResNet, "CIFAR ResNet-32, option A"),
    "resnet56": (lambda s, c: CifarResNet(s, c, 9), CifarResNet, "CIFAR ResNet-56, option A"),
    "mlp": (MLP, MLP, "MLP, one hidden layer of 128 (8x8 digits)"),
    "digits-cnn": (DigitsCNN, DigitsCNN, "two-conv CNN (8x8 digits)"),
}

INITS = ("default", "xavier", "gaussian", "msra")

#: std of the 'gaussian' init for layers a model does not list (Caffe's LeNet/AlexNet examples)
GAUSSIAN_STD = 0.01


def _shape(input_shape: Any) -> Shape:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}") from None
    if len(shape) == 2:  # (H, W): one channel
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) of positive sizes, got {input_shape!r}")
    return shape  # type: ignore[return-value]


def min_input_size(name: str) -> int:
    """The smallest H (= W) the model ``name`` accepts."""
    cls = MODELS[_key(name)][1]
    for size in range(1, 1025):
        try:
            cls.feature_size(size)  # type: ignore[attr-defined]
            return size
        except ShapeError:
            continue
    raise AssertionError(f"no input size up to 1024 fits {name}")  # pragma: no cover


def _key(name: str) -> str:
    key = str(name).strip().lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return key


def build_model(
    name: str,
    input_shape: Any,
    n_classes: int,
    init: str = "default",
    seed: int | None = None,
) -> nn.Module:
    """The network ``name`` for inputs of shape (C, H, W) and ``n_classes`` outputs (logits).

    ``init``: 'default', 'xavier', 'gaussian' or 'msra' (see :mod:`lrbench.models`). ``seed``:
    when given, the initial weights depend only on it (torch's global random state is left as it
    was); when None they come from torch's global generator. Unknown names, bad shapes and inputs
    too small for the network raise ValueError.
    """
    key = _key(name)
    shape = _shape(input_shape)
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive whole number, got {n_classes!r}")
    init_key = str(init).strip().lower()
    if init_key not in INITS:
        raise ValueError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}")
    builder = MODELS[key][0]

    def make() -> nn.Module:
        try:
            model = builder(shape, int(n_classes))
        except ShapeError:
            smallest = min_input_size(key)
            hint = " (use 'mlp' or 'digits-cnn' for 8x8 digits)" if min(shape[1:]) < 13 else ""
            raise ValueError(
                f"model {key!r} needs inputs of at least {smallest}x{smallest}, got "
                f"{shape[1]}x{shape[2]}{hint}"
            ) from None
        initialize(model, init_key)
        return model

    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return make()


def _fan_in(weight: torch.Tensor) -> int:
    return weight.shape[1] * math.prod(weight.shape[2:])


def initialize(model: nn.Module, init: str) -> nn.Module:
    """Re-initialise the conv and linear layers of ``model`` in place (see :mod:`lrbench.models`).

    Uses torch's global generator; returns the model.
    """
    if init == "default":
        return model
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}")
    stds: dict[str, float] = getattr(model, "gaussian_std", {}) or {}
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.weight
                if init == "xavier":  # Caffe: U(-a, a), a = sqrt(3 / fan_in)
                    a = math.sqrt(3.0 / _fan_in(w))
                    w.uniform_(-a, a)
                elif init == "gaussian":
                    w.normal_(0.0, stds.get(name, GAUSSIAN_STD))
                else:  # msra: N(0, 2 / fan_in)
                    w.normal_(0.0, math.sqrt(2.0 / _fan_in(w)))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
    return model


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
