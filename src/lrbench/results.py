"""RunResult: the plain, serializable record of one training run.

The same object goes from the trainer to the store, through an executor's results channel, to
the server's API and into reports. No framework imports here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from lrbench.tasks import Task

Status = Literal["done", "diverged", "failed"]
StopReason = Literal["max_iters", "target", "diverged", "error", "interrupted"]
CURVE_METRICS = ("top1", "top5", "ac", "cd", "cdac")


@dataclass(frozen=True)
class CurvePoint:
    """One evaluation of the learning curve, taken after ``iteration`` optimizer steps.

    ``lr`` is the LR of the last step taken; ``train_loss`` is the mean training loss since the
    previous point. Metrics that could not be computed (no correct sample for AC) are NaN.
    """

    iteration: int
    lr: float
    train_loss: float
    test_loss: float
    top1: float
    top5: float
    ac: float
    cd: float
    cdac: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CurvePoint:
        return cls(**{f.name: _from_json_number(data[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class RunResult:
    """One run: a task trained under one policy with one seed.

    The summary follows the paper: ``best_top1`` is the highest top-1 on the curve and
    ``best_iter`` (#Iter) the iteration where it was first measured; the other metrics
    (top-5, AC, CD, CDAC, LD) are those of that same evaluation.
    """

    task: Task
    policy: str
    seed: int
    status: Status
    stop_reason: StopReason
    iterations: int
    curve: tuple[CurvePoint, ...] = ()
    wall_time: float = 0.0
    train_time: float = 0.0
    n_params: int = 0
    host: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- summary --------------------------------------------------------------------------
    @property
    def best(self) -> CurvePoint | None:
        """The curve point with the highest top-1 (the first one on ties)."""
        finite = [p for p in self.curve if math.isfinite(p.top1)]
        return max(finite, key=lambda p: p.top1) if finite else None

    @property
    def final(self) -> CurvePoint | None:
        return self.curve[-1] if self.curve else None

    @property
    def iters_per_sec(self) -> float:
        return self.iterations / self.train_time if self.train_time > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The headline numbers, as one JSON-ready dict."""
        best, final = self.best, self.final
        at = best or final
        out: dict[str, Any] = {
            "policy": self.policy,
            "seed": self.seed,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "best_iter": best.iteration if best else None,
            "top1": best.top1 if best else None,
        }
        for name in ("top5", "ac", "cd", "cdac"):
            out[name] = getattr(at, name) if at else None
        out["ld"] = (at.test_loss - at.train_loss) if at else None
        out["test_loss"] = at.test_loss if at else None
        out["train_loss"] = at.train_loss if at else None
        out["final_top1"] = final.top1 if final else None
        out["n_params"] = self.n_params
        out["wall_time"] = self.wall_time
        out["iters_per_sec"] = self.iters_per_sec
        out["error"] = self.error
        return {k: _json_number(v) for k, v in out.items()}

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.model_dump(),
            "policy": self.policy,
            "seed": self.seed,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "curve": [p.to_dict() for p in self.curve],
            "wall_time": self.wall_time,
            "train_time": self.train_time,
            "n_params": self.n_params,
            "host": self.host,
            "error": self.error,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            task=Task(**data["task"]),
            curve=tuple(CurvePoint.from_dict(p) for p in data.get("curve", ())),
            **{k: data[k] for k in ("policy", "seed", "status", "stop_reason", "iterations")},
            **{
                k: data[k]
                for k in ("wall_time", "train_time", "n_params", "host", "error", "extra")
                if k in data
            },
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        return cls.from_dict(json.loads(text))


def _json_number(v: Any) -> Any:
    """NaN and inf are not JSON: they travel as None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _from_json_number(v: Any) -> Any:
    return float("nan") if v is None else v
