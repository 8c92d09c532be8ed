"""The server's FastAPI application: the JSON API under ``/api``, the web pages at ``/``.

>>> from fastapi.testclient import TestClient
>>> from lrbench.server import create_app
>>> client = TestClient(create_app("sqlite://"))
>>> client.get("/api/health").json()["status"]
'ok'

Security, by construction:

* **Writes need a token** (``Authorization: Bearer lrb_...``), checked against the hashes in
  the database; reads are open.
* **Bodies are bounded**: a request whose body exceeds ``max_body_bytes`` (8 MiB by default) is
  refused with 413 before it is parsed, whether it declares its length or streams it.
* **Bad input is a 4xx with a reason**: validation errors are 422 naming the field, a bad ranking
  option or notation 400, an unknown task or run 404. The database is reached only through
  SQLAlchemy expressions with bound parameters.
* **CORS is off** unless ``cors_origins`` lists the origins to allow (reads only: GET).
* Responses carry ``X-Content-Type-Options: nosniff`` and the pages a strict
  Content-Security-Policy (no scripts at all; images and styles from the server itself).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from lrbench.server.queries import ResultCache
from lrbench.store import Store, StoreError, open_store

DEFAULT_MAX_BODY = 8 * 1024 * 1024
CSP = ("default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _fastapi() -> Any:
    from lrbench._extras import require

    require("jinja2", "server", "the server")
    return require("fastapi", "server", "the server")


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _plain(send, 400, "malformed Content-Length header")
                    return
                if declared > self.limit:
                    await _plain(send, 413, f"request body over {self.limit} bytes")
                    return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # Read the whole body first (it is bounded), so that a streamed body over the limit is
        # refused here, before the application parses any of it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _plain(send, 413, f"request body over {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _plain(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(store: Store | str | None = None, *, max_body_bytes: int = DEFAULT_MAX_BODY,
               cors_origins: Sequence[str] = (), cache_seconds: float = 5.0) -> Any:
    """The server's ASGI app over ``store`` (a Store, a database URL, or None for the default).

    ``max_body_bytes``: the largest request body accepted. ``cors_origins``: browser origins
    allowed to read the API from other sites (none by default). ``cache_seconds``: how long a
    computed leaderboard or task list is served before it is computed again (0: never cached);
    a submission to a task clears what depends on it at once.
    """
    fastapi = _fastapi()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from lrbench import __version__
    from lrbench.server import api, pages

    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) \
            or max_body_bytes < 1024:
        raise ValueError(f"max_body_bytes must be an integer >= 1024, got {max_body_bytes!r}")
    if isinstance(cache_seconds, bool) or not isinstance(cache_seconds, (int, float)) \
            or not 0 <= cache_seconds <= 3600:
        raise ValueError(f"cache_seconds must be a number in [0, 3600], got {cache_seconds!r}")
    db = store if isinstance(store, Store) else open_store(store)
    app = fastapi.FastAPI(
        title="LRBench server", version=__version__,
        description="Shared LR-policy results: tasks, leaderboards, runs with their curves, "
                    "recommendations. Reading is open; submitting runs needs an API token.",
        docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json",
    )
    app.state.store = db
    app.state.cache = ResultCache(cache_seconds)
    app.state.pngs = OrderedDict()  # plots by what they show (pages.py); bounded there
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(ValueError)
    async def _bad_value(request: Any, exc: ValueError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreError)
    async def _store_down(request: Any, exc: StoreError) -> Any:
        return JSONResponse({"detail": "the database is unavailable; try again later"},
                            status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Any, exc: RequestValidationError) -> Any:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"],
                             "errors": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Any, exc: HTTPException) -> Any:
        if request.url.path.startswith("/api") or exc.status_code != 404:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        return pages.not_found(request, str(exc.detail))

    @app.middleware("http")
    async def _headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET"], allow_headers=[])
    app.add_middleware(BodyLimit, limit=max_body_bytes)  # added last: the outermost layer
    return app


def app_from_env() -> Any:
    """The app over ``$LRBENCH_DB`` (else the default database), for an ASGI server's factory
    mode, e.g. several worker processes: ``uvicorn --factory lrbench.server.app:app_from_env
    --workers 4``. ``$LRBENCH_SERVER_CORS`` lists allowed origins, comma-separated."""
    import os

    origins = [o.strip() for o in os.environ.get("LRBENCH_SERVER_CORS", "").split(",")
               if o.strip()]
    return create_app(None, cors_origins=origins)

