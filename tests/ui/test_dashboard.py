"""The outcome dashboard in a real browser, over two adapter versions and a segment that
got worse after the switch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chat_service.server import BackgroundServer
from core.crud.adapters import switch_active
from core.crud.conversations import append_message, start_conversation
from core.db import session_scope
from core.models import AdapterVersion, ConversationStatus, Role, utcnow
from engines.embedded import EmbeddedEngine
from supportloop.app import build_app
from tests.adapters import register_random_adapter
from tests.conftest import free_port
from tests.ui.conftest import Site, screenshot, setup_tenant, sign_in, ui_settings


@pytest.fixture
def product(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    """The whole product app (the dashboard is mounted by the composition root)."""
    settings = ui_settings(tmp_path, free_port(), analytics_drift_min_conversations=5)
    with BackgroundServer(settings, build_app(settings, engine=engine)) as server:
        yield server


def history(server: BackgroundServer, site: Site, tmp_path: Path, model_dir: Path) -> list[str]:
    """Ten days: v1 serves days 9-6 ago, v2 days 4-0; German chats resolve far less on v2."""
    tenant = setup_tenant(server, site)
    assert tenant.id is not None
    now = utcnow()
    names = []
    with session_scope(server.app.state.services.db) as session:
        for n, days_ago in ((1, 10), (2, 5)):
            name = f"acme-dash-v{n}-{now.timestamp():.0f}"
            version = register_random_adapter(
                session, model_dir, tmp_path, tenant_id=tenant.id, name=name, seed=n
            )
            assert version.id is not None
            switch_active(session=session, tenant_id=tenant.id, adapter_id=version.id)
            version.activated_at = now - timedelta(days=days_ago)
            session.add(version)
            names.append(name)
        v1, v2 = (session.get(AdapterVersion, i) for i in (1, 2))
        assert v1 is not None and v2 is not None
        for days_ago in (9, 8, 7, 6, 4, 3, 2, 1):
            adapter = v1 if days_ago > 5 else v2
            for language in ("en", "de"):
                for i in range(2):
                    conversation, _ = start_conversation(session=session, tenant_id=tenant.id)
                    start = now - timedelta(days=days_ago, minutes=i)
                    conversation.created_at = start
                    conversation.language = language
                    for role, text, s in (
                        (Role.CUSTOMER, "Where is my order?", 0),
                        (Role.BOT, "On its way!", 3),
                    ):
                        append_message(
                            session=session,
                            conversation=conversation,
                            role=role,
                            text=text,
                            sent_at=start + timedelta(seconds=s),
                            adapter_version_id=adapter.id if role == Role.BOT else None,
                        )
                    worse = language == "de" and adapter is v2 and (days_ago + i) % 4
                    if not worse:
                        conversation.status = ConversationStatus.RESOLVED
                        conversation.resolved_at = start + timedelta(minutes=2)
                        conversation.csat = 5 if language == "en" else 4
                    session.add(conversation)
    return names


def test_the_dashboard_charts_outcomes_by_version_and_flags_the_worse_segment(
    browser: Any, product: BackgroundServer, site: Site, tmp_path: Path, model_dir: Path
) -> None:
    v1, v2 = history(product, site, tmp_path, model_dir)
    page = sign_in(browser, product)
    page.goto(f"{product.http_url}/console/dashboard")
    page.locator("body[data-loaded=true]").wait_for()
    assert page.locator("#charts svg").count() == 8
    assert page.get_by_text(f"→ {v2}").count() == 8  # the switch marked on every chart
    drift = page.locator("#drift li").all_inner_texts()
    assert any(t.startswith("language=de: resolution_rate") for t in drift), drift
    assert not any(t.startswith("language=en") for t in drift)
    adapters = page.locator("#adapters td:first-child").all_inner_texts()
    assert v1 in adapters and v2 in adapters
    assert page.locator("#cards .card").first.inner_text().startswith("32")  # conversations
    screenshot(page, "dashboard")
