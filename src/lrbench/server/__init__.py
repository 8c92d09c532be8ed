"""The shared LR-policy server (``lrbench serve``): an HTTP API and web pages over the LR database.

Needs the ``server`` extra (``pip install 'lrbench[server]'``: FastAPI, uvicorn, Jinja2, httpx).

>>> from lrbench.server import create_app           # doctest: +SKIP
>>> app = create_app("sqlite:///results.db")         # doctest: +SKIP

* :mod:`lrbench.server.app`: the application, its limits and security headers;
* :mod:`lrbench.server.api`: the JSON API (OpenAPI at ``/api/openapi.json``, docs at
  ``/api/docs``);
* :mod:`lrbench.server.pages`: the web pages (tasks, leaderboards, runs, comparisons);
* :mod:`lrbench.server.client`: ``push`` and ``pull`` between a local database and a server.

Tokens for writing are made with ``lrbench server token create NAME`` (see
:mod:`lrbench.store.tokens`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """:func:`lrbench.server.app.create_app` (imported on use: FastAPI is an optional extra)."""
    from lrbench.server.app import create_app as make

    return make(*args, **kwargs)
