"""The database a scenario runs on: a fresh SQLite file or a fresh PostgreSQL database (from
SUPPORTLOOP_TEST_POSTGRES_URL, as for the tests), migrated, with the scenario's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.databases import fresh_database
from core.crud.agents import create_agent
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.models import BotMode

TENANT = "chaos"
WEBHOOK_SECRET = "chaos-webhook-secret"
AGENT_EMAIL = "agent@chaos.example"
AGENT_PASSWORD = "chaos-agent-password"


@contextmanager
def database(backend: str, bot_mode: BotMode = BotMode.OFF) -> Iterator[str]:
    """A fresh, migrated database with the scenario tenant and one agent; yields its URL."""
    with fresh_database(backend) as url:
        db = create_db_engine(url)
        upgrade_database(db)
        with session_scope(db) as session:
            tenant, _ = create_tenant(session=session, slug=TENANT, bot_mode=bot_mode)
            assert tenant.id is not None
            create_agent(
                session=session,
                tenant_id=tenant.id,
                email=AGENT_EMAIL,
                password=AGENT_PASSWORD,
                display_name="Chaos Agent",
            )
        db.dispose()
        yield url


def webhook_settings() -> dict[str, str]:
    """Server settings that accept signed Zendesk deliveries for the scenario tenant."""
    return {"connector_secrets": f'{{"{TENANT}/zendesk": ["{WEBHOOK_SECRET}"]}}'}
