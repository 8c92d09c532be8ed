"""Dataset records: DatasetInfo (what a dataset is), Dataset (its arrays), and the errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Dataset", "DatasetError", "DatasetInfo", "DatasetNotFoundError", "normalize"]


class DatasetError(ValueError):
    """A dataset file is corrupted, truncated or not what it should be; the message names it."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset's files are nowhere to be found and could not be downloaded.

    The message names the missing file, the places searched and how to get it.
    """


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: name, number of classes, input shape (C, H, W) and split sizes."""

    name: str
    n_classes: int
    input_shape: tuple[int, int, int]
    n_train: int
    n_test: int

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) of positive sizes, got {shape}")
        object.__setattr__(self, "input_shape", shape)
        for field in ("n_classes", "n_train", "n_test"):
            v = getattr(self, field)
            if isinstance(v, bool) or int(v) != v or v < (1 if field == "n_classes" else 0):
                raise ValueError(f"{field} must be a whole number, got {v!r}")
            object.__setattr__(self, field, int(v))

    def iters_per_epoch(self, batch_size: int) -> int:
        """Iterations in one pass over the training split: ``max(1, n_train // batch_size)``.

        >>> DatasetInfo("digits", 10, (1, 8, 8), 1347, 450).iters_per_epoch(32)
        42
        """
        return max(1, self.n_train // batch_size)

    @property
    def n_features(self) -> int:
        """C * H * W."""
        c, h, w = self.input_shape
        return c * h * w

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict; ``DatasetInfo(**info.to_dict()) == info``."""
        return {
            "name": self.name,
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


#: The largest raw pixel value of each image dataset (for ``Dataset.scaled('unit')``).
PIXEL_MAX: dict[str, float] = {
    "mnist": 255.0, "fashion-mnist": 255.0, "cifar10": 255.0, "cifar100": 255.0, "digits": 16.0,
}


class Dataset:
    """A classification dataset in memory, ready to batch.

    ``train_x``/``test_x``: float32, shape (N, C, H, W), normalized with the training set's
    per-channel mean and std (``mean``/``std``, float64 arrays of length C, in the raw pixel
    scale of the source: 0..255 for MNIST and CIFAR, 0..16 for digits).
    ``train_y``/``test_y``: int64 class indices in [0, n_classes).
    ``source``: where the files were read from (a path, or a description such as
    ``'scikit-learn'``). Datasets returned by ``load_dataset`` are shared by an in-process cache,
    so their arrays are read-only: copy before changing them.
    """

    __slots__ = ("info", "train_x", "train_y", "test_x", "test_y", "mean", "std", "source")

    def __init__(
        self,
        info: DatasetInfo,
        train_x: np.ndarray,
        train_y: np.ndarray,
        test_x: np.ndarray,
        test_y: np.ndarray,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        source: str = "",
    ) -> None:
        for split, x, y, n in (
            ("train", train_x, train_y, info.n_train),
            ("test", test_x, test_y, info.n_test),
        ):
            if x.dtype != np.float32 or x.shape != (n, *info.input_shape):
                raise ValueError(
                    f"{info.name} {split}_x must be float32 of shape {(n, *info.input_shape)},"
                    f" got {x.dtype} {x.shape}"
                )
            if y.dtype != np.int64 or y.shape != (n,):
                raise ValueError(
                    f"{info.name} {split}_y must be int64 of shape ({n},), got {y.dtype} {y.shape}"
                )
            if n and (y.min() < 0 or y.max() >= info.n_classes):
                raise ValueError(f"{info.name} {split}_y has labels outside [0, {info.n_classes})")
        self.info = info
        self.train_x, self.train_y, self.test_x, self.test_y = train_x, train_y, test_x, test_y
        c = info.input_shape[0]
        self.mean = np.zeros(c) if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = np.ones(c) if std is None else np.asarray(std, dtype=np.float64)
        self.source = source

    def scaled(self, inputs: str = "standard") -> tuple[np.ndarray, np.ndarray]:
        """(train_x, test_x) with another input scaling, as float32 (new arrays unless standard).

        - ``standard``: per-channel mean 0 and std 1 (the arrays as stored);
        - ``unit``: raw pixels / pixel maximum, in [0, 1] (Caffe's LeNet: ``scale: 1/256``);
        - ``center``: raw pixels minus the per-channel mean, raw scale (Caffe's cifar10_quick
          subtracts the mean image and does not scale).

        The scaling changes which LRs train: the paper's LeNet LRs (up to 0.06) assume ``unit``.
        """
        if inputs == "standard":
            return self.train_x, self.test_x
        if inputs not in ("unit", "center"):
            raise ValueError(f"inputs must be standard, unit or center, got {inputs!r}")
        top = PIXEL_MAX.get(self.info.name)
        if inputs == "unit" and top is None:
            raise ValueError(f"inputs='unit' needs the pixel range of {self.info.name!r}; "
                             f"known for {', '.join(PIXEL_MAX)}")
        shape = (1, -1, 1, 1)
        std = self.std.reshape(shape).astype(np.float32)
        mean = self.mean.reshape(shape).astype(np.float32)
        out = []
        for x in (self.train_x, self.test_x):
            raw_minus_mean = x * std
            out.append(((raw_minus_mean + mean) / np.float32(top)) if inputs == "unit"
                       else raw_minus_mean)
        return out[0].astype(np.float32, copy=False), out[1].astype(np.float32, copy=False)

    def freeze(self) -> Dataset:
        """Make every array read-only (in place); returns self."""
        for a in (self.train_x, self.train_y, self.test_x, self.test_y, self.mean, self.std):
            a.flags.writeable = False
        return self

    def __repr__(self) -> str:
        i = self.info
        return (
            f"Dataset({i.name!r}, n_classes={i.n_classes}, input_shape={i.input_shape},"
            f" n_train={i.n_train}, n_test={i.n_test}, source={self.source!r})"
        )


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std of x (N, C, H, W), in float64.

    uint8 images go through a 256-bin histogram per channel: exact, and no float copy of the
    whole training set.
    """
    c = x.shape[1]
    mean = np.empty(c)
    std = np.empty(c)
    for ch in range(c):
        plane = x[:, ch]
        if x.dtype == np.uint8:
            counts = np.bincount(plane.reshape(-1), minlength=256).astype(np.float64)
            values = np.arange(256, dtype=np.float64)
            total = counts.sum()
            mean[ch] = (counts * values).sum() / total
            std[ch] = np.sqrt((counts * (values - mean[ch]) ** 2).sum() / total)
        else:
            p = plane.astype(np.float64)
            mean[ch] = p.mean()
            std[ch] = p.std()
    return mean, std


def _apply(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.float32)
    for ch in range(x.shape[1]):
        out[:, ch] = x[:, ch]
        out[:, ch] -= np.float32(mean[ch])
        out[:, ch] *= np.float32(1.0 / std[ch])
    return out


def normalize(
    train_x: np.ndarray, test_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, test, mean, std): both splits standardized with the training set's per-channel
    mean and std, as float32. A constant channel (std 0) is only centred."""
    mean, std = _channel_stats(train_x)
    std = np.where(std > 0, std, 1.0)
    return _apply(train_x, mean, std), _apply(test_x, mean, std), mean, std


def make_dataset(
    name: str,
    n_classes: int,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    source: str,
) -> Dataset:
    """A normalized Dataset from raw images (N, C, H, W) of any numeric dtype and labels."""
    tx, vx, mean, std = normalize(train_x, test_x)
    info = DatasetInfo(
        name=name,
        n_classes=n_classes,
        input_shape=tuple(train_x.shape[1:]),  # type: ignore[arg-type]
        n_train=train_x.shape[0],
        n_test=test_x.shape[0],
    )
    return Dataset(
        info,
        tx,
        np.ascontiguousarray(train_y, dtype=np.int64),
        vx,
        np.ascontiguousarray(test_y, dtype=np.int64),
        mean=mean,
        std=std,
        source=source,
    )
