"""Task descriptions: (dataset, model, training hyper-parameters other than the LR).

Validated once, here, into a frozen pydantic model; the rest of LRBench trusts it. The paper's
Table II settings are named presets (SPEC section 6).

>>> task = get_task("mnist-lenet")
>>> task.batch_size, task.optimizer, task.max_iters
(100, 'momentum', 10000)
>>> get_task("digits-mlp", max_iters=300).max_iters
300
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Optimizer = Literal["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"]
Init = Literal["default", "xavier", "gaussian", "msra"]
Inputs = Literal["standard", "unit", "center"]


class Task(BaseModel):
    """What is trained, and how, apart from the LR policy and the seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(min_length=1, description="dataset name, e.g. 'fashion-mnist'")
    model: str = Field(min_length=1, description="model name, e.g. 'lenet'")
    batch_size: int = Field(gt=0)
    optimizer: Optimizer = "momentum"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_iters: int = Field(gt=0)
    eval_every: int = Field(gt=0, description="R: evaluate every R iterations")
    init: Init = "default"
    inputs: Inputs = Field(
        "standard",
        description="input scaling: standard (mean 0, std 1), unit ([0, 1], Caffe's LeNet) or "
        "center (mean subtracted, raw scale, Caffe's cifar10_quick)",
    )
    framework: Literal["pytorch"] = "pytorch"
    preset: str | None = Field(None, description="the preset this task came from, if any")

    @model_validator(mode="after")
    def _momentum_fits_optimizer(self) -> Task:
        if self.optimizer in ("momentum", "nesterov") and self.momentum <= 0:
            raise ValueError(f"optimizer {self.optimizer!r} needs momentum > 0")
        return self

    def identity(self) -> dict[str, Any]:
        """The fields that make two tasks the same task (the preset name is only a label)."""
        return self.model_dump(exclude={"preset"})

    def replace(self, **changes: Any) -> Task:
        """A validated copy with some fields changed."""
        return make_task(**{**self.model_dump(), **changes})


def make_task(**fields: Any) -> Task:
    """Build a Task; a ValueError names each bad field and why."""
    try:
        return Task(**fields)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'task'}: {err['msg']}" for err in e.errors()
        )
        raise ValueError(f"invalid task: {problems}") from None


PRESETS: dict[str, dict[str, Any]] = {
    # Paper Table II, with Caffe's input scaling of each network (so the paper's LRs apply).
    "mnist-lenet": dict(
        dataset="mnist", model="lenet", batch_size=100, optimizer="momentum", momentum=0.9,
        weight_decay=0.0005, max_iters=10_000, eval_every=200, init="xavier", inputs="unit",
    ),
    "cifar10-cnn3": dict(
        dataset="cifar10", model="cnn3", batch_size=100, optimizer="momentum", momentum=0.9,
        weight_decay=0.004, max_iters=70_000, eval_every=1000, init="gaussian", inputs="center",
    ),
    "cifar10-resnet32": dict(
        dataset="cifar10", model="resnet32", batch_size=128, optimizer="nesterov", momentum=0.9,
        weight_decay=0.0001, max_iters=64_000, eval_every=1000, init="msra",
    ),
    # Fashion-MNIST with the MNIST settings (the Debian package ships it).
    "fashion-mnist-lenet": dict(
        dataset="fashion-mnist", model="lenet", batch_size=100, optimizer="momentum",
        momentum=0.9, weight_decay=0.0005, max_iters=10_000, eval_every=200, init="xavier",
        inputs="unit",
    ),
    # scikit-learn's bundled 8x8 digits: the offline default, seconds on a CPU.
    "digits-mlp": dict(
        dataset="digits", model="mlp", batch_size=32, optimizer="momentum", momentum=0.9,
        weight_decay=0.0001, max_iters=1000, eval_every=50, init="default",
    ),
    "digits-cnn": dict(
        dataset="digits", model="digits-cnn", batch_size=32, optimizer="momentum", momentum=0.9,
        weight_decay=0.0001, max_iters=1000, eval_every=50, init="default",
    ),
}


def as_task(task: Task | str) -> Task:
    """A Task as it is, or the preset of that name; a ValueError for anything else."""
    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        return get_task(task)
    raise ValueError(f"task must be a Task or a preset name, got {type(task).__name__}")


def get_task(name: str, **overrides: Any) -> Task:
    """A preset task by name, optionally with some fields changed."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise ValueError(f"unknown task preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return make_task(**{**PRESETS[key], "preset": key, **overrides})
