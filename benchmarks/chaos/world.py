"""The database a scenario runs on: a fresh SQLite file or a fresh PostgreSQL database (from
SUPPORTLOOP_TEST_POSTGRES_URL, as for the tests), migrated, with the scenario's tenant."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from benchmarks.databases import fresh_database
from core.crud.agents import create_agent
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.models import BotMode

TENANT = "chaos"
WEBHOOK_SECRET = "chaos-webhook-secret"
AGENT_PASSWORD = "chaos-agent-password"


def agent_email(tenant: str) -> str:
    return f"agent@{tenant}.example"


AGENT_EMAIL = agent_email(TENANT)


def add_tenants(url: str, tenants: Mapping[str, BotMode], password: str = AGENT_PASSWORD) -> None:
    """Migrate the database at ``url`` and add each tenant with one agent (agent_email)."""
    db = create_db_engine(url)
    upgrade_database(db)
    with session_scope(db) as session:
        for slug, bot_mode in tenants.items():
            tenant, _ = create_tenant(session=session, slug=slug, bot_mode=bot_mode)
            assert tenant.id is not None
            create_agent(
                session=session,
                tenant_id=tenant.id,
                email=agent_email(slug),
                password=password,
                display_name=f"{slug.title()} Agent",
            )
    db.dispose()


@contextmanager
def database(backend: str, bot_mode: BotMode = BotMode.OFF) -> Iterator[str]:
    """A fresh, migrated database with the scenario tenant and one agent; yields its URL."""
    with fresh_database(backend) as url:
        add_tenants(url, {TENANT: bot_mode})
        yield url


def webhook_settings() -> dict[str, str]:
    """Server settings that accept signed Zendesk deliveries for the scenario tenant."""
    return {"connector_secrets": f'{{"{TENANT}/zendesk": ["{WEBHOOK_SECRET}"]}}'}
