"""The adapter registry: versions, their status, and each tenant's active pointer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session, col, select

from core.errors import ConflictError
from core.models import AdapterStatus, AdapterVersion, Tenant, utcnow


class AdapterNameTakenError(ConflictError):
    pass


def register_adapter(
    *,
    session: Session,
    tenant_id: int,
    name: str,
    path: str,
    base_model: str,
    sha256: str,
    training_run_id: int | None = None,
    metrics: dict[str, float] | None = None,
    status: AdapterStatus = AdapterStatus.CANDIDATE,
) -> AdapterVersion:
    """A new candidate. Names are never reused: engines cache by name."""
    if session.exec(select(AdapterVersion).where(AdapterVersion.name == name)).first():
        raise AdapterNameTakenError(
            f"adapter name {name!r} is taken; every version needs a new one"
        )
    version = AdapterVersion(
        tenant_id=tenant_id,
        name=name,
        path=path,
        base_model=base_model,
        sha256=sha256,
        training_run_id=training_run_id,
        metrics=metrics or {},
        status=status,
    )
    session.add(version)
    session.flush()
    return version


def get_adapter(*, session: Session, tenant_id: int, name: str) -> AdapterVersion | None:
    return session.exec(
        select(AdapterVersion).where(
            AdapterVersion.tenant_id == tenant_id, AdapterVersion.name == name
        )
    ).first()


def get_adapter_by_name(*, session: Session, name: str) -> AdapterVersion | None:
    """Version names are unique across tenants (vLLM addresses adapters by name alone)."""
    return session.exec(select(AdapterVersion).where(AdapterVersion.name == name)).first()


def active_adapter(*, session: Session, tenant_id: int) -> AdapterVersion | None:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.active_adapter_id is None:
        return None
    return session.get(AdapterVersion, tenant.active_adapter_id)


def list_adapter_versions(*, session: Session, tenant_id: int) -> Sequence[AdapterVersion]:
    return session.exec(
        select(AdapterVersion)
        .where(AdapterVersion.tenant_id == tenant_id)
        .order_by(col(AdapterVersion.id).desc())
    ).all()


def mark_rejected(*, session: Session, adapter_id: int, reason: str) -> None:
    version = session.get(AdapterVersion, adapter_id)
    if version is not None and version.status != AdapterStatus.ACTIVE:
        version.status = AdapterStatus.REJECTED
        version.status_reason = reason
        session.add(version)


def switch_active(*, session: Session, tenant_id: int, adapter_id: int) -> Tenant:
    """Point the tenant at ``adapter_id`` in one transaction; the old active version becomes the
    tenant's previous one (retired, kept loaded for rollback)."""
    tenant = session.exec(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).one()
    old_active = tenant.active_adapter_id
    if old_active == adapter_id:
        return tenant
    new = session.get(AdapterVersion, adapter_id)
    assert new is not None and new.tenant_id == tenant_id
    new.status = AdapterStatus.ACTIVE
    new.status_reason = None
    new.activated_at = utcnow()
    if new.parent_id is None and old_active is not None and old_active != adapter_id:
        new.parent_id = old_active
    session.add(new)
    old = session.get(AdapterVersion, old_active) if old_active is not None else None
    if old is not None:
        old.status = AdapterStatus.RETIRED
        session.add(old)
    # Rollback must never bring back weights trained on erased data.
    tenant.previous_adapter_id = None if old is None or old.tainted else old_active
    tenant.active_adapter_id = adapter_id
    session.add(tenant)
    if not new.tainted:
        retire_tainted(session=session, tenant_id=tenant_id)
    session.flush()
    return tenant


def retire_tainted(*, session: Session, tenant_id: int) -> list[AdapterVersion]:
    """Once a clean version serves, every tainted one is retired for good (never active,
    never previous); the caller deletes their files."""
    retired = []
    for version in session.exec(
        select(AdapterVersion).where(
            AdapterVersion.tenant_id == tenant_id,
            col(AdapterVersion.tainted),
            AdapterVersion.status != AdapterStatus.REJECTED,
        )
    ).all():
        if version.status == AdapterStatus.ACTIVE:
            continue
        version.status = AdapterStatus.REJECTED
        version.status_reason = "tainted: trained on erased data"
        session.add(version)
        retired.append(version)
    return retired


def approved_waiting(*, session: Session) -> list[AdapterVersion]:
    """Per tenant, the newest version that passed the gate and is not live yet (an older one
    that never got activated is superseded)."""
    newest: dict[int, AdapterVersion] = {}
    for version in session.exec(
        select(AdapterVersion)
        .where(AdapterVersion.status == AdapterStatus.APPROVED)
        .order_by(col(AdapterVersion.id))
    ).all():
        newest[version.tenant_id] = version
    return list(newest.values())


def serving_set(*, session: Session) -> dict[str, str]:
    """name -> path of every version that must stay loaded: each tenant's active and previous."""
    wanted: dict[str, str] = {}
    for tenant in session.exec(select(Tenant)).all():
        for adapter_id in (tenant.active_adapter_id, tenant.previous_adapter_id):
            if adapter_id is None:
                continue
            version = session.get(AdapterVersion, adapter_id)
            if version is not None and version.status != AdapterStatus.REJECTED:
                wanted[version.name] = version.path
    return wanted


def unloadable_names(*, session: Session, grace: timedelta) -> set[str]:
    """Versions that may leave an engine once no tenant serves them: retired and rejected
    ones, and candidates older than ``grace`` (an activation that died half-way). A younger
    candidate may be in the middle of another worker's activation: loaded, not yet switched."""
    settled = (AdapterStatus.RETIRED, AdapterStatus.REJECTED)
    pending = (AdapterStatus.CANDIDATE, AdapterStatus.APPROVED)
    return set(
        session.exec(
            select(AdapterVersion.name).where(
                col(AdapterVersion.status).in_(settled)
                | (
                    col(AdapterVersion.status).in_(pending)
                    & (col(AdapterVersion.created_at) < utcnow() - grace)
                )
            )
        ).all()
    )


def stop_serving_tainted(*, session: Session, tenant_id: int) -> bool:
    """After an erasure whose retrain did not pass the gate: serve the base model rather than
    weights trained on erased data. Returns whether the tenant's active version changed."""
    tenant = session.exec(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).one()
    changed = False
    for attribute in ("active_adapter_id", "previous_adapter_id"):
        version_id = getattr(tenant, attribute)
        version = session.get(AdapterVersion, version_id) if version_id is not None else None
        if version is not None and version.tainted:
            setattr(tenant, attribute, None)
            if version.status == AdapterStatus.ACTIVE:
                version.status = AdapterStatus.RETIRED
                session.add(version)
            changed |= attribute == "active_adapter_id"
    session.add(tenant)
    retire_tainted(session=session, tenant_id=tenant_id)
    return changed
