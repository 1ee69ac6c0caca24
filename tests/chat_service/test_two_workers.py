"""Two workers on one database and one Redis: what a customer does on one is live for an agent
on the other, and the agent's answer reaches the customer's widget back across workers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from chat_service.server import BackgroundServer
from core.crud.agents import create_agent
from core.db import session_scope
from core.models import BotMode
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import read_until, send_message
from tests.conftest import REDIS_URL, free_port, make_settings, running_server
from tests.factories import make_tenant

pytestmark = pytest.mark.anyio
PASSWORD = "a long enough password"


@pytest.fixture
def workers(
    tmp_path: Path, engine: EmbeddedEngine
) -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    prefix = f"supportloop-test:{uuid.uuid4().hex}"
    with ExitStack() as stack:
        started = [
            stack.enter_context(
                running_server(
                    make_settings(
                        tmp_path,
                        f"sqlite:///{tmp_path / 'shared.db'}",
                        port=free_port(),
                        redis_url=REDIS_URL,
                        redis_prefix=prefix,
                    ),
                    engine,
                )
            )
            for _ in range(2)
        ]
        db = started[0].app.state.services.db
        tenant, _ = make_tenant(db, "acme", bot_mode=BotMode.OFF)
        with session_scope(db) as session:
            assert tenant.id is not None
            create_agent(
                session=session, tenant_id=tenant.id, email="sam@acme.test", password=PASSWORD
            )
        yield started[0], started[1]


async def test_a_customer_on_one_worker_and_an_agent_on_another_see_each_other_live(
    workers: tuple[BackgroundServer, BackgroundServer],
) -> None:
    worker_a, worker_b = workers
    login = httpx.post(
        f"{worker_b.http_url}/console/api/login",
        json={"tenant": "acme", "email": "sam@acme.test", "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    cookie = login.cookies["supportloop_console"]
    csrf = login.json()["csrf_token"]
    headers = {"Cookie": f"supportloop_console={cookie}"}
    async with (
        connect(f"{worker_b.ws_url}/console/ws", additional_headers=headers) as console,
        connect(f"{worker_a.ws_url}/v1/chat/ws?tenant=acme") as widget,
    ):
        assert json.loads(await console.recv()) == {"type": "ready"}
        await send_message(widget, "c-1", "Is my order on its way?")
        seen = (
            await read_until(
                console, lambda f: f["type"] == "message" and f.get("role") == "customer", 10
            )
        )[-1]
        assert seen["text"] == "Is my order on its way?"
        answer = httpx.post(
            f"{worker_b.http_url}/console/api/conversations/{seen['conversation_id']}/messages",
            json={"text": "It left the warehouse this morning."},
            headers={**headers, "X-CSRF-Token": csrf},
        )
        assert answer.status_code == 201, answer.text
        reply = (
            await read_until(widget, lambda f: f["type"] == "message" and f["role"] == "agent", 10)
        )[-1]
        assert reply["text"] == "It left the warehouse this morning."
