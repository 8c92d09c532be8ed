"""In-memory mini-batches as torch tensors, without DataLoader overhead.

``TensorBatches`` serves training batches forever, epoch after epoch: epoch e is a permutation of
the training set drawn from ``torch.Generator().manual_seed(s_e)``, where s_e is derived from
(seed, e) alone, so the batch of any iteration is a pure function of (seed, iteration): runs are
reproducible per seed and can resume anywhere (``batch(t)``, ``iterate(start=t)``).
The last incomplete batch of each epoch is dropped, so every training step sees exactly
``batch_size`` samples (steps per epoch = N // batch_size).

A batch is gathered with ``index_select`` on a slice of the epoch's permuted index; that costs
one copy of the batch, whereas keeping a permuted copy of the whole set per epoch would make
slices free but double the memory (CIFAR-10 is 600 MB as float32), for no measurable gain at
these batch sizes.

>>> import numpy as np
>>> x = np.arange(10, dtype=np.float32).reshape(10, 1)
>>> y = np.arange(10)
>>> tb = TensorBatches(x, y, batch_size=4, seed=0)
>>> tb.iterations_per_epoch
2
>>> xb, yb = next(iter(tb))
>>> tuple(xb.shape), yb.dtype
((4, 1), torch.int64)
>>> [len(b) for _, b in iter_eval(x, y, batch_size=4)]
[4, 4, 2]
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["TensorBatches", "iter_eval"]

Batch = tuple[torch.Tensor, torch.Tensor]


def _as_tensor(a: Any, dtype: torch.dtype, what: str, device: Any) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        arr = np.asarray(a)
        if arr.dtype == object:
            raise ValueError(f"{what} must be a numeric array, got dtype object")
        with warnings.catch_warnings():
            # Datasets from load_dataset are read-only and shared; nothing here writes to them.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dtype != dtype and dtype == torch.int64:
        if t.is_floating_point() and not torch.equal(t, t.round()):
            raise ValueError(f"{what} must be integer class indices")
    return t.to(device=device, dtype=dtype)


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim < 1 or y.ndim != 1:
        raise ValueError(
            f"y must be 1-D and x at least 1-D, got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y do not match: {x.shape[0]} samples but {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise ValueError("no samples")


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _check_batch_size(batch_size: Any) -> int:
    return _whole(batch_size, "batch_size", 1)


def _epoch_seed(seed: int, epoch: int) -> int:
    # SeedSequence mixes (seed, epoch) into well-spread, independent streams.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


class TensorBatches:
    """Training batches (x float32, y int64) forever, reshuffled each epoch, deterministic per seed.

    ``x``: (N, ...) numpy array or tensor; ``y``: (N,) class indices. ``batch_size`` <= N.
    ``seed``: a whole number >= 0. ``shuffle=False`` serves the samples in order every epoch.
    ``device``: where the tensors live (e.g. ``'cuda'``; moved once, up front).
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        *,
        device: Any = None,
    ) -> None:
        self.batch_size = _check_batch_size(batch_size)
        self.seed = _whole(seed, "seed", 0)
        self.shuffle = bool(shuffle)
        self.x = _as_tensor(x, torch.float32, "x", device)
        self.y = _as_tensor(y, torch.int64, "y", device)
        _check_xy(self.x, self.y)
        self.n_samples = int(self.x.shape[0])
        if self.batch_size > self.n_samples:
            raise ValueError(
                f"batch_size {self.batch_size} is larger than the {self.n_samples} samples"
                " (the last incomplete batch is dropped, so no batch would be left)"
            )
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    @property
    def iterations_per_epoch(self) -> int:
        """Training steps per epoch: N // batch_size (the incomplete last batch is dropped)."""
        return self.n_samples // self.batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of the samples in ``epoch`` (int64, on the tensors' device)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self._epoch or self._perm is None:
            if self.shuffle:
                g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
                perm = torch.randperm(self.n_samples, generator=g)
            else:
                perm = torch.arange(self.n_samples)
            self._epoch, self._perm = epoch, perm.to(self.x.device)
        return self._perm

    def batch(self, iteration: int) -> Batch:
        """The batch of training step ``iteration`` (counted from 0)."""
        epoch, i = divmod(_whole(iteration, "iteration", 0), self.iterations_per_epoch)
        idx = self.permutation(epoch)[i * self.batch_size : (i + 1) * self.batch_size]
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def iterate(self, start: int = 0) -> Iterator[Batch]:
        """Batches of steps start, start + 1, ... forever."""
        t = start
        while True:
            yield self.batch(t)
            t += 1

    def __iter__(self) -> Iterator[Batch]:
        return self.iterate(0)

    def __repr__(self) -> str:
        return (
            f"TensorBatches(n_samples={self.n_samples}, batch_size={self.batch_size},"
            f" seed={self.seed}, shuffle={self.shuffle}, device={self.x.device})"
        )


def iter_eval(x: Any, y: Any, batch_size: int, *, device: Any = None) -> Iterator[Batch]:
    """Evaluation batches in order, the last one possibly smaller: every sample exactly once.

    Tensors already on ``device`` are sliced without copying.
    """
    bs = _check_batch_size(batch_size)
    xt = _as_tensor(x, torch.float32, "x", device)
    yt = _as_tensor(y, torch.int64, "y", device)
    _check_xy(xt, yt)  # checked now, not at the first next()
    return ((xt[i : i + bs], yt[i : i + bs]) for i in range(0, xt.shape[0], bs))
