"""/metrics: the Prometheus text format, parsed with Prometheus' own parser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chat_service.server import BackgroundServer
from core.db import session_scope
from core.models import TrainingRun, TrainingRunStatus
from engines.embedded import EmbeddedEngine
from supportloop.app import build_app
from tests.chat_service.ws_client import is_bot_message, open_chat, read_until, send_message
from tests.conftest import free_port, make_settings
from tests.factories import make_tenant


@pytest.mark.anyio
async def test_metrics_parse_and_cover_requests_replies_connections_webhooks_and_training(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'metrics.db'}", port=free_port())
    with BackgroundServer(settings, build_app(settings, engine=engine)) as live:
        db = live.app.state.services.db
        tenant, _ = make_tenant(db, "acme")
        with session_scope(db) as session:
            for status in (TrainingRunStatus.SUCCEEDED, TrainingRunStatus.FAILED):
                session.add(TrainingRun(tenant_id=tenant.id, status=status))  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=live.http_url) as http:
            await http.get("/v1/conversations/12345/messages")  # 401: counted by template
            hook = await http.post("/v1/webhooks/zendesk/acme", content=b"{}")
            assert hook.status_code == 401
            async with open_chat(live.ws_url, "acme") as ws:
                await send_message(ws, "c-1", "Hello!")
                await read_until(ws, is_bot_message)
                during = await http.get("/metrics")
            after = await http.get("/metrics")
    assert during.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(after.text)}

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value) for s in families[name].samples]

    requests = samples("supportloop_http_requests")
    assert any(
        labels
        == {
            "method": "GET",
            "route": "/v1/conversations/{conversation_id}/messages",
            "status": "401",
        }
        for _, labels, _ in requests
    )
    assert not any("12345" in labels["route"] for _, labels, _ in requests)
    ttft = {name: value for name, _, value in samples("supportloop_reply_ttft_seconds")}
    assert ttft["supportloop_reply_ttft_seconds_count"] >= 1
    assert samples("supportloop_reply_tokens")[0][2] >= 1
    assert samples("supportloop_reply_stream_seconds")[0][2] > 0
    messages = {labels["role"]: v for _, labels, v in samples("supportloop_chat_messages")}
    assert messages["customer"] >= 1 and messages["bot"] >= 1
    assert ("supportloop_webhook_deliveries_total", {"provider": "zendesk", "status": "401"}) in [
        (n, labels) for n, labels, _ in samples("supportloop_webhook_deliveries")
    ]
    runs = {labels["status"]: v for _, labels, v in samples("supportloop_training_runs")}
    assert runs == {"succeeded": 1, "failed": 1}
    during_families = {f.name: f for f in text_string_to_metric_families(during.text)}
    widget = [
        s.value
        for s in during_families["supportloop_active_connections"].samples
        if s.labels == {"kind": "widget"}
    ]
    assert widget and widget[0] >= 1  # the chat above was open while scraping


@pytest.mark.parametrize("token", ["", "m" * 40])
def test_metrics_name_tenants_only_for_a_scraper_holding_the_token(
    tmp_path: Path, engine: EmbeddedEngine, token: str
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'm.db'}", port=free_port(), metrics_token=token
    )
    with BackgroundServer(settings, build_app(settings, engine=engine)) as live:
        db = live.app.state.services.db
        tenant, _ = make_tenant(db, "secret-customer-slug")
        with session_scope(db) as session:
            session.add(TrainingRun(tenant_id=tenant.id, status=TrainingRunStatus.SUCCEEDED))  # type: ignore[arg-type]
        anonymous = httpx.get(f"{live.http_url}/metrics")
        scraper = httpx.get(
            f"{live.http_url}/metrics", headers={"Authorization": f"Bearer {token or 'x'}"}
        )
    if not token:
        assert anonymous.status_code == 200
        assert "secret-customer-slug" not in anonymous.text
        assert 'supportloop_training_runs{status="succeeded"} 1.0' in anonymous.text
    else:
        assert anonymous.status_code == 401
        assert scraper.status_code == 200
        assert (
            'supportloop_training_runs{status="succeeded",tenant="secret-customer-slug"} 1.0'
            in scraper.text
        )
