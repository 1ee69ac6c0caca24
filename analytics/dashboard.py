"""The dashboard page and its JSON API, mounted by the composition root.

Who may see a tenant's numbers is decided by the caller's dependency (the composition root
passes the console's signed-in agent), so this package needs nothing from chat_service.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, col, select

from analytics.drift import tenant_drift
from analytics.knowledge_gaps import group_gaps, unanswered_questions
from analytics.outcomes import (
    SEGMENTS,
    classification,
    grouped,
    rates,
    refresh_tenant,
    rollups,
    total,
)
from core.db import read_scope
from core.models import BASE_MODEL_KEY, NO_BOT_KEY, AdapterVersion, Tenant
from core.settings import Settings

_STATIC = Path(__file__).parent / "static"


def adapter_names(session: Session, tenant_id: int) -> dict[int, str]:
    names = {BASE_MODEL_KEY: "base model", NO_BOT_KEY: "no bot reply"}
    for version in session.exec(
        select(AdapterVersion).where(AdapterVersion.tenant_id == tenant_id)
    ):
        assert version.id is not None
        names[version.id] = version.name
    return names


def dashboard_data(
    session: Session, tenant: Tenant, settings: Settings, days: int
) -> dict[str, Any]:
    """Everything the page draws; rollups only, so the cost does not grow with messages."""
    assert tenant.id is not None
    since = date.today() - timedelta(days=days)
    rows = rollups(session=session, tenant_id=tenant.id, since=since)
    names = adapter_names(session, tenant.id)
    switches = session.exec(
        select(AdapterVersion)
        .where(AdapterVersion.tenant_id == tenant.id, col(AdapterVersion.activated_at).is_not(None))
        .order_by(col(AdapterVersion.activated_at))
    ).all()
    return {
        "tenant": tenant.slug,
        "since": since.isoformat(),
        "overall": rates(total(rows)),
        "daily": [
            {"day": day.isoformat(), **rates(sums)}
            for (day,), sums in sorted(grouped(rows, "day").items())
        ],
        "daily_by_adapter": [
            {"day": day.isoformat(), "adapter": names.get(key, str(key)), **rates(sums)}
            for (day, key), sums in sorted(grouped(rows, "day", "adapter_key").items())
        ],
        "by_adapter": [
            {"adapter": names.get(key, str(key)), **rates(sums)}
            for (key,), sums in sorted(grouped(rows, "adapter_key").items())
        ],
        "switches": [
            {"adapter": v.name, "at": v.activated_at.isoformat()}
            for v in switches
            if v.activated_at is not None and v.activated_at.date() >= since
        ],
        "segments": {
            segment: [
                {"value": str(value), "adapter": names.get(key, str(key)), **rates(sums)}
                for (key, value), sums in sorted(
                    grouped(rows, "adapter_key", segment).items(), key=lambda kv: str(kv[0])
                )
            ]
            for segment in SEGMENTS
        },
        "drift": [
            f.as_dict() for f in tenant_drift(session=session, tenant=tenant, settings=settings)
        ],
        "classification": {name: r.as_dict() for name, r in classification(total(rows)).items()},
        "knowledge_gaps": [
            gap.as_dict()
            for gap in group_gaps(
                unanswered_questions(
                    session=session,
                    tenant_id=tenant.id,
                    since=datetime.combine(since, datetime.min.time(), tzinfo=UTC),
                )
            )
        ],
    }


def dashboard_router(
    get_db: Callable[[], DbEngine], settings: Settings, tenant_of: Callable[..., int]
) -> APIRouter:
    """``tenant_of``: a FastAPI dependency giving the id of the tenant the caller may see."""
    router = APIRouter(include_in_schema=False)

    @router.get("/console/dashboard")
    def page() -> HTMLResponse:
        return HTMLResponse(
            (_STATIC / "dashboard.html").read_text(),
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @router.get("/console/dashboard.js")
    def script() -> Response:
        return Response((_STATIC / "dashboard.js").read_text(), media_type="text/javascript")

    @router.get("/console/api/analytics")
    def analytics(
        days: Annotated[int, Query(ge=1, le=3660)] = 90,
        # A default-style dependency: an Annotated alias local to this function would not
        # resolve under postponed annotations.
        tenant_id: int = Depends(tenant_of),  # noqa: B008
    ) -> dict[str, Any]:
        db = get_db()
        refresh_tenant(db, tenant_id, settings)  # fold in what changed since the last refresh
        with read_scope(db) as session:
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            return dashboard_data(session, tenant, settings, days)

    return router
