"""App users: argon2id password hashes in the `app_user` table (never plain text).

`priceintel users add NAME [--tenant T]` stores a user of a tenant (`db.tenancy`; user names are unique across
tenants, so a sign-in names no tenant: every lookup by name first asks the database which tenant the user is
in, then works in that tenant, under its row-level security). The Voila apps (see priceintel.apps.login) only
answer to a logged-in user. Each user has a session version (migration 0012): a login cookie carries the user's
id and the version it was issued under, and `end_sessions` (sign-out), a new password and removal end every
open session of that user at once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import NamedTuple

import pandas as pd
import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.db import tenancy

#: what a username may contain, matched against the WHOLE name (also enforced by the table's CHECK constraint)
USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
#: shortest password accepted when adding a user
MIN_PASSWORD = 8
#: what a user may do (migration 0013): admin everything incl. users and API keys, analyst reads and data
#: actions (review matches, alerts, watches, imports), viewer reads only
ROLES = ("admin", "analyst", "viewer")
#: the role of a user added without one
DEFAULT_ROLE = "analyst"


class AuthError(PriceIntelError):
    """A bad username or password, or a missing user."""


class Session(NamedTuple):
    """What a login cookie must match: the user's row id (never reused) and session version."""

    user_id: int
    version: int


class Account(NamedTuple):
    """A user as the API sees one: row id, name, role, the session version tokens must carry, the tenant."""

    user_id: int
    username: str
    role: str
    version: int
    tenant: str = tenancy.DEFAULT


def check_role(role: str) -> str:
    """`role` if it is one of ROLES, else AuthError naming them."""
    if role not in ROLES:
        raise AuthError(f"role {role!r}: use one of {', '.join(ROLES)}")
    return role


class CheckCounter:
    """How many argon2 password verifications this process ran, how many run now and the most at once."""

    def __init__(self) -> None:
        self.total = self.running = self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> CheckCounter:
        with self._lock:
            self.total += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.running -= 1

    def snapshot(self) -> dict[str, int]:
        """{"total", "running", "peak"} at this moment."""
        with self._lock:
            return {"total": self.total, "running": self.running, "peak": self.peak}


