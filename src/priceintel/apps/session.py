"""Who uses this app kernel: the signed-in user Voila launched it for, and what that user may do.

`priceintel apps` starts Voila with `login.prelaunch_hook`, which puts one first cell into every app notebook it
launches: `session.sign_in_kernel(NAME)` with the name of the user whose request starts the kernel. The apps
then record that name beside every change (`label`: `user:NAME`) and refuse changes to a viewer (`may_change`,
the role read from the database at the moment of the change, so a lowered role applies at once). A kernel
started another way (a notebook in JupyterLab, a test) has no user: its changes are recorded as `notebook`
and allowed (it runs with the database access it was given).
"""

from __future__ import annotations

import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.apps import auth

_USER: list[str] = []


def sign_in_kernel(name: str) -> None:
    """This kernel serves user `name` (called once, by the cell the prelaunch hook adds)."""
    auth.check_username(name)
    _USER[:] = [name]


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
        return None
    account = auth.account_of(engine, name)
    if account is None:
        return f"user {name} no longer exists: sign in again"
    if account.role == "viewer":
        return f"{name} is a viewer: viewers may look but not change anything (ask an admin for the analyst role)"
    return None


def require_change(engine: sa.Engine) -> None:
    """PriceIntelError saying why, when this kernel's user may not change data (`may_change`)."""
    refused = may_change(engine)
    if refused:
        raise PriceIntelError(refused)
