"""``lrbench train``: train one task under one policy and print the run's summary.

    lrbench train --task PRESET --policy POLICY [--iters N] [--eval-every R] [overrides] [options]
    lrbench train --dataset D --model M --policy POLICY [--batch-size B] [--optimizer O]
                  [--momentum M] [--weight-decay WD] [--init I] [--iters N] [--eval-every R]
    options: [--seed S] [--target-accuracy A] [--threads T] [--device cpu|cuda] [--data-root DIR]
             [--db URL] [--json]

With ``--task`` the preset's settings are used and any option given replaces its value (even
``--dataset`` / ``--model``). Without it, ``--dataset`` and ``--model`` are required and the rest
default to batch 100, SGD with momentum 0.9, no weight decay, torch's init, 1,000 iterations and
an evaluation every 50. A rich progress bar (iteration, current LR, last top-1) is drawn on
stderr unless ``--json``; ``--json`` prints the summary as one JSON object and nothing else on
stdout. Exit code 0 for a finished or diverged run, 1 for a run that failed during training, 2 for
bad input (one line on stderr).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any, Optional

import typer

from lrbench.cli import app, fail

#: a task given by --dataset/--model takes these unless the options say otherwise
CUSTOM_DEFAULTS: dict[str, Any] = dict(
    batch_size=100, optimizer="momentum", momentum=0.9, weight_decay=0.0, max_iters=1000,
    eval_every=50, init="default",
)


def _opt(help: str, *names: str, metavar: str | None = None) -> Any:
    return typer.Option(*names, help=help, metavar=metavar, show_default=False)


def build_task(
    *, task: str | None, dataset: str | None, model: str | None, **fields: Any
) -> Any:
    """The Task that the command-line options describe (ValueError with one line if not)."""
    from lrbench.tasks import get_task, make_task

    given = {k: v for k, v in fields.items() if v is not None}
    if dataset is not None:
        given["dataset"] = dataset.strip()
    if model is not None:
        given["model"] = model.strip().lower()
    if "optimizer" in given:
        given["optimizer"] = given["optimizer"].strip().lower()
    if "init" in given:
        given["init"] = given["init"].strip().lower()
    if task is not None:
        return get_task(task, **given)
    missing = [f"--{n}" for n in ("dataset", "model") if n not in given]
    if missing:
        fail(f"give --task PRESET, or {' and '.join(missing)} (see lrbench train --help)")
    return make_task(**{**CUSTOM_DEFAULTS, **given})


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else str(v)
    return str(v)


class _Bar:
    """A rich progress bar on stderr, fed by the monitor's callback."""

    def __init__(self, total: int, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("lr {task.fields[lr]}"),
            TextColumn("top-1 {task.fields[top1]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task_id = self.progress.add_task(label, total=total, lr="-", top1="-")
        self.started = False

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.progress.stop()

    def __call__(self, monitor: Any) -> None:
        # Started at the first report, i.e. once training runs: a setup error (bad data path,
        # model that does not fit) stays the one line that the CLI prints.
        if not self.started:
            self.started = True
            self.progress.start()
        point = monitor.last_point
        top1 = f"{point.top1:.4f}" if point is not None and math.isfinite(point.top1) else "-"
        self.progress.update(
            self.task_id, completed=monitor.iteration, lr=f"{monitor.lr:.4g}", top1=top1,
        )


def _print_summary(result: Any) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    s = result.summary()
    console = Console()
    table = Table(box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    t = result.task
    rows = [
        ("task", f"{t.preset or '-'}: {t.dataset} / {t.model}, {t.optimizer}, batch "
                 f"{t.batch_size}, wd {t.weight_decay:g}, init {t.init}"),
        ("policy", s["policy"]),
        ("seed", s["seed"]),
        ("status", f"{s['status']} ({s['stop_reason']})"),
        ("iterations", s["iterations"]),
        ("top-1 (best)", _fmt(s["top1"])),
        ("#Iter (best_iter)", _fmt(s["best_iter"])),
        ("top-5", _fmt(s["top5"])),
        ("AC / CD / CDAC", f"{_fmt(s['ac'])} / {_fmt(s['cd'])} / {_fmt(s['cdac'])}"),
        ("LD (test - train loss)", _fmt(s["ld"])),
        ("final top-1", _fmt(s["final_top1"])),
        ("#Param", s["n_params"]),
        ("iterations/s", _fmt(s["iters_per_sec"], 1)),
        ("wall time (s)", _fmt(s["wall_time"], 2)),
    ]
    if result.extra.get("divergence"):
        rows.append(("divergence", result.extra["divergence"]))
    if s["error"]:
        rows.append(("error", s["error"]))
    for name, value in rows:
        table.add_row(Text(name), Text(str(value)))
    console.print(table)


@app.command()
def train(
    policy: Annotated[Optional[str], _opt(
        "The LR policy in notation, e.g. 'SIN2(k0=0.01, k1=0.06, l=2000)'.", "--policy", "-p",
        metavar="POLICY")] = None,
    task: Annotated[Optional[str], _opt(
        "A task preset, e.g. mnist-lenet, cifar10-cnn3, digits-mlp.", "--task", "-t",
        metavar="PRESET")] = None,
    dataset: Annotated[Optional[str], _opt(
        "Dataset: mnist, fashion-mnist, cifar10, cifar100, digits, synthetic.", "--dataset",
        metavar="D")] = None,
    model: Annotated[Optional[str], _opt(
        "Model: lenet, cnn3, resnet20, resnet32, resnet56, mlp, digits-cnn.", "--model",
        metavar="M")] = None,
    batch_size: Annotated[Optional[int], _opt("Mini-batch size.", "--batch-size",
                                              metavar="B")] = None,
    optimizer: Annotated[Optional[str], _opt(
        "sgd, momentum, nesterov, adam, adamw or rmsprop.", "--optimizer", metavar="O")] = None,
    momentum: Annotated[Optional[float], _opt(
        "Momentum (beta1 for adam/adamw).", "--momentum", metavar="M")] = None,
    weight_decay: Annotated[Optional[float], _opt("L2 weight decay.", "--weight-decay",
                                                  metavar="WD")] = None,
    init: Annotated[Optional[str], _opt(
        "Weight init: default, xavier, gaussian, msra.", "--init", metavar="I")] = None,
    iters: Annotated[Optional[int], _opt("Training iterations (max).", "--iters", "-n",
                                         metavar="N")] = None,
    eval_every: Annotated[Optional[int], _opt(
        "Evaluate on the test set every R iterations.", "--eval-every", metavar="R")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", metavar="S",
                                      help="Random seed (init and batches).")] = 0,
    target_accuracy: Annotated[Optional[float], _opt(
        "Stop at the first evaluation with top-1 >= A (a fraction in (0, 1]).",
        "--target-accuracy", metavar="A")] = None,
    threads: Annotated[Optional[int], _opt("Torch CPU threads.", "--threads",
                                           metavar="T")] = None,
    device: Annotated[Optional[str], _opt(
        "Torch device: cpu (default) or cuda (an error when CUDA is absent).", "--device",
        metavar="D")] = None,
    data_root: Annotated[Optional[str], _opt(
        "A directory searched first for the dataset's files.", "--data-root",
        metavar="DIR")] = None,
    db: Annotated[Optional[str], _opt(
        "Record the run in this LR database (sqlite:///PATH or postgresql+psycopg://...).",
        "--db", metavar="URL")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only the summary, as one JSON object.")] = False,
) -> None:
    """Train a task under an LR policy and report Top-1, Top-5, AC, CD, CDAC, LD and #Iter."""
    if policy is None:
        fail("give the LR policy with --policy, e.g. --policy 'FIX(k0=0.01)'")
    from lrbench.policies import parse

    pol = parse(policy)
    t = build_task(
        task=task, dataset=dataset, model=model, batch_size=batch_size, optimizer=optimizer,
        momentum=momentum, weight_decay=weight_decay, init=init, max_iters=iters,
        eval_every=eval_every,
    )
    if seed < 0:
        fail(f"--seed must be a whole number >= 0, got {seed}")
    if target_accuracy is not None and not 0.0 < target_accuracy <= 1.0:
        fail(f"--target-accuracy must be a fraction in (0, 1], got {target_accuracy:g}")
    if threads is not None and threads < 1:
        fail(f"--threads must be >= 1, got {threads}")

    from lrbench.trainer import train as run

    kwargs: dict[str, Any] = dict(
        threads=threads, data_root=data_root, target_accuracy=target_accuracy, store=db,
        device=device.strip() if device else None,
    )
    try:
        if as_json:
            result = run(t, pol, seed, **kwargs)
        else:
            with _Bar(t.max_iters, f"{t.dataset}/{t.model}") as bar:
                result = run(t, pol, seed, progress=bar, **kwargs)
    except ValueError as e:  # set-up problems (data files, model vs input): one line
        fail(" ".join(str(e).split()))
    if as_json:
        print(json.dumps(result.summary(), allow_nan=False))
    else:
        _print_summary(result)
    if result.status == "failed":
        if not as_json:
            print(f"lrbench: run failed: {result.error}", file=sys.stderr)
        raise typer.Exit(1)
