"""App users: argon2id password hashes in the `app_user` table (never plain text).

`priceintel users add NAME` stores a user; the Voila apps (see priceintel.apps.login) only answer to a
logged-in user.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa

from priceintel import PriceIntelError

#: what a username may contain (also enforced by the table's CHECK constraint)
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: shortest password accepted when adding a user
MIN_PASSWORD = 8


class AuthError(PriceIntelError):
    """A bad username or password, or a missing user."""


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted; the hash records its own parameters)."""
    return _hasher().hash(password)


def check_username(name: str) -> str:
    """`name` if it is a valid username, else AuthError naming the rule."""
    if not USERNAME_RE.match(name or ""):
        raise AuthError(f"username {name!r}: use 1-64 letters, digits or . _ @ -")
    return name


def check_password(password: str) -> str:
    """`password` if long enough, else AuthError."""
    if len(password or "") < MIN_PASSWORD:
        raise AuthError(f"password: at least {MIN_PASSWORD} characters, please")
    return password


def add_user(engine: sa.Engine, name: str, password: str, replace: bool = False) -> bool:
    """Store user `name` with a hashed password; returns True when created, False when replaced.

    An existing user is an AuthError unless replace=True (which sets a new password).
    """
    check_username(name)
    check_password(password)
    digest = hash_password(password)
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM app_user WHERE username = :u"), {"u": name}).first()
        if exists and not replace:
            raise AuthError(f"user {name!r} already exists (remove it first, or use --replace)")
        conn.execute(
            sa.text(
                "INSERT INTO app_user (username, password_hash) VALUES (:u, :h) "
                "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash"
            ),
            {"u": name, "h": digest},
        )
    return not exists


def remove_user(engine: sa.Engine, name: str) -> None:
    """Delete user `name` (AuthError when there is none)."""
    with engine.begin() as conn:
        n = conn.execute(sa.text("DELETE FROM app_user WHERE username = :u"), {"u": name}).rowcount
    if not n:
        raise AuthError(f"no user {name!r}")


def list_users(engine: sa.Engine) -> pd.DataFrame:
    """username, created_at, last_login_at of every user (no hashes)."""
    return pd.read_sql("SELECT username, created_at, last_login_at FROM app_user ORDER BY username", engine)


def count_users(engine: sa.Engine) -> int:
    """How many users may log in."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM app_user")).scalar_one())


def manage_users(
    engine: sa.Engine, action: str, name: str | None, password: Callable[[], str], replace: bool = False
) -> str:
    """`priceintel users add | list | remove`: do it and return what to print. `password` is asked for the new
    password (after the name is checked)."""
    if action not in ("add", "remove"):
        df = list_users(engine)
        return df.to_string(index=False) if len(df) else "no users: add one with `priceintel users add NAME`"
    if not name:
        raise PriceIntelError(f"users {action} needs a NAME")
    if action == "add":
        check_username(name)
        created = add_user(engine, name, password(), replace=replace)
        return f"user {name} {'added' if created else 'password replaced'}"
    remove_user(engine, name)
    return f"user {name} removed"


def user_exists(engine: sa.Engine, name: str) -> bool:
    """Whether `name` is (still) a user."""
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT 1 FROM app_user WHERE username = :u"), {"u": name}).first() is not None


def verify(engine: sa.Engine, name: str, password: str) -> bool:
    """True when `password` is `name`'s password (records the login, upgrades an outdated hash)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not USERNAME_RE.match(name or "") or not password:
        return False
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT password_hash FROM app_user WHERE username = :u"), {"u": name}).first()
    hasher = _hasher()
    if row is None:
        # spend the same time as a real check so the answer does not tell which usernames exist
        try:
            hasher.verify(_dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    with engine.begin() as conn:
        params = {"u": name}
        sql = "UPDATE app_user SET last_login_at = now()"
        if hasher.check_needs_rehash(row.password_hash):
            sql += ", password_hash = :h"
            params["h"] = hasher.hash(password)
        conn.execute(sa.text(sql + " WHERE username = :u"), params)
    return True


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash of a random password, made once (for timing-equal refusals of unknown users)."""
    if not _DUMMY:
        import secrets

        _DUMMY.append(hash_password(secrets.token_hex(16)))
    return _DUMMY[0]