#: every argon2 verification of this process (sign-ins and the timing-equal refusals of unknown users)
PASSWORD_CHECKS = CheckCounter()


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted; the hash records its own parameters)."""
    return _hasher().hash(password)


def check_username(name: str) -> str:
    """`name` if it is a valid username, else AuthError naming the rule."""
    if not valid_username(name):
        raise AuthError(f"username {name!r}: use 1-64 letters, digits or . _ @ -")
    return name


def valid_username(name: str | None) -> bool:
    """Whether `name` is a whole valid username (no trailing newline or other extra character)."""
    return isinstance(name, str) and USERNAME_RE.fullmatch(name) is not None


def check_password(password: str) -> str:
    """`password` if long enough, else AuthError."""
    if len(password or "") < MIN_PASSWORD:
        raise AuthError(f"password: at least {MIN_PASSWORD} characters, please")
    return password


def tenant_of(engine: sa.Engine, name: str) -> str | None:
    """The tenant user `name` belongs to (None: no such user, or not a valid name)."""
    if not valid_username(name):
        return None
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT priceintel_user_tenant(:u)"), {"u": name}).scalar()


def _in_tenant_of(engine: sa.Engine, name: str):
    """A scope in the tenant of user `name`; AuthError when there is no such user."""
    tenant = tenant_of(engine, name)
    if tenant is None:
        raise AuthError(f"no user {name!r}")
    return tenancy.scope(tenant)


def add_user(
    engine: sa.Engine,
    name: str,
    password: str,
    replace: bool = False,
    role: str | None = None,
    tenant: str | None = None,
) -> bool:
    """Store user `name` of `tenant` (default: the current tenant) with a hashed password and a role
    (`DEFAULT_ROLE` for a new user without one); returns True when created, False when replaced.

    An existing user is an AuthError unless replace=True, which sets a new password (and the role when given)
    and, when the password differs from the old one, ends every open session of the user (the same password
    again keeps them). A user of another tenant is an AuthError: names are unique across tenants.
    """
    check_username(name)
    check_password(password)
    if role is not None:
        check_role(role)
    if tenant is not None:
        tenancy.check_name(tenant)
    owner = tenant_of(engine, name)
    wanted = tenant or tenancy.current()
    if owner is not None and wanted is not None and owner != wanted:
        raise AuthError(f"user {name!r} belongs to tenant {owner!r} (user names are unique across tenants)")
    digest = hash_password(password)
    with tenancy.scope(owner or tenant), engine.begin() as conn:
        old = conn.execute(
            sa.text("SELECT password_hash FROM app_user WHERE username = :u FOR UPDATE"), {"u": name}
        ).first()
        if old is not None and not replace:
            raise AuthError(f"user {name!r} already exists (remove it first, or use --replace)")
        bump = int(old is not None and not _matches(old.password_hash, password))
        conn.execute(
            sa.text(
                "INSERT INTO app_user (username, password_hash, role) VALUES (:u, :h, COALESCE(:r, :default)) "
                "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                "role = COALESCE(:r, app_user.role), session_version = app_user.session_version + :bump"
            ),
            {"u": name, "h": digest, "bump": bump, "r": role, "default": DEFAULT_ROLE},
        )
    return old is None


def set_role(engine: sa.Engine, name: str, role: str) -> None:
    """Give user `name` another role (AuthError for an unknown user or role); a lower role applies to the
    user's API tokens at once (they are checked against the stored role on every request)."""
    check_role(role)
    with _in_tenant_of(engine, name), engine.begin() as conn:
        n = conn.execute(sa.text("UPDATE app_user SET role = :r WHERE username = :u"), {"r": role, "u": name}).rowcount
    if not n:
        raise AuthError(f"no user {name!r}")


def _account(engine: sa.Engine, column: str, value: object) -> Account | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"""SELECT u.user_id, u.username, u.role, u.session_version, t.name AS tenant
                        FROM app_user u JOIN tenant t ON t.tenant_id = u.tenant_id WHERE u.{column} = :v"""),
            {"v": value},
        ).first()
    if row is None:
        return None
    return Account(int(row.user_id), row.username, row.role, int(row.session_version), row.tenant)


def account_by_id(engine: sa.Engine, user_id: int, tenant: str) -> Account | None:
    """The Account of the user of `tenant` with row id `user_id`, None when there is none (removed)."""
    with tenancy.scope(tenant):
        return _account(engine, "user_id", int(user_id))


def account_of(engine: sa.Engine, name: str) -> Account | None:
    """The Account of user `name`, None when there is no such user (or the name is invalid)."""
    tenant = tenant_of(engine, name)
    if tenant is None:
        return None
    with tenancy.scope(tenant):
        return _account(engine, "username", name)


def _matches(digest: str, password: str) -> bool:
    """Whether `password` is the one `digest` was made from (argon2; False for a malformed hash)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        with PASSWORD_CHECKS:
            return _hasher().verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def remove_user(engine: sa.Engine, name: str) -> None:
    """Delete user `name` (AuthError when there is none); the user's open sessions end with the row."""
    with _in_tenant_of(engine, name), engine.begin() as conn:
        n = conn.execute(sa.text("DELETE FROM app_user WHERE username = :u"), {"u": name}).rowcount
    if not n:
        raise AuthError(f"no user {name!r}")


def list_users(engine: sa.Engine) -> pd.DataFrame:
    """username, tenant, role, created_at, last_login_at of every user of every tenant (no hashes; the owner's)."""
    with tenancy.as_owner(), engine.connect() as conn:
        return pd.read_sql(
            sa.text("""SELECT u.username, t.name AS tenant, u.role, u.created_at, u.last_login_at
                       FROM app_user u JOIN tenant t ON t.tenant_id = u.tenant_id ORDER BY u.username"""),
            conn,
        )


