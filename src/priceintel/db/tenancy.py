"""Tenants: which tenant each transaction works in, and the tenants themselves (migration 0014).

Every tenant-owned table has row-level security keyed on `priceintel_tenant()`, which reads the transaction's
setting `priceintel.tenant`. This module sets it at the start of every transaction of an engine from
`get_engine` (a `begin` event), from, in order: `scope(name)` (a context manager: a request, a test, a CLI
command's `--tenant`), `bind(name)` (the whole process: an app kernel of one user), `$PRICEINTEL_TENANT`;
with none of them the database's default tenant applies to the owner and no tenant (no rows) to the app role.

- **The owner** (the URL in DATABASE_URL: migrations, the pipeline, the CLI) bypasses row-level security as the
  tables' owner. So each of its transactions first switches to the database's worker role `<db>_worker`
  (`SET LOCAL ROLE`; `db.roles`), which has the owner's data privileges but not its bypass: the pipeline reads
  and writes one tenant, and new rows take that tenant by the column default. `as_owner()` skips the switch for
  work across tenants (migrations, refreshing the app views, `priceintel tenants`).
- **The app role** (`<db>_app`: the apps and the API) must prove the tenant with `priceintel.tenant_token`: the
  HMAC-SHA256 of the tenant name under the installation's tenant key (`config.tenant_secret`), whose SHA-256
  the tenant table stores (`sync_tokens`). SQL run as the app role cannot name another tenant without its token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event

from priceintel import PriceIntelError, config

__all__ = [
    "DEFAULT",
    "DEMO",
    "PLANS",
    "TENANT_ENV",
    "TenantError",
    "add_tenant",
    "as_owner",
    "bind",
    "check_name",
    "current",
    "ensure_tenant",
    "enter",
    "install",
    "list_tenants",
    "scope",
    "sync_tokens",
    "token_for",
    "worker_role_name",
]

#: the tenant existing data migrates into (the default tenant of a database until another is made default)
DEFAULT = "default"
#: the tenant the demo world loads into
DEMO = "demo"
#: subscription plans, smallest first (limits: `tenancy` plans in docs/api.md)
PLANS = ("free", "pro", "enterprise")
#: environment variable naming the tenant of a process (CLI, pipeline, lab)
TENANT_ENV = "PRICEINTEL_TENANT"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

_SCOPE: ContextVar[tuple[str, str | None] | None] = ContextVar("priceintel_tenant", default=None)
_OWNER: ContextVar[bool] = ContextVar("priceintel_as_owner", default=False)
_BOUND: list[tuple[str, str | None] | None] = [None]
_SECRET: list[str | None] = [None]


class TenantError(PriceIntelError):
    """A bad tenant name or plan, an unknown tenant, or one that exists already."""


class _Kind(NamedTuple):
    owner: bool  # the connected role owns the tables (else: the app role)
    worker: str | None  # the owner's worker role, when it exists and the owner may switch to it


_KINDS: weakref.WeakKeyDictionary[sa.Engine, _Kind] = weakref.WeakKeyDictionary()


def check_name(name: str) -> str:
    """`name` when it is a valid tenant name, else TenantError naming the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TenantError(
            f"tenant {name!r}: use 1-40 lower-case letters, digits, _ or -, starting with a letter or digit"
        )
    return name


def worker_role_name(database: str) -> str:
    """`<database>_worker`: the role the owner's transactions switch to (cut to 63 characters)."""
    return f"{database[:56]}_worker"


def token_for(name: str, secret: str) -> str:
    """The token proving tenant `name` to the database: HMAC-SHA256 of the name under `secret` (hex)."""
    return hmac.new(secret.encode(), f"priceintel-tenant:{name}".encode(), hashlib.sha256).hexdigest()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _secret() -> str:
    """The installation's tenant key (`config.tenant_secret`), read once per process."""
    secret = _SECRET[0]
    if secret is None:
        secret = _SECRET[0] = config.tenant_secret()
    return secret


def current() -> str | None:
    """The tenant named for this context: `scope`, else `bind`, else $PRICEINTEL_TENANT (None: the default)."""
    chosen = _SCOPE.get() or _BOUND[0]
    if chosen is not None:
        return chosen[0]
    return os.environ.get(TENANT_ENV) or None


def _wanted() -> tuple[str | None, str | None]:
    chosen = _SCOPE.get() or _BOUND[0]
    if chosen is not None:
        return chosen
    env = os.environ.get(TENANT_ENV) or None
    return (check_name(env), None) if env else (None, None)


