"""Tuning LR policies (SPEC section 5): LR range tests.

- :func:`fix_range_test` — the paper's range test: short FIX runs over an LR grid scaled by 10,
  giving the good FIX range and bounds for cyclic (k0, k1) and decaying (k0) policies;
  :func:`probe_fix` runs one more LR as a finished one ran its LRs.
- :func:`smith_range_test` — Smith's range test on your own PyTorch model, optimizer, loss and
  data (their state is restored afterwards); :func:`smith_range_test_task` on an LRBench task.
- :func:`range_test` — either one on a task, by ``method``.
- :func:`tune` — the paper's procedure within a budget of training iterations: range test,
  candidate policies per function family, successive halving (``lrbench.tuning.tune``).

``import lrbench.tuning`` imports no framework: the torch parts load on first use.

>>> from lrbench.tuning import lr_grid
>>> lr_grid(1e-4, 1.0)
(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""

from __future__ import annotations

from typing import Any

from lrbench.tuning.rangetest import (
    FixPoint,
    FixRangeResult,
    SmithRangeResult,
    exponential_lrs,
    fix_range_test,
    good_fix_range,
    lr_grid,
    probe_fix,
    smith_suggestions,
    smooth_losses,
)
from lrbench.tuning.tune import TuneResult, tune

__all__ = [
    "FixPoint",
    "FixRangeResult",
    "SmithRangeResult",
    "exponential_lrs",
    "fix_range_test",
    "good_fix_range",
    "lr_grid",
    "probe_fix",
    "range_test",
    "smith_range_test",
    "smith_range_test_task",
    "smith_suggestions",
    "smooth_losses",
    "TuneResult",
    "tune",
]

METHODS = ("fix", "smith")


def range_test(task: Any, method: str = "fix", **kwargs: Any) -> FixRangeResult | SmithRangeResult:
    """Run the ``'fix'`` (:func:`fix_range_test`) or ``'smith'`` (:func:`smith_range_test_task`)
    range test on ``task`` with ``kwargs``."""
    m = method.strip().lower() if isinstance(method, str) else method
    if m == "fix":
        return fix_range_test(task, **kwargs)
    if m == "smith":
        from lrbench.tuning.smith import smith_range_test_task

        return smith_range_test_task(task, **kwargs)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def __getattr__(name: str) -> Any:
    if name in ("smith_range_test", "smith_range_test_task"):  # imports torch: only when asked
        from lrbench.tuning import smith

        return getattr(smith, name)
    raise AttributeError(f"module 'lrbench.tuning' has no attribute {name!r}")
