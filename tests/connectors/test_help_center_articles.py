"""Help-center articles from Zendesk Guide, Intercom and Freshdesk into the knowledge base, against local
fakes: HTML kept as headings and tables, later runs read only what changed, unpublished
articles removed, and the bot grounds its answers in them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine

from connectors.errors import SyncError
from connectors.help_center import sync_articles
from core.crud import knowledge as store
from core.db import session_scope
from core.settings import KnowledgeConfig, Settings
from knowledge import KnowledgeBase, default_embeddings
from tests.conftest import free_port, make_settings
from tests.connectors.fake_help_centers import (
    TOKEN,
    FakeFreshdeskSolutions,
    FakeIntercomArticles,
    FakeZendeskGuide,
)
from tests.connectors.fake_zendesk import running
from tests.factories import make_tenant

FEES = (
    "<h1>Delivery fees</h1><p>What delivery costs.</p><h2>Fees</h2>"
    "<table><tr><th>Subtotal</th><th>Fee</th></tr><tr><td>Under $25</td><td>$3.49</td></tr>"
    "<tr><td>$25 or more</td><td>Free</td></tr></table>"
)


def configured(tmp_path: Path, db_url: str, provider: str, port: int) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        connector_credentials={
            f"acme/{provider}": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}
        },
    )


def documents(db: DbEngine, tenant_id: int) -> dict[str, str]:
    with session_scope(db) as session:
        return {
            d.doc_id: d.body for d in store.list_documents(session=session, tenant_id=tenant_id)
        }


def test_zendesk_guide_articles_sync_incrementally(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    tenant, _ = make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "zendesk", port)
    fake = FakeZendeskGuide(page_size=2)
    fake.put(1, "Delivery fees", FEES, updated=100)
    fake.put(2, "Pickup", "<p>Pickup orders wait 30 minutes on the shelf.</p>", updated=110)
    fake.put(3, "Draft", "<p>Not ready</p>", updated=120, draft=True)
    with running(fake.app, port):
        first = sync_articles(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
        assert first.pages == 2
        assert sorted(first.knowledge.added) == ["zendesk-1", "zendesk-2"]
        stored = documents(db, tenant.id)  # type: ignore[arg-type]
        assert "## Fees" in stored["zendesk-1"] and "| Under $25 | $3.49 |" in stored["zendesk-1"]

        fake.put(2, "Pickup", "<p>Pickup orders wait 45 minutes on the shelf.</p>", updated=130)
        fake.put(1, "Delivery fees", FEES, updated=140, draft=True)  # unpublished
        second = sync_articles(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    assert fake.requests == [0, 110, 120]  # the second run continued from the last end_time
    assert second.knowledge.changed == ["zendesk-2"] and second.knowledge.removed == ["zendesk-1"]
    assert sorted(documents(db, tenant.id)) == ["zendesk-2"]  # type: ignore[arg-type]

    kb = KnowledgeBase(db, KnowledgeConfig(), default_embeddings())
    grounding = kb.ground(tenant.id, ["how long do you keep my pickup order?"])  # type: ignore[arg-type]
    assert grounding.answerable
    assert grounding.sources[0].url == "https://help.acme.test/hc/en-us/articles/2"


def test_intercom_articles_walk_every_page_and_drop_what_is_gone(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    tenant, _ = make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "intercom", port)
    fake = FakeIntercomArticles(per_page=2)
    fake.put("11", "Delivery fees", FEES)
    fake.put("12", "Wi-Fi", "<p>Join CoffeeGuest.</p>")
    fake.put("13", "Gift cards", "<p>Gift cards never expire.</p>")
    fake.put("14", "Secret plans", "<p>Draft</p>", state="draft")
    with running(fake.app, port):
        first = sync_articles(db=db, settings=settings, provider="intercom", tenant_slug="acme")
        assert first.pages == 2
        assert sorted(first.knowledge.added) == ["intercom-11", "intercom-12", "intercom-13"]
        del fake.articles["12"]
        second = sync_articles(db=db, settings=settings, provider="intercom", tenant_slug="acme")
    assert second.knowledge.removed == ["intercom-12"]
    assert sorted(second.knowledge.unchanged) == ["intercom-11", "intercom-13"]
    assert second.knowledge.chunks == 0  # nothing re-embedded
    assert sorted(documents(db, tenant.id)) == ["intercom-11", "intercom-13"]  # type: ignore[arg-type]


def test_an_unknown_provider_or_missing_credentials_are_named(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    settings = make_settings(tmp_path, db_url)
    with pytest.raises(SyncError, match="not available for 'hubspot'"):
        sync_articles(db=db, settings=settings, provider="hubspot", tenant_slug="acme")
    with pytest.raises(SyncError, match="no zendesk API credentials configured for acme"):
        sync_articles(db=db, settings=settings, provider="zendesk", tenant_slug="acme")


def test_freshdesk_solutions_walk_categories_and_folders(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    tenant, _ = make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "freshdesk", port)
    fake = FakeFreshdeskSolutions(TOKEN)
    fake.put(1, 10, 100, "Delivery fees", FEES)
    fake.put(1, 11, 101, "Pickup", "<p>Pickup orders wait 30 minutes.</p>")
    fake.put(2, 20, 200, "Unpublished", "<p>Draft</p>", status=1)
    with running(fake.app, port):
        first = sync_articles(db=db, settings=settings, provider="freshdesk", tenant_slug="acme")
        assert first.pages == 3  # one page per folder
        assert sorted(first.knowledge.added) == ["freshdesk-100", "freshdesk-101"]
        fake.tree[1][11].clear()  # the pickup article was deleted
        fake.put(2, 20, 200, "Gift cards", "<p>Gift cards never expire.</p>")  # published now
        second = sync_articles(db=db, settings=settings, provider="freshdesk", tenant_slug="acme")
    assert second.knowledge.added == ["freshdesk-200"]
    assert second.knowledge.removed == ["freshdesk-101"]
    assert sorted(documents(db, tenant.id)) == ["freshdesk-100", "freshdesk-200"]  # type: ignore[arg-type]
