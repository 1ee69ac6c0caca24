"""Salesforce Outbound Messages: organisation id checked, exact Ack answered, case re-fetched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from chat_service.server import BackgroundServer
from connectors.salesforce.soap import ACK
from core.db import session_scope
from core.models import Message, Role, WebhookEvent
from engines.embedded import EmbeddedEngine
from supportloop.app import build_app
from tests.conftest import free_port, make_settings
from tests.connectors.fake_salesforce import CASE_ID, ORG, TOKEN, FakeSalesforce
from tests.connectors.fake_zendesk import running
from tests.factories import make_tenant

URL_SECRET = "sf-endpoint-secret-0123456789abcdef"


def envelope(org: str = ORG, notification_id: str = "04l5g00000LmNoPAAV") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k5g0000008OmXAAU</ActionId>
   <SessionId xsi:nil="true"/>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{CASE_ID}</sf:Id>
     <sf:Subject>Order 4411 never arrived</sf:Subject>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


@pytest.fixture
def server(
    tmp_path: Path, db_url: str, engine: EmbeddedEngine
) -> Iterator[tuple[BackgroundServer, int]]:
    api_port = free_port()
    settings = make_settings(
        tmp_path,
        db_url,
        port=free_port(),
        connector_secrets={"acme/salesforce": [URL_SECRET]},
        connector_credentials={
            "acme/salesforce": {
                "api_base": f"http://127.0.0.1:{api_port}",
                "token": TOKEN,
                "organization_id": ORG,
            }
        },
    )
    with BackgroundServer(settings, build_app(settings, engine=engine)) as live:
        make_tenant(live.app.state.services.db)
        yield live, api_port


def test_an_outbound_message_is_acked_exactly_and_the_case_is_stored(
    server: tuple[BackgroundServer, int],
) -> None:
    live, api_port = server
    url = f"{live.http_url}/v1/webhooks/salesforce/acme?token={URL_SECRET}"
    with running(FakeSalesforce().app, api_port):
        first = httpx.post(url, content=envelope(), headers={"Content-Type": "text/xml"})
        again = httpx.post(url, content=envelope(), headers={"Content-Type": "text/xml"})
    assert first.status_code == 200 and first.text == ACK
    assert first.headers["content-type"].startswith("text/xml")
    assert again.status_code == 200 and again.text == ACK  # a re-delivery is acked, not re-stored
    db: DbEngine = live.app.state.services.db
    with session_scope(db) as session:
        stored = session.exec(select(Message).order_by(col(Message.sent_at))).all()
        assert [(m.role, m.text, m.internal_note) for m in stored] == [
            (Role.CUSTOMER, "My order 4411 never arrived.", False),
            (Role.AGENT, "Carrier lost the parcel", True),
            (Role.AGENT, "We reshipped it today.", False),
        ]
        assert len(session.exec(select(WebhookEvent)).all()) == 1


def test_the_public_organisation_id_alone_is_not_enough(
    server: tuple[BackgroundServer, int],
) -> None:
    """Anyone can read an org id off a Web-to-Case form: without the URL secret, or with a
    wrong one, the right org's envelope is refused and nothing is stored."""
    live, _ = server
    base = f"{live.http_url}/v1/webhooks/salesforce/acme"
    for url in (base, f"{base}?token=guess", f"{base}?token="):
        refused = httpx.post(url, content=envelope(), headers={"Content-Type": "text/xml"})
        assert refused.status_code == 401, url
        assert "token" in refused.json()["detail"]
    with session_scope(live.app.state.services.db) as session:
        assert session.exec(select(WebhookEvent)).all() == []


def test_another_organisation_or_a_broken_envelope_is_kept_dead_and_never_ingested(
    server: tuple[BackgroundServer, int],
) -> None:
    live, _ = server
    url = f"{live.http_url}/v1/webhooks/salesforce/acme?token={URL_SECRET}"
    other = httpx.post(url, content=envelope(org="00D000000000000AAA"))
    assert other.status_code == 400 and "organisation" in other.json()["detail"]
    broken = httpx.post(url, content=b"<not-soap")
    assert broken.status_code == 400 and "SOAP" in broken.json()["detail"]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert httpx.post(url, content=bomb).status_code == 400  # entities are never expanded
    with session_scope(live.app.state.services.db) as session:
        assert session.exec(select(Message)).all() == []
        assert {e.status for e in session.exec(select(WebhookEvent)).all()} == {"dead"}
