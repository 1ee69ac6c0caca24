"""What must be true before the service listens on anything but loopback.

On 127.0.0.1 the defaults favour `make serve` working with no set-up. Bound to a public
address, the same defaults would be unsafe: a short admin token can be guessed, a tenant with
no origin allow-list lets any web page open chats in its name (and spend its model time), a
console cookie without Secure crosses plain HTTP, and the demo tenant is an open bot
anyone can use. `supportloop serve` refuses to start with any of these, saying what to set.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select

from core.db import read_scope
from core.models import Tenant
from core.settings import Settings

MIN_SECRET_BYTES = 32


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def exposure_problems(settings: Settings, db: DbEngine) -> list[str]:
    """Each unsafe setting with what to do about it; empty on loopback or when all is set."""
    if is_loopback(settings.host):
        return []
    problems = []
    for name, value, what in (
        ("SUPPORTLOOP_ADMIN_TOKEN", settings.admin_token, "turn the admin API off"),
        ("SUPPORTLOOP_SECRET_KEY", settings.secret_key, "have one generated into the var dir"),
        ("SUPPORTLOOP_METRICS_TOKEN", settings.metrics_token, "leave /metrics without slugs"),
    ):
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"{name} is {len(value.encode())} bytes; use at least {MIN_SECRET_BYTES} random "
                f"bytes (e.g. `openssl rand -hex 32`), or leave it empty to {what}."
            )
    if not settings.cookie_secure:
        problems.append(
            "SUPPORTLOOP_COOKIE_SECURE is off, so the console's session cookie would travel over "
            "plain HTTP; serve over HTTPS (a TLS proxy in front) and unset it."
        )
    if settings.demo_tenant:
        problems.append(
            f"the demo tenant {settings.demo_tenant!r} is on: an open bot for anyone who finds "
            "the page; set SUPPORTLOOP_DEMO_TENANT= (empty) when serving in public."
        )
    with read_scope(db) as session:
        unrestricted = sorted(
            t.slug
            for t in session.exec(select(Tenant)).all()
            if not t.allowed_origins and t.slug != settings.demo_tenant
        )
    for slug in unrestricted:
        problems.append(
            f"tenant {slug!r} accepts widget connections from any web page; list the sites "
            f"that embed it: `supportloop tenant update {slug} --origin https://shop.example`."
        )
    return problems
