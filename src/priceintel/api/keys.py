"""REST API keys: `pik_<key_id>_<secret>`, shown once; only the SHA-256 of the secret is stored.

The secret is 256 random bits, so a fast hash is as strong as a slow one against a stolen table (nothing to
guess), and checking a key costs microseconds, not an argon2 run per request. A key has a scope: `read` (GET
only), `write` (also data actions: matches, alerts, watches, imports) or `admin` (also API keys). Revoked keys
stay listed (who revoked them, when); `last_used_at` is stamped at most once a minute per key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

import pandas as pd
import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.db import tenancy

#: what a key may do, weakest first
SCOPES = ("read", "write", "admin")
PREFIX = "pik_"
_TOKEN = re.compile(r"pik_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9_.@ -]{1,64}")


class ApiKeyError(PriceIntelError):
    """A bad key name or scope, or an unknown key."""


class ApiKey(NamedTuple):
    """An authenticated key: its id, name, scope and tenant."""

    key_id: str
    name: str
    scope: str
    tenant: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def check_scope(scope: str) -> str:
    """`scope` if it is one of SCOPES, else ApiKeyError naming them."""
    if scope not in SCOPES:
        raise ApiKeyError(f"scope {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


def create_key(engine: sa.Engine, name: str, scope: str, created_by: str) -> tuple[str, str]:
    """A new key of the current tenant: (key_id, the whole key to hand over once). Only its hash is stored."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ApiKeyError(f"key name {name!r}: use 1-64 letters, digits, spaces or . _ @ -")
    check_scope(scope)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO api_key (key_id, name, scope, secret_hash, created_by) VALUES (:k, :n, :s, :h, :by)"),
            {"k": key_id, "n": name, "s": scope, "h": _digest(secret), "by": created_by},
        )
    return key_id, f"{PREFIX}{key_id}_{secret}"


def list_keys(engine: sa.Engine, include_revoked: bool = True) -> pd.DataFrame:
    """Every key of the current tenant (never a secret or hash): key_id, name, scope, created_at, created_by,
    last_used_at, revoked_at, revoked_by."""
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    return pd.read_sql(
        f"SELECT key_id, name, scope, created_at, created_by, last_used_at, revoked_at, revoked_by FROM api_key "
        f"{where} ORDER BY created_at, key_id",
        engine,
    )


def revoke_key(engine: sa.Engine, key_id: str, revoked_by: str) -> bool:
    """Revoke a key at once; False when it was already revoked, ApiKeyError when there is no such key."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text("SELECT revoked_at FROM api_key WHERE key_id = :k FOR UPDATE"), {"k": key_id}
        ).first()
        if row is None:
            raise ApiKeyError(f"no API key {key_id!r}")
        if row.revoked_at is not None:
            return False
        conn.execute(
            sa.text("UPDATE api_key SET revoked_at = now(), revoked_by = :by WHERE key_id = :k"),
            {"k": key_id, "by": revoked_by},
        )
    return True


def revoke_keys_of(engine: sa.Engine, user: str, keep_up_to: str | None, revoked_by: str) -> list[str]:
    """Revoke the unrevoked keys user `user` made through the API (`created_by` user:NAME) whose scope is above
    `keep_up_to` (None: every one): a user demoted or removed keeps no key stronger than their role. Works in
    the current tenant; returns the revoked key ids."""
    scopes = list(SCOPES) if keep_up_to is None else list(SCOPES[SCOPES.index(check_scope(keep_up_to)) + 1 :])
    if not scopes:
        return []
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text("""UPDATE api_key SET revoked_at = now(), revoked_by = :by
                       WHERE created_by = :u AND revoked_at IS NULL AND scope = ANY(:s) RETURNING key_id"""),
            {"by": revoked_by, "u": f"user:{user}", "s": scopes},
        )
        return sorted(r[0] for r in rows)


def looks_like_key(token: str) -> bool:
    """Whether a bearer token has the shape of an API key (not a JWT)."""
    return token.startswith(PREFIX)


def authenticate(engine: sa.Engine, token: str) -> ApiKey | None:
    """The key `token` is, when it is a valid, unrevoked key; None otherwise (the same for every failure)."""
    m = _TOKEN.fullmatch(token or "")
    if m is None:
        return None
    key_id = m.group("key_id")
    # one query, before any tenant is known (a key names none); in autocommit: no BEGIN and ROLLBACK around it
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        row = conn.execute(sa.text("SELECT * FROM priceintel_api_key(:k)"), {"k": key_id}).first()
    if row is None or row.revoked:
        return None
    if not hmac.compare_digest(row.secret_hash, _digest(m.group("secret"))):
        return None
    if row.stale:  # last_used_at, to the minute: one write a minute per key, in the key's tenant
        with tenancy.scope(row.tenant), engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE api_key SET last_used_at = now() WHERE key_id = :k "
                    "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
                ),
                {"k": key_id},
            )
    return ApiKey(key_id, row.name, row.scope, row.tenant)
