"""The networks themselves. See :mod:`lrbench.models` for what each one is."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Shape = tuple[int, int, int]


class ShapeError(ValueError):
    """An input shape that a network's convolutions and poolings cannot take."""


# -- output sizes (Caffe's and torch's formulas, which agree for the layers used here) ------------
def conv_out(size: int, kernel: int, pad: int = 0, stride: int = 1) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def pool_out(size: int, kernel: int, stride: int, *, ceil: bool) -> int:
    """Pooling output size; ``ceil=True`` is Caffe's rule (and torch's ``ceil_mode=True``)."""
    if ceil:
        out = math.ceil((size - kernel) / stride) + 1
        if (out - 1) * stride >= size:  # the last window must start inside the input
            out -= 1
        return out
    return (size - kernel) // stride + 1


def _check(name: str, size: int, what: str) -> int:
    if size < 1:
        raise ShapeError(f"{name}: input too small ({what})")
    return size


class LeNet(nn.Module):
    """Caffe's LeNet (``examples/mnist/lenet_train_test.prototxt``).

    conv1 20@5x5 -> max-pool 2/2 -> conv2 50@5x5 -> max-pool 2/2 -> ip1 500 -> ReLU -> ip2.
    No non-linearity after the convolutions, as in Caffe. Pooling in Caffe's ceil mode (exact for
    28x28). 431,080 parameters for 1x28x28 and 10 classes.
    """

    gaussian_std: dict[str, float] = {}

    def __init__(self, input_shape: Shape, n_classes: int) -> None:
        super().__init__()
        c, h, w = input_shape
        fh, fw = self.feature_size(h), self.feature_size(w)
        self.conv1 = nn.Conv2d(c, 20, 5)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.ip1 = nn.Linear(50 * fh * fw, 500)
        self.ip2 = nn.Linear(500, n_classes)

    @staticmethod
    def feature_size(size: int) -> int:
        s = _check("lenet", conv_out(size, 5), "conv1")
        s = _check("lenet", pool_out(s, 2, 2, ceil=True), "pool1")
        s = _check("lenet", conv_out(s, 5), "conv2")
        return _check("lenet", pool_out(s, 2, 2, ceil=True), "pool2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = F.relu(self.ip1(torch.flatten(x, 1)))
        return self.ip2(x)


class CNN3(nn.Module):
    """Caffe's ``cifar10_quick`` (the paper's CNN3).

    conv1 32@5x5 p2 -> max-pool 3/2 -> ReLU -> conv2 32@5x5 p2 -> ReLU -> avg-pool 3/2 ->
    conv3 64@5x5 p2 -> ReLU -> avg-pool 3/2 -> ip1 64 -> ip2 (no ReLU between ip1 and ip2, as in
    Caffe). Caffe rounds pooling output sizes up: 32 -> 16 -> 8 -> 4, so ip1 sees 64*4*4 = 1024
    features and the network has 145,578 parameters on 3x32x32 with 10 classes (with torch's
    default floor rounding it would be 32 -> 15 -> 7 -> 3 and 116,906). Average pooling divides
    by the number of input cells a border window covers, as Caffe does with zero padding.
    """

    gaussian_std = {"conv1": 1e-4, "conv2": 1e-2, "conv3": 1e-2, "ip1": 0.1, "ip2": 0.1}

    def __init__(self, input_shape: Shape, n_classes: int) -> None:
        super().__init__()
        c, h, w = input_shape
        fh, fw = self.feature_size(h), self.feature_size(w)
        self.conv1 = nn.Conv2d(c, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.ip1 = nn.Linear(64 * fh * fw, 64)
        self.ip2 = nn.Linear(64, n_classes)

    @staticmethod
    def feature_size(size: int) -> int:
        s = size  # the 5x5 convolutions with padding 2 keep the size
        for i in (1, 2, 3):
            s = _check("cnn3", pool_out(s, 3, 2, ceil=True), f"pool{i}")
        return s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pool1(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = self.pool3(F.relu(self.conv3(x)))
        return self.ip2(self.ip1(torch.flatten(x, 1)))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm; option A shortcut (parameter-free)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.extra_channels = planes - in_planes

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # Option A (He et al. 2016, section 4.2): identity; when the block halves the size and
        # widens the channels, subsample by 2 and pad the new channels with zeros.
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al. (2016) CIFAR ResNet with 6n + 2 layers: conv 16@3x3, three stages of n basic
    blocks with 16, 32 and 64 channels (the 2nd and 3rd start with stride 2), global average
    pooling, fc. Option A shortcuts. n = 3, 5, 9 give ResNet-20, -32, -56."""

    gaussian_std: dict[str, float] = {}

    def __init__(self, input_shape: Shape, n_classes: int, n: int) -> None:
        super().__init__()
        c, h, w = input_shape
        self.feature_size(h), self.feature_size(w)
        self.depth = 6 * n + 2
        self.conv1 = nn.Conv2d(c, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, n_classes)

    @staticmethod
    def feature_size(size: int) -> int:
        return _check("resnet", conv_out(conv_out(size, 3, 1, 2), 3, 1, 2), "stages")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class MLP(nn.Module):
    """flatten -> fc hidden -> ReLU -> fc classes (64 -> 128 -> 10 on 8x8 digits: 9,610 params)."""

    gaussian_std: dict[str, float] = {}

    def __init__(self, input_shape: Shape, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        c, h, w = input_shape
        self.fc1 = nn.Linear(c * h * w, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    @staticmethod
    def feature_size(size: int) -> int:
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class DigitsCNN(nn.Module):
    """conv 16@3x3 p1 -> ReLU -> max-pool 2 -> conv 32@3x3 p1 -> ReLU -> max-pool 2 -> fc 64 ->
    ReLU -> fc classes (8x8 -> 4x4 -> 2x2; 13,706 parameters on 1x8x8 with 10 classes)."""

    gaussian_std: dict[str, float] = {}

    def __init__(self, input_shape: Shape, n_classes: int) -> None:
        super().__init__()
        c, h, w = input_shape
        fh, fw = self.feature_size(h), self.feature_size(w)
        self.conv1 = nn.Conv2d(c, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * fh * fw, 64)
        self.fc2 = nn.Linear(64, n_classes)

    @staticmethod
    def feature_size(size: int) -> int:
        s = _check("digits-cnn", pool_out(size, 2, 2, ceil=False), "pool1")
        return _check("digits-cnn", pool_out(s, 2, 2, ceil=False), "pool2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


Builder = Callable[[Shape, int], nn.Module]
