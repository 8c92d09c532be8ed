"""What the API takes and gives, as pydantic models: validated once, at the edge.

Submissions are checked before anything is written: the task's fields are bounded (no number
that overflows a database column), names are short and printable, the policy notation must
parse, accuracies and confidences lie in [0, 1], curves are bounded in length and ordered by
iteration, and no text holds a NUL character. A request that breaks a rule gets a 422 that
names the field.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lrbench.results import CurvePoint, RunResult
from lrbench.tasks import Task

MAX_RUNS_PER_REQUEST = 500
MAX_CURVE_POINTS = 10_000
MAX_KEYS_PER_REQUEST = 5_000
MAX_ITERS = 1_000_000_000
MAX_INT32 = 2**31 - 1
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,99}$"
KEY_PATTERN = r"^[0-9a-f]{64}$"

Fraction = Annotated[float | None, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNegative = Annotated[float | None, Field(ge=0.0, le=1e12, allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
TaskKey = Annotated[str, Field(pattern=KEY_PATTERN, description="a task's key: 64 hex digits")]


def _no_nul(value: str | None, what: str) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    return value


class TaskIn(Task):
    """A task as submitted: the fields of :class:`lrbench.tasks.Task`, bounded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: Name
    model: Name
    batch_size: int = Field(gt=0, le=MAX_INT32)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0.0, le=1e6, allow_inf_nan=False)
    max_iters: int = Field(gt=0, le=MAX_ITERS)
    eval_every: int = Field(gt=0, le=MAX_ITERS)
    preset: Name | None = None

    def to_task(self) -> Task:
        return Task(**self.model_dump())


class CurvePointIn(BaseModel):
    """One evaluation of a learning curve; undefined values are null."""

    model_config = ConfigDict(extra="forbid")

    iteration: int = Field(ge=0, le=MAX_ITERS)
    lr: NonNegative = None
    train_loss: NonNegative = None
    test_loss: NonNegative = None
    top1: Fraction = None
    top5: Fraction = None
    ac: Fraction = None
    cd: NonNegative = None
    cdac: NonNegative = None


class DatasetIn(BaseModel):
    """A dataset's meta-features (what ``recommend`` compares tasks by)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    n_classes: int | None = Field(None, ge=1, le=MAX_INT32)
    input_shape: list[Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(None,
                                                                               max_length=8)
    n_train: int | None = Field(None, ge=0, le=MAX_INT32)
    n_test: int | None = Field(None, ge=0, le=MAX_INT32)


class RunIn(BaseModel):
    """One finished run with its curve: the JSON form of :class:`lrbench.results.RunResult`."""

    model_config = ConfigDict(extra="forbid")

    task: TaskIn
    policy: str = Field(min_length=1, max_length=2000, description="LR policy notation")
    seed: int = Field(ge=0, le=2**63 - 1)
    status: Literal["done", "diverged", "failed"]
    stop_reason: Literal["max_iters", "target", "diverged", "error", "interrupted"]
    iterations: int = Field(ge=0, le=MAX_ITERS)
    curve: list[CurvePointIn] = Field(default_factory=list, max_length=MAX_CURVE_POINTS)
    wall_time: NonNegative = 0.0
    train_time: NonNegative = 0.0
    n_params: int = Field(0, ge=0, le=2**62)
    host: str = Field("", max_length=255)
    error: str | None = Field(None, max_length=4000)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("policy")
    @classmethod
    def _policy_parses(cls, v: str) -> str:
        from lrbench.policies import parse

        _no_nul(v, "policy")
        try:
            return str(parse(v))
        except (ValueError, TypeError) as e:
            raise ValueError(f"policy notation does not parse: {e}") from None

    @field_validator("host", "error")
    @classmethod
    def _text(cls, v: str | None, info: Any) -> str | None:
        return _no_nul(v, info.field_name)

    @field_validator("extra")
    @classmethod
    def _small_extra(cls, v: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(v, allow_nan=False)
        if len(text) > 10_000 or "\\u0000" in text:
            raise ValueError("extra must be at most 10,000 characters of JSON, without NUL")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RunIn:
        if self.iterations > self.task.max_iters:
            raise ValueError(f"iterations ({self.iterations}) exceeds the task's max_iters "
                             f"({self.task.max_iters})")
        its = [p.iteration for p in self.curve]
        if any(b <= a for a, b in zip(its, its[1:])):
            raise ValueError("curve iterations must be strictly increasing")
        if its and its[-1] > self.iterations:
            raise ValueError(f"a curve point's iteration ({its[-1]}) exceeds the run's "
                             f"iterations ({self.iterations})")
        return self

    def to_result(self) -> RunResult:
        nan = float("nan")
        curve = tuple(CurvePoint(**{k: nan if v is None else v
                                    for k, v in p.model_dump().items()}) for p in self.curve)
        return RunResult(task=self.task.to_task(), policy=self.policy, seed=self.seed,
                         status=self.status, stop_reason=self.stop_reason,
                         iterations=self.iterations, curve=curve,
                         wall_time=self.wall_time or 0.0, train_time=self.train_time or 0.0,
                         n_params=self.n_params, host=self.host, error=self.error,
                         extra=self.extra)


class SubmitIn(BaseModel):
    """``POST /api/runs``: runs to add, and optionally their datasets' meta-features."""

    model_config = ConfigDict(extra="forbid")

    runs: list[RunIn] = Field(min_length=1, max_length=MAX_RUNS_PER_REQUEST)
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=50)


class SubmitOut(BaseModel):
    written: int = Field(description="runs added")
    kept: int = Field(description="runs the server already had (left as they were)")


class RunKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_key: TaskKey
    policy: str = Field(min_length=1, max_length=2000)
    seed: int = Field(ge=0, le=2**63 - 1)

    @field_validator("policy")
    @classmethod
    def _policy_parses(cls, v: str) -> str:
        return RunIn._policy_parses(v)


class MissingIn(BaseModel):
    """``POST /api/runs/missing``: which of these runs does the server lack?"""

    model_config = ConfigDict(extra="forbid")

    keys: list[RunKey] = Field(max_length=MAX_KEYS_PER_REQUEST)


class MissingOut(BaseModel):
    missing: list[int] = Field(description="positions in `keys` of the runs the server lacks")


class RecommendIn(BaseModel):
    """``POST /api/recommendations``: a task by preset name or in full."""

    model_config = ConfigDict(extra="forbid")

    preset: Name | None = None
    task: TaskIn | None = None
    top: int = Field(5, ge=1, le=50)

    @model_validator(mode="after")
    def _one(self) -> RecommendIn:
        if (self.preset is None) == (self.task is None):
            raise ValueError("give exactly one of preset or task")
        return self


class TaskOut(BaseModel):
    key: str
    preset: str | None
    task: dict[str, Any]
    runs: int
    policies: int
    best_top1: float | None
    last_finished: str | None


class LeaderboardOut(BaseModel):
    task_key: str
    ranked_by: str
    rows: list[dict[str, Any]] = Field(description="Table VII rows, best first "
                                                   "(lrbench.reports.tables.FIELDS)")
    more_tied: int = Field(0, description="policies tied with the last row, left out")


class PolicyOut(BaseModel):
    notation: str
    function: str
    n_params: int
    runs: int


class RunSummaryOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    policy: str
    seed: int
    status: str


class RunOut(BaseModel):
    id: int
    task_key: str
    result: dict[str, Any] = Field(description="the RunResult with its curve")
    summary: dict[str, Any]


class TokenError(BaseModel):
    detail: str
