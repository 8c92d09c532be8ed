"""Write tokens of the shared server (``lrbench server token create|list|revoke``).

A token is ``lrb_`` followed by 43 URL-safe characters from :func:`secrets.token_urlsafe`
(256 random bits). The database keeps only ``sha256(token)`` in hex, the name it was made for and
its first 12 characters (to tell tokens apart in a listing), so a copy of the database does not
give write access. The token itself is shown once, when it is created. A revoked token keeps its
row, with the time it was revoked; its name cannot be used again.

Checking a token hashes it and looks the hash up (a unique index): a 256-bit random secret needs
no slow password hash, and the lookup by hash leaks nothing about other tokens' values.

>>> from lrbench.store import Store
>>> with Store.open("sqlite://") as store:
...     token = store.create_token("alice")
...     store.verify_token(token), store.verify_token("lrb_wrong")
('alice', None)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from lrbench.store import schema as S

if TYPE_CHECKING:
    from lrbench.store.core import _Tx

TOKEN_PREFIX = "lrb_"
PREFIX_CHARS = 12
MAX_NAME = 100
MAX_TOKEN = 200
#: last_used_at is written at most this often per token (a write per request would serialize
#: the server's readers behind SQLite's single writer)
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the token, only its name, first characters and dates."""

    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None
        return {"name": self.name, "prefix": self.prefix, "active": self.active,
                "created_at": iso(self.created_at), "last_used_at": iso(self.last_used_at),
                "revoked_at": iso(self.revoked_at)}


def hash_token(token: str) -> str:
    """sha256 of the token's UTF-8 bytes, in hex: what the database stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_name(name: Any) -> str:
    """A token name: 1 to 100 printable characters, no surrounding spaces; ValueError if not."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a token name must be a non-empty string")
    if name != name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"a token name must be at most {MAX_NAME} printable characters without "
                         f"surrounding spaces, got {name!r}")
    return name


class TokenMixin:
    """Token methods of :class:`lrbench.store.Store` (its ``_transaction`` runs them)."""

    _transaction: Any

    def create_token(self, name: str) -> str:
        """Make a new write token for ``name`` and return it (it is not stored; keep it).

        ValueError if ``name`` is invalid or already has a token (active or revoked).
        """
        from lrbench.store.core import _now

        name = check_token_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)

        def run(tx: _Tx) -> None:
            tx.conn.execute(S.api_tokens.insert().values(
                name=name, token_hash=hash_token(token), prefix=token[:PREFIX_CHARS],
                created_at=_now()))

        try:
            self._transaction(run)
        except Exception as e:  # the unique name, seen through the store's error wrapper
            if isinstance(e.__cause__, IntegrityError) or isinstance(e, IntegrityError):
                raise ValueError(f"a token named {name!r} already exists; revoke it and pick "
                                 "another name") from None
            raise
        return token

    def list_tokens(self, *, include_revoked: bool = True) -> list[TokenInfo]:
        """The tokens by name (never their values), oldest first."""
        t = S.api_tokens.c
        q = select(t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at).order_by(t.id)
        if not include_revoked:
            q = q.where(t.revoked_at.is_(None))
        rows = self._transaction(lambda tx: tx.conn.execute(q).all(), write=False)
        from lrbench.store.core import _aware

        return [TokenInfo(r.name, r.prefix, _aware(r.created_at), _aware(r.last_used_at),
                          _aware(r.revoked_at)) for r in rows]

    def revoke_token(self, name: str) -> bool:
        """Revoke the token called ``name``; False if it was already revoked.

        ValueError if there is no token of that name.
        """
        from lrbench.store.core import _now

        name = check_token_name(name)
        t = S.api_tokens.c

        def run(tx: _Tx) -> bool | None:
            row = tx.conn.execute(select(t.id, t.revoked_at).where(t.name == name)).first()
            if row is None:
                return None
            if row.revoked_at is not None:
                return False
            tx.conn.execute(update(S.api_tokens).where(t.id == row.id).values(revoked_at=_now()))
            return True

        done = self._transaction(run)
        if done is None:
            raise ValueError(f"no token named {name!r}")
        return done

    def verify_token(self, token: Any) -> str | None:
        """The name of the active token ``token``, or None (unknown, revoked or malformed)."""
        from lrbench.store.core import _aware, _now

        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) \
                or len(token) > MAX_TOKEN or not token.isascii():
            return None
        t = S.api_tokens.c
        digest = hash_token(token)

        def run(tx: _Tx) -> str | None:
            row = tx.conn.execute(select(t.id, t.name, t.last_used_at, t.revoked_at)
                                  .where(t.token_hash == digest)).first()
            if row is None or row.revoked_at is not None:
                return None
            now = _now()
            last = _aware(row.last_used_at)
            if last is None or now - last >= TOUCH_EVERY:
                tx.conn.execute(update(S.api_tokens).where(t.id == row.id)
                                .values(last_used_at=now))
            return str(row.name)

        return self._transaction(run)
