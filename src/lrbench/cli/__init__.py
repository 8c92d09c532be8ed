"""The ``lrbench`` command. Each group of sub-commands lives in its own module here.

Errors a user can cause (bad policy notation, bad numbers, missing files) are printed as one
line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import typer

app = typer.Typer(
    name="lrbench",
    help="LRBench: choose good learning-rate policies for deep neural network training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class UserError(Exception):
    """A problem with what the user asked for; printed as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line error and exit code 2."""
    raise UserError(message)


def _register() -> None:
    # Importing a module registers its commands on ``app``; the help lists them in this order.
    from lrbench.cli import policies, train, bench, tuning, recommend, db, server  # noqa: F401, I001


def _click_types(name: str) -> tuple[type[BaseException], ...]:
    """The exception class ``name`` from every click in use: typer (>= 0.22) ships its own copy
    of click as ``typer._click``, older typers use the ``click`` package."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lrbench`` console script."""
    _register()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="lrbench", standalone_mode=False)
    except (UserError, ValueError) as e:
        print(f"lrbench: error: {e}", file=sys.stderr)
        sys.exit(2)
    except _click_types("NoArgsIsHelpError") as e:
        # typer's bundled click prints the help itself before raising; plain click does not.
        if not type(e).__module__.startswith("typer"):
            ctx = getattr(e, "ctx", None)
            print(ctx.get_help() if ctx else str(e))
        sys.exit(0)
    except _click_types("UsageError") as e:
        print(f"lrbench: error: {e.format_message()}", file=sys.stderr)
        sys.exit(2)
    except _click_types("ClickException") as e:  # e.g. a file argument that cannot be opened
        print(f"lrbench: error: {e.format_message()}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 1) or 1)
    except _click_types("Abort"):
        print("lrbench: interrupted", file=sys.stderr)
        sys.exit(130)
    except _click_types("Exit") as e:
        sys.exit(e.exit_code)
    except BrokenPipeError:  # e.g. ``lrbench functions | head -3``: not an error
        _quiet_stdout()
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
