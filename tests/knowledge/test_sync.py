"""Re-adding a folder is a sync, on SQLite and PostgreSQL; tenants never see each other's
documents."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine

from core.crud import knowledge as store
from core.db import session_scope
from core.models import KnowledgeChunk, Tenant
from core.settings import KnowledgeConfig
from knowledge import KnowledgeBase, default_embeddings
from tests.factories import all_rows, make_tenant
from tests.knowledge.corpus import ARTICLES, index_folder, write_articles


def revision(db: DbEngine, tenant: Tenant) -> int:
    with session_scope(db) as session:
        return store.knowledge_revision(session=session, tenant_id=tenant.id) or 0  # type: ignore[arg-type]


def test_sync_adds_changes_and_removes_exactly_what_changed(db: DbEngine, tmp_path: Path) -> None:
    tenant, _ = make_tenant(db)
    folder = write_articles(tmp_path / "help")
    first = index_folder(db, tenant.id, folder)  # type: ignore[arg-type]
    assert sorted(first.added) == ["delivery", "delivery-2025", "pickup", "refunds", "wifi"]
    assert revision(db, tenant) == 1

    again = index_folder(db, tenant.id, folder)  # type: ignore[arg-type]
    assert (again.added, again.changed, again.removed, again.chunks) == ([], [], [], 0)
    assert revision(db, tenant) == 1  # nothing changed: serving keeps its index

    (folder / "refunds.md").write_text(ARTICLES["refunds.md"].replace("7 days", "10 days"))
    (folder / "wifi.txt").unlink()
    (folder / "gifts.md").write_text("# Gift cards\n\nGift cards never expire.")
    chunk_ids_before = {c.id for c in all_rows(db, KnowledgeChunk) if c.text.startswith("Delivery")}
    report = index_folder(db, tenant.id, folder)  # type: ignore[arg-type]
    assert (report.added, report.changed, report.removed) == (["gifts"], ["refunds"], ["wifi"])
    assert sorted(report.unchanged) == ["delivery", "delivery-2025", "pickup"]
    assert revision(db, tenant) == 2
    # Unchanged documents keep their chunk rows (nothing re-embedded).
    chunk_ids_after = {c.id for c in all_rows(db, KnowledgeChunk) if c.text.startswith("Delivery")}
    assert chunk_ids_before == chunk_ids_after
    with session_scope(db) as session:
        docs = {d.doc_id: d for d in store.list_documents(session=session, tenant_id=tenant.id)}  # type: ignore[arg-type]
    assert "10 days" in docs["refunds"].body and "wifi" not in docs


def test_a_folder_sync_leaves_other_sources_documents_alone(db: DbEngine, tmp_path: Path) -> None:
    tenant, _ = make_tenant(db)
    one = write_articles(tmp_path / "one", {"a.md": "# A\n\nAlpha."})
    two = write_articles(tmp_path / "two", {"b.md": "# B\n\nBeta."})
    index_folder(db, tenant.id, one)  # type: ignore[arg-type]
    index_folder(db, tenant.id, two)  # type: ignore[arg-type]
    (one / "a.md").unlink()
    report = index_folder(db, tenant.id, one)  # type: ignore[arg-type]
    assert report.removed == ["a"]
    with session_scope(db) as session:
        assert [d.doc_id for d in store.list_documents(session=session, tenant_id=tenant.id)] == [
            "b"
        ]  # type: ignore[arg-type]


def test_a_tenants_documents_are_never_retrieved_for_another(db: DbEngine, tmp_path: Path) -> None:
    acme, _ = make_tenant(db, "acme")
    other, _ = make_tenant(db, "other")
    index_folder(db, acme.id, write_articles(tmp_path / "acme"))  # type: ignore[arg-type]
    index_folder(
        db,
        other.id,
        write_articles(tmp_path / "other", {"tea.md": "# Tea\n\nWe sell green tea for $3."}),
    )  # type: ignore[arg-type]
    kb = KnowledgeBase(db, KnowledgeConfig(), default_embeddings())

    for_other = kb.ground(other.id, ["How much is delivery?"])  # type: ignore[arg-type]
    assert for_other.retrieved == ["tea"]
    assert all(s.doc_id == "tea" for s in for_other.sources)
    for_acme = kb.ground(acme.id, ["How much is delivery?"])  # type: ignore[arg-type]
    assert "tea" not in for_acme.retrieved and for_acme.retrieved[0] == "delivery"


def test_superseded_documents_are_listed_but_never_retrieved(db: DbEngine, tmp_path: Path) -> None:
    tenant, _ = make_tenant(db)
    index_folder(db, tenant.id, write_articles(tmp_path / "help"))  # type: ignore[arg-type]
    kb = KnowledgeBase(db, KnowledgeConfig(), default_embeddings())
    grounding = kb.ground(tenant.id, ["how much does delivery cost?"])  # type: ignore[arg-type]
    assert "delivery-2025" not in grounding.retrieved
    assert grounding.sources[0].doc_id == "delivery"
    with session_scope(db) as session:
        statuses = {
            d.doc_id: d.status for d in store.list_documents(session=session, tenant_id=tenant.id)
        }  # type: ignore[arg-type]
    assert statuses["delivery-2025"] == "superseded"


def test_a_new_revision_is_seen_by_an_index_built_before_it(db: DbEngine, tmp_path: Path) -> None:
    tenant, _ = make_tenant(db)
    folder = write_articles(tmp_path / "help", {"a.md": "# Opening hours\n\nWe open at 7:00 am."})
    index_folder(db, tenant.id, folder)  # type: ignore[arg-type]
    kb = KnowledgeBase(db, KnowledgeConfig(), default_embeddings())
    assert kb.ground(tenant.id, ["when do you open?"]).retrieved == ["a"]  # type: ignore[arg-type]
    with session_scope(db) as session:
        store.remove_document(session=session, tenant_id=tenant.id, doc_id="a")  # type: ignore[arg-type]
    assert kb.ground(tenant.id, ["when do you open?"]).retrieved == []  # type: ignore[arg-type]
