"""Who uses this app kernel: the signed-in user Voila launched it for, and what that user may do.

`priceintel apps` starts Voila with `login.prelaunch_hook`, which puts one first cell into every app notebook it
launches: `session.sign_in_kernel(NAME, …, tenant=T)` with the name and tenant of the user whose request starts the
kernel. The kernel then works in that tenant only (`db.tenancy.bind`: every query of the app role proves it and
row-level security keeps the rest out). The apps then record that name beside every change (`label`: `user:NAME`)
and refuse changes to a viewer (`may_change`, the role read from the database at the moment of the change, so a
lowered role applies at once). A kernel started another way (a notebook in JupyterLab, a test) has no user: its
changes are recorded as `notebook` and allowed (it runs with the database access it was given). An app kernel whose
user signed out, changed password or was removed since it started may change nothing.

The role is enforced in the kernel's code; a browser may send its app kernel only the widgets' messages, never
code to run (`MappingKernelManager.allowed_message_types` in the apps' voila.py), so it cannot lift the check.
"""

from __future__ import annotations

import os

import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.apps import auth
from priceintel.db import tenancy

_USER: list[str] = []
#: the user's row id and session version when the kernel was started (a sign-out or a new password ends them)
_SESSION: list[auth.Session] = []
#: set in the Voila server's environment (its voila.py), so inherited by every app kernel: a kernel that has it
#: but no signed-in user may change nothing
APP_KERNEL_ENV = "PRICEINTEL_APP_KERNEL"


def sign_in_kernel(
    name: str, user_id: int | None = None, version: int | None = None, tenant: str | None = None
) -> None:
    """This kernel serves user `name` of `tenant` under session (`user_id`, `version`) (called once, by the
    cell the prelaunch hook adds)."""
    auth.check_username(name)
    _USER[:] = [name]
    _SESSION[:] = [auth.Session(int(user_id), int(version))] if user_id is not None and version is not None else []
    tenancy.bind(tenant)


def user() -> str | None:
    """The kernel's user, None outside a Voila app."""
    return _USER[0] if _USER else None


def label() -> str:
    """Who makes a change from this kernel, as stored beside it."""
    name = user()
    return f"user:{name}" if name else "notebook"


def may_change(engine: sa.Engine) -> str | None:
    """None when this kernel's user may change data (admin, analyst; or no app user), else the reason."""
    name = user()
    if name is None:
        return "this app has no signed-in user: reload it after signing in" if os.environ.get(APP_KERNEL_ENV) else None
    account = auth.account_of(engine, name)
    if account is None:
        return f"user {name} no longer exists: sign in again"
    if _SESSION and (account.user_id, account.version) != tuple(_SESSION[0]):
        return f"the session of {name} has ended (signed out or a new password): sign in again and reload the app"
    if account.role == "viewer":
        return f"{name} is a viewer: viewers may look but not change anything (ask an admin for the analyst role)"
    return None


def require_change(engine: sa.Engine) -> None:
    """PriceIntelError saying why, when this kernel's user may not change data (`may_change`)."""
    refused = may_change(engine)
    if refused:
        raise PriceIntelError(refused)
