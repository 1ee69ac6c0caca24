"""Who a widget visitor is, decided on the server.

Anonymous visitors get a visitor token the server signed (HS256 under the server key); it
names a random visitor id and the tenant it was issued for, so it cannot be replayed on
another tenant or forged. A tenant that knows its customer passes a JWT it signed (HS256,
its own secret from SUPPORTLOOP_WIDGET_JWT_SECRETS) and that customer is marked verified.
Nothing a client sends is trusted unless one of these signatures checks out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from core.errors import ForbiddenError
from core.models import utcnow

VISITOR_ISSUER = "supportloop"
VISITOR_SOURCE = "visitor"
JWT_SOURCE = "jwt"


class IdentityError(ForbiddenError):
    """A visitor or customer token that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Visitor:
    source: str  # VISITOR_SOURCE or JWT_SOURCE
    external_id: str
    verified: bool
    display_name: str = ""
    email: str | None = None
    tier: str | None = None


def issue_visitor_token(key: bytes, tenant_id: int, days: int) -> tuple[str, Visitor]:
    visitor_id = secrets.token_urlsafe(16)
    claims = {
        "iss": VISITOR_ISSUER,
        "tid": tenant_id,
        "vid": visitor_id,
        "exp": utcnow() + timedelta(days=days),
    }
    token = jwt.encode(claims, key, algorithm="HS256")
    return token, Visitor(VISITOR_SOURCE, visitor_id, verified=False)


def verify_visitor_token(key: bytes, token: str, tenant_id: int) -> Visitor:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            issuer=VISITOR_ISSUER,
            options={"require": ["exp", "iss", "tid", "vid"]},
        )
    except jwt.PyJWTError as exc:
        raise IdentityError(f"invalid visitor token: {exc}") from None
    if claims["tid"] != tenant_id:
        raise IdentityError("invalid visitor token: issued for another tenant")
    return Visitor(VISITOR_SOURCE, str(claims["vid"]), verified=False)


def verify_customer_jwt(token: str, tenant_secrets: list[str]) -> Visitor:
    """A JWT the tenant signed for its logged-in customer: ``sub`` (the tenant's own customer
    id) and ``exp`` are required, ``name``, ``email`` and ``tier`` are optional. Only HS256 is accepted,
    so an ``alg: none`` or public-key-confusion token never verifies. Several secrets allow
    rotation."""
    if not tenant_secrets:
        raise IdentityError("customer tokens are not enabled for this tenant")
    last_error: Exception | None = None
    for secret in tenant_secrets:
        try:
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.PyJWTError as exc:
            raise IdentityError(f"invalid customer token: {exc}") from None
        email = claims.get("email")
        return Visitor(
            JWT_SOURCE,
            str(claims["sub"])[:200],
            verified=True,
            display_name=str(claims.get("name", ""))[:200],
            email=str(email)[:320] if email else None,
            tier=str(claims["tier"])[:32] if claims.get("tier") else None,
        )
    raise IdentityError(f"invalid customer token: {last_error}")
