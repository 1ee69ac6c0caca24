"""Hand a trained adapter to serving through the registry, never half-way.

Files first: copied into a staging directory beside their final place, a sha256 manifest
written, everything fsynced, then one rename. Only then the registry row (status approved, with
its metrics and lineage) in one transaction; the serving process finds it there and runs the
hot-swap protocol (checks the recorded digest, loads, smoke-tests, switches). A crash before the
rename leaves only a staging directory, which the next publish removes; a crash between the
rename and the commit leaves an unregistered directory that nothing loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from core.crud.adapters import register_adapter
from core.db import session_scope
from core.durable_files import fsync_dir, fsync_tree, sha256_file
from core.models import AdapterLineage, AdapterStatus, AdapterVersion, Tenant
from core.settings import Settings
from engines.adapter_files import adapter_digest, inspect_adapter
from engines.base_model import read_manifest

MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"


class PublishError(RuntimeError):
    pass


def adapters_root(settings: Settings, tenant_slug: str) -> Path:
    return settings.var_dir / "adapters" / tenant_slug


def verify_manifest(path: Path) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        if sha256_file(path / name) != digest:
            raise PublishError(f"{path / name} does not match its manifest")


def write_adapter(source: Path, root: Path, name: str) -> Path:
    """Atomically place `source` at root/name with a manifest; returns the final path."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = root / name
    if final.exists():
        raise PublishError(f"{final} already exists; adapter names are never reused")
    staging = root / f"{STAGING_PREFIX}{name}"
    shutil.copytree(source, staging)
    (staging / "README.md").unlink(missing_ok=True)  # peft's model card template: noise
    files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
    (staging / MANIFEST).write_text(json.dumps({"name": name, "files": files}, indent=2))
    fsync_tree(staging)
    staging.rename(final)
    fsync_dir(root)
    return final


def publish_candidate(
    *,
    db: DbEngine,
    settings: Settings,
    tenant_id: int,
    tenant_slug: str,
    name: str,
    source: Path,
    run_id: int,
    metrics: dict[str, Any],
    lineage: list[tuple[int, int | None]],
) -> AdapterVersion:
    path = write_adapter(source, adapters_root(settings, tenant_slug), name)
    verify_manifest(path)
    inspect_adapter(
        path, base_model_dir=settings.resolved_model_dir, max_rank=settings.max_lora_rank
    )
    digest = adapter_digest(path)
    base = str(read_manifest(settings.resolved_model_dir).get("base_model", ""))
    with session_scope(db) as session:
        version = register_adapter(
            session=session,
            tenant_id=tenant_id,
            name=name,
            path=str(path.resolve()),
            base_model=base,
            sha256=digest,
            training_run_id=run_id,
            metrics=metrics,
            status=AdapterStatus.APPROVED,
        )
        assert version.id is not None
        session.add_all(
            AdapterLineage(adapter_version_id=version.id, message_id=m, customer_id=c)
            for m, c in lineage
        )
        session.flush()
        session.expunge(version)
    return version


def prune_versions(*, db: DbEngine, settings: Settings, tenant_id: int, keep: int) -> list[str]:
    """Delete the files of all but the newest `keep` versions; the active and previous ones
    are always kept. Rows stay (history, lineage), marked retired with no files."""
    removed = []
    with session_scope(db) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        protected = {tenant.active_adapter_id, tenant.previous_adapter_id}
        versions = session.exec(
            select(AdapterVersion)
            .where(AdapterVersion.tenant_id == tenant_id)
            .order_by(col(AdapterVersion.id).desc())
        ).all()
        for version in versions[keep:]:
            if version.id in protected or version.status == AdapterStatus.APPROVED:
                continue
            path = Path(version.path)
            if path.exists():
                shutil.rmtree(path)
                removed.append(version.name)
                version.status_reason = (version.status_reason or "") + " (files pruned)"
                if version.status != AdapterStatus.REJECTED:
                    version.status = AdapterStatus.RETIRED
                session.add(version)
    return removed
