"""Tenants and console accounts: `tenant create|update`, `agent create`."""

from __future__ import annotations

from typing import Annotated

import typer

from core.crud.agents import create_agent
from core.crud.tenants import (
    api_keys,
    create_tenant,
    require_tenant,
    revoke_api_key,
    rotate_api_key,
    update_tenant,
)
from core.db import session_scope
from core.errors import DomainError
from core.models import BotMode
from supportloop.cli.terminal import TenantOption, console, database, failing_on

tenant_app = typer.Typer(help="Tenants.")
agent_app = typer.Typer(help="Console accounts of support agents.")

OriginOption = Annotated[list[str] | None, typer.Option("--origin", help="Allowed widget origin")]


@tenant_app.command("create")
def tenant_create(
    slug: str,
    origin: OriginOption = None,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    bot_mode: Annotated[BotMode, typer.Option(help="auto, assist or off")] = BotMode.AUTO,
) -> None:
    """Create a tenant and print its API key (shown only this once)."""
    with failing_on(DomainError), session_scope(database()) as session:
        _, api_key = create_tenant(
            session=session, slug=slug, name=name, allowed_origins=origin, bot_mode=bot_mode
        )
    typer.echo(api_key)


@tenant_app.command("update")
def tenant_update(
    slug: str,
    bot_mode: Annotated[BotMode | None, typer.Option(help="auto, assist or off")] = None,
    origin: OriginOption = None,
) -> None:
    """Switch a tenant's bot mode or its allowed widget origins (--origin replaces them)."""
    with failing_on(DomainError), session_scope(database()) as session:
        tenant = update_tenant(
            session=session, slug=slug, bot_mode=bot_mode, allowed_origins=origin
        )
        console.print(f"{slug}: bot mode {tenant.bot_mode}, origins {tenant.allowed_origins}")


@tenant_app.command("keys")
def tenant_keys(slug: str) -> None:
    """List the tenant's API keys (prefixes, created, revoked)."""
    with failing_on(DomainError), session_scope(database()) as session:
        for key in api_keys(session=session, slug=slug):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            console.print(f"{key.prefix}…  created {key.created_at:%Y-%m-%d %H:%M}  {state}")


@tenant_app.command("rotate-key")
def tenant_rotate_key(slug: str) -> None:
    """Issue a new API key and revoke every other one at once; prints the new key (shown
    only this once)."""
    with failing_on(DomainError), session_scope(database()) as session:
        key, revoked = rotate_api_key(session=session, slug=slug)
    typer.echo(key)
    console.print(f"revoked: {', '.join(k.prefix for k in revoked) or 'none'}", style="dim")


@tenant_app.command("revoke-key")
def tenant_revoke_key(slug: str, prefix: str) -> None:
    """Revoke one API key by its prefix (see `tenant keys`); it is refused at once."""
    with failing_on(DomainError), session_scope(database()) as session:
        key = revoke_api_key(session=session, slug=slug, prefix=prefix)
        console.print(f"{key.prefix}… revoked")


@agent_app.command("create")
def agent_create(
    email: str,
    tenant: TenantOption,
    name: Annotated[str, typer.Option(help="Name customers see")] = "",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SUPPORTLOOP_AGENT_PASSWORD",
            help="Asked for when not given (or set SUPPORTLOOP_AGENT_PASSWORD)",
        ),
    ] = "",
) -> None:
    """Create a console account for a support agent of a tenant."""
    with failing_on(DomainError), session_scope(database()) as session:
        tenant_id = require_tenant(session=session, slug=tenant).id
        assert tenant_id is not None
        agent = create_agent(
            session=session, tenant_id=tenant_id, email=email, password=password, display_name=name
        )
        console.print(f"agent {agent.email} ({agent.display_name}) can sign in at /console")
