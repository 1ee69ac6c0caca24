"""No request body is read without a limit: 413 before it is buffered (security goal: bounded
work), with a larger limit for webhooks and document uploads that an operator can raise."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from chat_service.server import BackgroundServer
from core.db import session_scope
from core.models import Message, WebhookEvent
from engines.embedded import EmbeddedEngine
from supportloop.app import build_app
from tests.conftest import free_port, make_settings
from tests.connectors.test_webhooks import SECRETS, zendesk_headers
from tests.factories import make_tenant

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def big_zendesk_comment(size: int) -> bytes:
    return json.dumps(
        {
            "type": "zen:event-type:ticket.comment_added",
            "id": "evt-big",
            "time": "2025-01-08T14:25:30Z",
            "detail": {"id": "5158"},
            "event": {
                "comment": {
                    "id": "777",
                    "body": "x" * size,
                    "is_public": True,
                    "author": {"id": "844", "is_staff": False},
                }
            },
        }
    ).encode()


@pytest.fixture
def server_for(tmp_path: Path, engine: EmbeddedEngine):  # noqa: ANN201
    """Starts the whole product with the given settings overrides; stops them all after."""
    started: list[BackgroundServer] = []

    def start(**overrides: object) -> BackgroundServer:
        settings = make_settings(
            tmp_path,
            f"sqlite:///{tmp_path / f'limits{len(started)}.db'}",
            port=free_port(),
            connector_secrets=SECRETS,
            **overrides,
        )
        server = BackgroundServer(settings, build_app(settings, engine=engine)).__enter__()
        started.append(server)
        make_tenant(server.app.state.services.db)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def stored(server: BackgroundServer) -> tuple[int, int]:
    with session_scope(server.app.state.services.db) as session:
        events = len(session.exec(select(WebhookEvent)).all())
        messages = len(session.exec(select(Message)).all())
    return events, messages


async def test_a_signed_webhook_over_the_limit_is_refused_and_nothing_is_stored(
    server_for: Iterator[BackgroundServer],
) -> None:
    raw = big_zendesk_comment(2 * MIB)
    server = server_for()  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60) as http:
        response = await http.post(
            "/v1/webhooks/zendesk/acme", content=raw, headers=zendesk_headers(raw)
        )
    assert response.status_code == 413 and "1048576 bytes" in response.json()["detail"]
    assert stored(server) == (0, 0)

    raised = server_for(max_webhook_body_bytes=4 * MIB)  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=raised.http_url, timeout=60) as http:
        response = await http.post(
            "/v1/webhooks/zendesk/acme", content=raw, headers=zendesk_headers(raw)
        )
    assert response.status_code == 200, response.text
    assert stored(raised) == (1, 1)


async def test_other_routes_refuse_a_body_over_one_mib(
    server_for: Iterator[BackgroundServer],
) -> None:
    server = server_for()  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60) as http:
        response = await http.post(
            "/v1/conversations/1/messages",
            content=b'{"text": "' + b"x" * (MIB + 1) + b'"}',
            headers={"content-type": "application/json", "authorization": "Bearer nope"},
        )
    assert response.status_code == 413


async def send_headers_only(port: int, path: str, length: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return status


async def send_chunked_until_answered(port: int, path: str, total: int) -> tuple[bytes, int]:
    """Streams a multipart upload without a length until the server answers (or ``total``
    bytes went out); returns the status line and how much was sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
    )
    preamble = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.md"\r\n'
        b"Content-Type: text/markdown\r\n\r\n"
    )
    chunk = b"x" * (256 * 1024)
    answer = asyncio.ensure_future(reader.readline())
    sent = 0
    try:
        for piece in (preamble, *[chunk] * (total // len(chunk))):
            if answer.done():
                break
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            sent += len(piece)
    except ConnectionError:
        pass
    status = await asyncio.wait_for(answer, 30)
    writer.close()
    return status, sent


async def test_an_unauthenticated_huge_upload_is_refused_before_it_is_read(
    server_for: Iterator[BackgroundServer],
) -> None:
    server = server_for(max_upload_bytes=64 * 1024)  # type: ignore[operator]
    port = server.settings.port
    status = await send_headers_only(port, "/v1/knowledge/documents", 5 * 1024**3)
    assert status.startswith(b"HTTP/1.1 413")

    status, sent = await send_chunked_until_answered(port, "/v1/knowledge/documents", 400 * MIB)
    assert status.startswith(b"HTTP/1.1 413")
    assert sent < 64 * MIB  # cut off near the limit (plus socket buffers), not read to the end
