"""Bearer tokens from a password sign-in: HMAC-SHA256 JWTs, a short-lived access token and a refresh token.

A token names the user's row id, tenant and the session version it was issued under (`apps.auth`): signing out
of the apps, a new password or removal of the user ends every token at once, as it ends the apps' cookies. The
role is read from the database (in the token's tenant) on every request, never trusted from the token, so a
lowered role applies at once.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jwt

from priceintel import PriceIntelError, config
from priceintel.apps.auth import Account

ISSUER = "priceintel"
_ALGORITHM = "HS256"


class TokenError(PriceIntelError):
    """A token that is malformed, expired, of the wrong kind or not signed by this installation."""


class Claims(NamedTuple):
    """What a verified token says: the user's id and name, the session version, the kind and the tenant."""

    user_id: int
    username: str
    version: int
    kind: str
    tenant: str


def issue(account: Account, kind: str, settings: config.ApiSettings, now: float | None = None) -> tuple[str, int]:
    """(token, seconds it is valid) of kind "access" or "refresh" for a signed-in user."""
    lifetime = int(settings.access_minutes * 60 if kind == "access" else settings.refresh_hours * 3600)
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "sub": str(account.user_id),
        "name": account.username,
        "sv": account.version,
        "tid": account.tenant,
        "kind": kind,
        "iat": issued,
        "exp": issued + lifetime,
    }
    return jwt.encode(payload, settings.secret, algorithm=_ALGORITHM), lifetime


def verify(token: str, kind: str, settings: config.ApiSettings) -> Claims:
    """The Claims of a valid token of `kind`; TokenError saying what is wrong otherwise."""
    try:
        payload = jwt.decode(
            token,
            settings.secret,
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sv", "tid", "kind", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired: sign in again (POST /v1/auth/token) or refresh it") from None
    except jwt.InvalidTokenError:
        raise TokenError("the token is not valid: sign in again (POST /v1/auth/token)") from None
    if payload.get("kind") != kind:
        raise TokenError(f"a {payload.get('kind')} token was given where a {kind} token is needed")
    try:
        return Claims(int(payload["sub"]), str(payload.get("name", "")), int(payload["sv"]), kind, str(payload["tid"]))
    except (TypeError, ValueError):
        raise TokenError("the token is not valid: sign in again (POST /v1/auth/token)") from None
