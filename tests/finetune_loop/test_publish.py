"""Publishing: atomic files with a manifest, the registry row and lineage in one transaction,
and only the last N versions' files kept (never the active or previous one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select

from core.crud.adapters import switch_active
from core.db import session_scope
from core.models import AdapterLineage, AdapterStatus, AdapterVersion, Message, Role
from finetune_loop.publish import (
    PublishError,
    prune_versions,
    publish_candidate,
    verify_manifest,
    write_adapter,
)
from tests.adapters import make_random_adapter
from tests.conftest import make_settings
from tests.factories import make_tenant
from tests.finetune_loop.factories import add_conversation, add_customer


@pytest.fixture(scope="module")
def trained(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_adapter(model_dir, tmp_path_factory.mktemp("adapter") / "a", seed=3)


def test_a_written_adapter_carries_a_manifest_that_catches_tampering(
    trained: Path, tmp_path: Path
) -> None:
    path = write_adapter(trained, tmp_path / "adapters", "acme-v1")
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"adapter_config.json", "adapter_model.safetensors"}
    assert not list((tmp_path / "adapters").glob(".staging-*"))
    verify_manifest(path)
    with (path / "adapter_model.safetensors").open("r+b") as handle:
        handle.seek(-1, 2)
        handle.write(b"\x00")
    with pytest.raises(PublishError, match="does not match its manifest"):
        verify_manifest(path)
    with pytest.raises(PublishError, match="never reused"):
        write_adapter(trained, tmp_path / "adapters", "acme-v1")


def test_publishing_registers_an_approved_version_with_its_lineage_and_prunes_old_files(
    db: DbEngine, db_url: str, tmp_path: Path, trained: Path
) -> None:
    tenant, _ = make_tenant(db)
    assert tenant.id is not None
    settings = make_settings(tmp_path, db_url)
    add_conversation(
        db,
        tenant.id,
        [(Role.CUSTOMER, "hi"), (Role.AGENT, "hello")],
        customer_id=add_customer(db, tenant.id),
    )
    with session_scope(db) as session:
        lineage = [(m.id, None) for m in session.exec(select(Message)).all()]
    names = []
    for n in range(4):
        version = publish_candidate(
            db=db,
            settings=settings,
            tenant_id=tenant.id,
            tenant_slug="acme",
            name=f"acme-v{n}",
            source=trained,
            run_id=None,  # type: ignore[arg-type]
            metrics={"loss": 1.0},
            lineage=lineage,  # type: ignore[arg-type]
        )
        names.append(version.name)
        assert version.status == AdapterStatus.APPROVED
        with session_scope(db) as session:
            switch_active(session=session, tenant_id=tenant.id, adapter_id=version.id)  # type: ignore[arg-type]
    with session_scope(db) as session:
        assert len(session.exec(select(AdapterLineage)).all()) == 4 * len(lineage)
        oldest = session.exec(select(AdapterVersion).where(AdapterVersion.name == "acme-v0")).one()
        oldest_path = Path(oldest.path)
    removed = prune_versions(db=db, settings=settings, tenant_id=tenant.id, keep=2)
    assert removed == ["acme-v1", "acme-v0"] and not oldest_path.exists()
    with session_scope(db) as session:
        statuses = {v.name: v.status for v in session.exec(select(AdapterVersion)).all()}
    assert statuses == {
        "acme-v3": AdapterStatus.ACTIVE,
        "acme-v2": AdapterStatus.RETIRED,  # the previous version: kept for rollback
        "acme-v1": AdapterStatus.RETIRED,
        "acme-v0": AdapterStatus.RETIRED,
    }
    assert Path(settings.var_dir / "adapters" / "acme" / "acme-v2").exists()