@contextmanager
def scope(name: str | None, token: str | None = None) -> Iterator[str | None]:
    """Work in tenant `name` inside the block (None: leave the tenant as it is); `token` proves it for the
    app role (made from the process's secret when not given)."""
    if name is None:
        yield current()
        return
    reset = _SCOPE.set((check_name(name), token))
    try:
        yield name
    finally:
        _SCOPE.reset(reset)


def enter(name: str, token: str | None = None) -> None:
    """Work in tenant `name` for the rest of this context (one API request's task)."""
    _SCOPE.set((check_name(name), token))


def bind(name: str | None, token: str | None = None) -> None:
    """Work in tenant `name` for the whole process unless a scope says otherwise (an app kernel; None unbinds)."""
    _BOUND[0] = None if name is None else (check_name(name), token)


@contextmanager
def as_owner() -> Iterator[None]:
    """Transactions in the block run as the owner itself, across tenants (no switch to the worker role)."""
    reset = _OWNER.set(True)
    try:
        yield
    finally:
        _OWNER.reset(reset)


#: whether the connected role may switch to the worker role %(w)s (false when there is none)
_MAY_BE_WORKER = (
    "CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(w)s) "
    "THEN pg_has_role(current_user, %(w)s, 'MEMBER') ELSE false END"
)


def _kind(conn: sa.Connection) -> _Kind | None:
    engine = conn.engine
    kind = _KINDS.get(engine)
    if kind is not None:
        return kind
    worker = worker_role_name(engine.url.database or "postgres")
    row = conn.exec_driver_sql(
        f"""SELECT to_regprocedure('priceintel_tenant()') IS NOT NULL AS ready,
                  COALESCE((SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c
                            WHERE c.oid = to_regclass('public.tenant')), false) AS owner,
                  {_MAY_BE_WORKER} AS worker""",
        {"w": worker},
    ).first()
    if row is None or not row.ready:
        return None  # not migrated yet: nothing to set (and nothing cached, so a migration is seen)
    kind = _Kind(bool(row.owner), worker if row.owner and row.worker else None)
    _KINDS[engine] = kind
    return kind


def forget(engine: sa.Engine) -> None:
    """Drop what is known of engine's roles (after a migration or a role change)."""
    _KINDS.pop(engine, None)


def _on_begin(conn: sa.Connection) -> None:
    if _OWNER.get():
        return
    kind = _kind(conn)
    if kind is None:
        return
    name, token = _wanted()
    if kind.owner:
        if kind.worker is not None:
            conn.exec_driver_sql("SELECT set_config('role', %s, true)", (kind.worker,))
        if name is not None:
            conn.exec_driver_sql("SELECT set_config('priceintel.tenant', %s, true)", (name,))
        return
    if name is None:
        return
    conn.exec_driver_sql(
        "SELECT set_config('priceintel.tenant', %s, true), set_config('priceintel.tenant_token', %s, true)",
        (name, token or token_for(name, _secret())),
    )


def install(engine: sa.Engine) -> sa.Engine:
    """Set the tenant (and the worker role for the owner) at the start of every transaction of engine."""
    if not event.contains(engine, "begin", _on_begin):
        event.listen(engine, "begin", _on_begin)
    return engine


# --- the tenants themselves (the owner's work, across tenants) -------------------------------------------------


def _check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise TenantError(f"plan {plan!r}: use one of {', '.join(PLANS)}")
    return plan


def isolated(engine: sa.Engine) -> bool:
    """Whether the owner's work is held to one tenant: the worker role exists and the owner may switch to it
    (else the owner bypasses row-level security and sees every tenant: one tenant per database only)."""
    with as_owner(), engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT " + _MAY_BE_WORKER,
                {"w": worker_role_name(engine.url.database or "postgres")},
            ).scalar()
        )


def _require_isolation(engine: sa.Engine) -> None:
    if not isolated(engine):
        raise TenantError(
            "this database has no worker role (the owner may not create roles), so its owner's work would see "
            "every tenant: it holds one tenant only. Give the owner CREATEROLE and run `priceintel db migrate`."
        )


def _insert(conn: sa.Connection, name: str, plan: str, token: str, default: bool = False) -> None:
    conn.execute(
        sa.text("INSERT INTO tenant (name, plan, is_default, token_hash) VALUES (:n, :p, :d, :h)"),
        {"n": name, "p": plan, "d": default, "h": _token_hash(token)},
    )


def add_tenant(
    engine: sa.Engine, name: str, plan: str = "free", secret: str | None = None, default: bool = False
) -> None:
    """Add tenant `name` on `plan` (TenantError when it exists); default=True makes it the database's default."""
    check_name(name)
    _check_plan(plan)
    _require_isolation(engine)
    token = token_for(name, secret or _secret())
    with as_owner(), engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM tenant WHERE name = :n"), {"n": name}).first()
        if exists:
            raise TenantError(f"tenant {name!r} exists already")
        if default:
            _clear_default(conn)
        _insert(conn, name, plan, token, default)


