"""Optional dependencies: import one, or say which extra installs it."""

from __future__ import annotations

import importlib
from typing import Any


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is not installed; the message names the extra to install.

    A ValueError too, so the CLI prints it as one line (exit code 2)."""


def require(module: str, extra: str, what: str) -> Any:
    """``import module``, or a MissingExtraError: "<what> needs the '<extra>' extra: pip ..."."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what} needs the {extra!r} extra: "
                                f"pip install 'lrbench[{extra}]'") from None
