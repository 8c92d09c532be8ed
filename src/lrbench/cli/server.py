"""``lrbench serve``, ``lrbench server token ...``, ``lrbench push`` and ``lrbench pull``.

    lrbench serve [--db URL] [--host 127.0.0.1] [--port 8000] [--cors-origin ORIGIN]...
                  [--max-body-mb 8]
    lrbench server token create NAME [--db URL]     prints the new token once
    lrbench server token list [--db URL] [--json]
    lrbench server token revoke NAME [--db URL]
    lrbench push --server URL [--token T] [--db URL] [--task T] [--json]
    lrbench pull --server URL --task T [--db URL] [--json]

``--token`` defaults to ``$LRBENCH_TOKEN``, so the token need not appear in the shell history.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from lrbench.cli import app, fail
from lrbench.cli.db import DbOption, JsonOption

server_app = typer.Typer(name="server", help="Administer the shared server: API tokens.",
                         no_args_is_help=True, add_completion=False)
token_app = typer.Typer(name="token", help="Create, list and revoke the API tokens that may "
                        "submit runs.", no_args_is_help=True, add_completion=False)
server_app.add_typer(token_app, name="token")
app.add_typer(server_app, name="server")

ServerOpt = Annotated[str, typer.Option("--server", metavar="URL",
                                        help="The server, e.g. http://lrbench.example.org:8000.")]


def _open(db: str | None):
    from lrbench.store import open_store

    return open_store(db)


@app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    cors_origin: Annotated[list[str] | None, typer.Option(
        "--cors-origin", metavar="ORIGIN",
        help="Let pages from this origin read the API (repeatable; default: none).")] = None,
    max_body_mb: Annotated[float, typer.Option(
        "--max-body-mb", min=0.01, max=1024, help="Largest request body accepted, in MiB.")] = 8,
) -> None:
    """Serve the LR database: the JSON API (docs at /api/docs) and the web leaderboard."""
    from lrbench._extras import require
    from lrbench.server.app import create_app

    uvicorn = require("uvicorn", "server", "lrbench serve")
    store = _open(db)
    application = create_app(store, max_body_bytes=max(1024, int(max_body_mb * 1024 * 1024)),
                             cors_origins=tuple(cors_origin or ()))
    print(f"lrbench: serving {store.url if store.backend == 'sqlite' else store.backend} on "
          f"http://{host}:{port} (API docs: /api/docs)", file=sys.stderr)
    uvicorn.run(application, host=host, port=port, log_level="info", server_header=False)


@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="Who or what the token is for.")],
                 db: DbOption = None) -> None:
    """Make a write token for NAME and print it, once: it is stored only as a hash."""
    with _open(db) as store:
        token = store.create_token(name)
    print(token)
    print(f"lrbench: token {name!r} created; it is shown only now. Give it to "
          "`lrbench push --token` or $LRBENCH_TOKEN.", file=sys.stderr)


@token_app.command("list")
def token_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The tokens: name, first characters, dates, whether active. Never the tokens."""
    with _open(db) as store:
        tokens = store.list_tokens()
    if as_json:
        print(json.dumps([t.to_dict() for t in tokens], indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "prefix", "active", "created", "last used", "revoked")
    for t in tokens:
        d = t.to_dict()
        table.add_row(t.name, t.prefix + "…", "yes" if t.active else "no",
                      *((d[k] or "")[:19] for k in ("created_at", "last_used_at", "revoked_at")))
    Console().print(table)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")],
                 db: DbOption = None) -> None:
    """Revoke NAME's token: the server refuses it from now on."""
    with _open(db) as store:
        changed = store.revoke_token(name)
    print(f"lrbench: token {name!r} " + ("revoked" if changed else "was already revoked"),
          file=sys.stderr)


@app.command("push")
def push_cmd(
    server: ServerOpt,
    token: Annotated[str | None, typer.Option(
        "--token", help="API token (default: $LRBENCH_TOKEN).")] = None,
    db: DbOption = None,
    task: Annotated[str | None, typer.Option(
        "--task", help="Only this task: a preset name or a task key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send the server the local finished runs it lacks, with their curves."""
    from lrbench.server.client import push

    token = token or os.environ.get("LRBENCH_TOKEN")
    if not token:
        fail("push needs an API token: --token TOKEN or $LRBENCH_TOKEN")
    with _open(db) as store:
        report = push(store, server, token, task=task)
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"{report.local} local runs; the server lacked {report.missing}: "
              f"{report.written} added, {report.kept} it already had")


@app.command("pull")
def pull_cmd(
    server: ServerOpt,
    task: Annotated[str, typer.Option("--task", help="A preset name or a task key.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring a task's results from the server into the local database."""
    from lrbench.server.client import pull

    with _open(db) as store:
        report = pull(store, server, task)
    if as_json:
        print(json.dumps({"written": report.written, "kept": report.skipped}))
    else:
        print(f"pulled {report.written} new runs ({report.skipped} already here)")
