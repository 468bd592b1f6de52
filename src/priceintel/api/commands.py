"""Command-line handlers of who may do what: `tenants add|list|plan`, `users add|list|remove|role` and
`keys create|list|revoke`, each with `--tenant T` where it acts in one tenant (`db.tenancy`).

`add_parsers(sub)` adds the subcommands to the `priceintel` parser; a handler prints one-line messages and
returns 0; a refusal raises a PriceIntelError, which `priceintel` prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import sqlalchemy as sa

from priceintel import PriceIntelError
from priceintel.api import keys
from priceintel.api.principal import ROLE_LEVEL
from priceintel.apps import auth
from priceintel.db import engine as db_engine
from priceintel.db import migrate, tenancy, usage

__all__ = ["add_parsers", "owner_engine"]


def _print(msg: str = "") -> None:
    print(msg, flush=True)


def owner_engine(tenant: str | None = None) -> sa.Engine:
    """The system of record, migrated to head; with `tenant`, checked to exist (TenantError naming it)."""
    migrate.upgrade()
    engine = db_engine.get_engine()
    if tenant is not None:
        tenancy.require(engine, tenant)
    return engine


def cmd_tenants(args: argparse.Namespace) -> int:
    """add NAME [--plan P] [--default] | list | plan NAME --plan P | usage NAME [--days N]."""
    engine = owner_engine()
    if args.action == "list":
        _print(tenancy.list_tenants(engine).to_string(index=False))
        return 0
    if not args.name:
        raise PriceIntelError(f"tenants {args.action} needs a NAME")
    if args.action == "usage":
        with tenancy.scope(tenancy.require(engine, args.name)):
            plan = usage.plan_of(engine)
            limits = ", ".join(
                f"{k.replace('_', ' ')} {'no limit' if v is None else f'{v:,g}'}" for k, v in plan.limits().items()
            )
            _print(f"tenant {args.name}: plan {plan.name} ({limits})")
            df = usage.usage_frame(engine, args.days)
        _print(df.to_string(index=False) if len(df) else f"no usage in the last {args.days} days")
        return 0
    if args.action == "add":
        tenancy.add_tenant(engine, args.name, plan=args.plan or "free", default=args.default)
        _print(f"tenant {args.name} added ({args.plan or 'free'}{', the default' if args.default else ''})")
        _print(f"next: priceintel users add NAME --tenant {args.name}")
        _print(f"      priceintel keys create NAME --tenant {args.name}")
        return 0
    if not args.plan:
        raise PriceIntelError("tenants plan needs --plan " + " | ".join(tenancy.PLANS))
    tenancy.set_plan(engine, args.name, args.plan)
    _print(f"tenant {args.name} is now on the {args.plan} plan")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """create | list | revoke API keys (of --tenant, default the current tenant)."""
    engine = owner_engine(args.tenant)
    with tenancy.scope(args.tenant):
        if args.action == "list":
            df = keys.list_keys(engine)
            none = "no API keys: create one with `priceintel keys create NAME`"
            _print(df.to_string(index=False) if len(df) else none)
            return 0
        if not args.name:
            raise PriceIntelError(f"keys {args.action} needs a {'NAME' if args.action == 'create' else 'KEY_ID'}")
        if args.action == "create":
            key_id, key = keys.create_key(engine, args.name, args.scope, created_by="cli")
            where = args.tenant or tenancy.current() or tenancy.default_tenant(engine)
            _print(f"API key {key_id} ({args.scope}, tenant {where}) for {args.name}; shown only now, keep it:")
            _print(key)
            return 0
        changed = keys.revoke_key(engine, args.name, revoked_by="cli")
    _print(f"API key {args.name} {'revoked' if changed else 'was already revoked'}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line on stdin with --password-stdin, else typed twice at a prompt."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise PriceIntelError("users add: the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    """add | list | remove | role users of the apps and the API (argon2 hashes in app_user). A user given a
    lower role (or removed) loses the API keys they made that reach above it."""
    engine = owner_engine(args.tenant)
    tenant = auth.tenant_of(engine, args.name) if args.action in ("role", "remove") and args.name else None
    _print(
        auth.manage_users(
            engine,
            args.action,
            args.name,
            lambda: _read_password(args),
            replace=args.replace,
            role=args.role,
            tenant=args.tenant,
        )
    )
    if tenant is not None:
        keep = ROLE_LEVEL[args.role] if args.action == "role" else None
        with tenancy.scope(tenant):
            revoked = keys.revoke_keys_of(engine, args.name, keep, revoked_by="cli")
        if revoked:
            _print(f"revoked {len(revoked)} API key(s) {args.name} made beyond the new access: {', '.join(revoked)}")
    return 0


def _tenant_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--tenant",
        default=None,
        help=f"{what} (default: $PRICEINTEL_TENANT, else the database's default tenant; see `priceintel tenants list`)",
    )


def add_parsers(sub) -> None:
    """Add `tenants`, `keys` and `users` to the `priceintel` subcommands."""
    t = sub.add_parser(
        "tenants", help="tenants (isolated by row-level security): add NAME | list | plan NAME | usage NAME"
    )
    t.add_argument("action", choices=["add", "list", "plan", "usage"])
    t.add_argument("name", nargs="?", default=None)
    t.add_argument("--plan", choices=list(tenancy.PLANS), default=None, help="free (default), pro or enterprise")
    t.add_argument("--default", action="store_true", help="add: make it the database's default tenant")
    t.add_argument("--days", type=int, default=30, help="usage: how many days back (default 30)")
    t.set_defaults(func=cmd_tenants)

    ky = sub.add_parser("keys", help="REST API keys: create NAME [--scope] | list | revoke KEY_ID")
    ky.add_argument("action", choices=["create", "list", "revoke"])
    ky.add_argument("name", nargs="?", default=None, help="create: a name for the key; revoke: its key id")
    ky.add_argument(
        "--scope",
        choices=list(keys.SCOPES),
        default="read",
        help="read (GET only; default), write (also data actions) or admin (also API keys)",
    )
    _tenant_option(ky, "the tenant whose data the key reaches")
    ky.set_defaults(func=cmd_keys)

    u = sub.add_parser(
        "users", help="who may open the apps and sign in to the API: add NAME | list | remove NAME | role NAME"
    )
    u.add_argument("action", choices=["add", "list", "remove", "role"])
    u.add_argument("name", nargs="?", default=None)
    u.add_argument(
        "--role",
        choices=list(auth.ROLES),
        default=None,
        help="add / role: admin (also users and API keys), analyst (reads and data actions; default for a new "
        "user) or viewer (reads only)",
    )
    _tenant_option(u, "add: the tenant the new user belongs to")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    u.add_argument("--replace", action="store_true", help="add: set a new password for an existing user")
    u.set_defaults(func=cmd_users)