def _clear_default(conn: sa.Connection) -> None:
    """No tenant is the default, before one becomes it: ux_tenant_default is checked row by row, in the heap's
    order, so one statement that sets the new default and clears the old one can fail on it."""
    conn.execute(sa.text("UPDATE tenant SET is_default = false WHERE is_default"))


def ensure_tenant(engine: sa.Engine, name: str, plan: str = "free", default_if_unused: bool = False) -> bool:
    """Make sure tenant `name` exists (True when it was added). default_if_unused=True also makes it the
    database's default when the default tenant holds no products and no prices yet (a fresh database, where
    the demo's tenant then is what `priceintel summary`, the lab and `users add` see)."""
    check_name(name)
    with as_owner(), engine.begin() as conn:
        found = conn.execute(sa.text("SELECT is_default FROM tenant WHERE name = :n"), {"n": name}).first()
        if found is None:
            _require_isolation(engine)
            _insert(conn, name, _check_plan(plan), token_for(name, _secret()))
        if default_if_unused and not (found and found.is_default):
            unused = conn.execute(
                sa.text("""SELECT NOT EXISTS (SELECT 1 FROM dim_product p JOIN tenant t USING (tenant_id)
                                               WHERE t.is_default)
                              AND NOT EXISTS (SELECT 1 FROM fact_price f JOIN tenant t USING (tenant_id)
                                               WHERE t.is_default)""")
            ).scalar()
            if unused:
                _clear_default(conn)
                conn.execute(sa.text("UPDATE tenant SET is_default = true WHERE name = :n"), {"n": name})
    return found is None


def set_plan(engine: sa.Engine, name: str, plan: str) -> None:
    """Move tenant `name` to another plan."""
    _check_plan(plan)
    with as_owner(), engine.begin() as conn:
        n = conn.execute(sa.text("UPDATE tenant SET plan = :p WHERE name = :n"), {"p": plan, "n": name}).rowcount
    if not n:
        raise TenantError(f"no tenant {name!r}")


def sync_tokens(engine: sa.Engine, secret: str | None = None) -> int:
    """Store the hash of every tenant's token under `secret` (the installation's by default): after the secret
    changed, before serving the apps or the API. Returns how many tenants there are."""
    secret = secret or _secret()
    with as_owner(), engine.begin() as conn:
        names = [r[0] for r in conn.execute(sa.text("SELECT name FROM tenant"))]
        for name in names:
            conn.execute(
                sa.text("UPDATE tenant SET token_hash = :h WHERE name = :n AND token_hash IS DISTINCT FROM :h"),
                {"h": _token_hash(token_for(name, secret)), "n": name},
            )
    return len(names)


def list_tenants(engine: sa.Engine) -> pd.DataFrame:
    """name, plan, is_default, created_at and how many products, listings, users and API keys each has."""
    with as_owner(), engine.connect() as conn:
        return pd.read_sql(
            sa.text("""
            SELECT t.name, t.plan, t.is_default, t.created_at,
                   (SELECT count(*) FROM dim_product x WHERE x.tenant_id = t.tenant_id) AS products,
                   (SELECT count(*) FROM dim_listing x WHERE x.tenant_id = t.tenant_id) AS listings,
                   (SELECT count(*) FROM app_user x WHERE x.tenant_id = t.tenant_id) AS users,
                   (SELECT count(*) FROM api_key x WHERE x.tenant_id = t.tenant_id AND x.revoked_at IS NULL)
                       AS api_keys
            FROM tenant t ORDER BY t.name"""),
            conn,
        )


def default_tenant(engine: sa.Engine) -> str:
    """The name of the database's default tenant."""
    with as_owner(), engine.connect() as conn:
        return conn.execute(sa.text("SELECT name FROM tenant WHERE is_default")).scalar() or DEFAULT


def require(engine: sa.Engine, name: str) -> str:
    """`name` when it is an existing tenant, else TenantError saying how to add it."""
    check_name(name)
    with as_owner(), engine.connect() as conn:
        if conn.execute(sa.text("SELECT 1 FROM tenant WHERE name = :n"), {"n": name}).first() is None:
            raise TenantError(f"no tenant {name!r}: add it with `priceintel tenants add {name}`")
    return name


def ready(engine: sa.Engine) -> bool:
    """Whether the database has tenants (migrated to 0014 or later)."""
    with as_owner(), engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT to_regclass('public.tenant') IS NOT NULL")).scalar())