def count_users(engine: sa.Engine) -> int:
    """How many users may log in (in every tenant; the owner's count)."""
    with tenancy.as_owner(), engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM app_user")).scalar_one())


def manage_users(
    engine: sa.Engine,
    action: str,
    name: str | None,
    password: Callable[[], str],
    replace: bool = False,
    role: str | None = None,
    tenant: str | None = None,
) -> str:
    """`priceintel users add | list | remove | role`: do it and return what to print. `password` is asked for
    the new password (after the name and role are checked); a new user joins `tenant` (default: the current)."""
    if action not in ("add", "remove", "role"):
        df = list_users(engine)
        return df.to_string(index=False) if len(df) else "no users: add one with `priceintel users add NAME`"
    if not name:
        raise PriceIntelError(f"users {action} needs a NAME")
    if action == "role":
        if role is None:
            raise PriceIntelError("users role needs --role " + " | ".join(ROLES))
        set_role(engine, name, role)
        return f"user {name} is now {role}"
    if action == "add":
        check_username(name)
        if role is not None:
            check_role(role)
        if tenant is not None:
            tenancy.check_name(tenant)
        created = add_user(engine, name, password(), replace=replace, role=role, tenant=tenant)
        account = account_of(engine, name)
        shown = [role or ("" if not created else DEFAULT_ROLE), f"tenant {account.tenant}" if account else ""]
        said = ", ".join(x for x in shown if x)
        return f"user {name} {'added' if created else 'password replaced'}" + (f" ({said})" if said else "")
    remove_user(engine, name)
    return f"user {name} removed"


def user_exists(engine: sa.Engine, name: str) -> bool:
    """Whether `name` is (still) a user."""
    return session_of(engine, name) is not None


def session_of(engine: sa.Engine, name: str) -> Session | None:
    """The current Session of user `name` (None when there is no such user)."""
    account = account_of(engine, name)
    return None if account is None else Session(account.user_id, account.version)


def end_sessions(engine: sa.Engine, name: str) -> bool:
    """Sign user `name` out everywhere: bump the session version so every cookie issued so far stops working.
    False when there is no such user."""
    tenant = tenant_of(engine, name)
    if tenant is None:
        return False
    with tenancy.scope(tenant), engine.begin() as conn:
        n = conn.execute(
            sa.text("UPDATE app_user SET session_version = session_version + 1 WHERE username = :u"), {"u": name}
        ).rowcount
    return bool(n)


def verify(engine: sa.Engine, name: str, password: str) -> bool:
    """True when `password` is `name`'s password (records the login, upgrades an outdated hash)."""
    return sign_in(engine, name, password) is not None


def sign_in(engine: sa.Engine, name: str, password: str) -> Session | None:
    """The user's Session when `password` is `name`'s password (records the login, upgrades an outdated hash),
    else None. Runs one argon2 verification (also for an unknown user, so the time does not tell which names
    exist); none for an invalid name or an empty password."""
    if not valid_username(name) or not password:
        return None
    tenant = tenant_of(engine, name)
    row = None
    if tenant is not None:
        with tenancy.scope(tenant), engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT user_id, password_hash, session_version FROM app_user WHERE username = :u"),
                {"u": name},
            ).first()
    if row is None:
        _matches(_dummy_hash(), password)  # spend the same time as a real check
        return None
    if not _matches(row.password_hash, password):
        return None
    hasher = _hasher()
    with tenancy.scope(tenant), engine.begin() as conn:
        params = {"u": name}
        sql = "UPDATE app_user SET last_login_at = now()"
        if hasher.check_needs_rehash(row.password_hash):
            sql += ", password_hash = :h"
            params["h"] = hasher.hash(password)
        conn.execute(sa.text(sql + " WHERE username = :u"), params)
    return Session(int(row.user_id), int(row.session_version))


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash of a random password, made once (for timing-equal refusals of unknown users)."""
    if not _DUMMY:
        import secrets

        _DUMMY.append(hash_password(secrets.token_hex(16)))
    return _DUMMY[0]
