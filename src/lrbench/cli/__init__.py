"""The ``lrbench`` command. Each group of sub-commands lives in its own module here.

Errors a user can cause (bad policy notation, bad numbers, missing files) are printed as one
line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import click
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


def fail(message: str) -> None:
    """Stop the command with a one-line error and exit code 2."""
    raise UserError(message)


def _register() -> None:
    # Importing a module registers its commands on ``app``.
    from lrbench.cli import db, policies, train  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lrbench`` console script."""
    _register()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="lrbench", standalone_mode=False)
    except (UserError, ValueError) as e:
        print(f"lrbench: error: {e}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as e:
        print(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click.exceptions.UsageError as e:
        print(f"lrbench: error: {e.format_message()}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Abort:
        print("lrbench: interrupted", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
