"""SIGTERM (security goal 8): clients are told the service is restarting (close code 1012),
the process exits within its drain bound, and what was acknowledged is kept."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import TENANT, database
from chat_service.server import GRACEFUL_SHUTDOWN_S
from core.db import create_db_engine

pytestmark = pytest.mark.slow


def test_sigterm_closes_sockets_with_1012_and_exits_within_the_drain_bound() -> None:
    with database("sqlite") as url:
        server = ServerProcess(url)
        server.start()
        client_id = uuid.uuid4().hex

        async def chat_then_stop() -> int | None:
            async with connect(f"{server.ws_url}/v1/chat/ws?tenant={TENANT}") as ws:
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": "Hi"}))
                while json.loads(await ws.recv())["type"] != "ack":
                    pass
                stopping = asyncio.create_task(asyncio.to_thread(server.terminate))
                try:
                    while True:
                        await ws.recv()
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                exited_after = await stopping
                assert exited_after <= GRACEFUL_SHUTDOWN_S + 5
                return code

        assert asyncio.run(chat_then_stop()) == 1012
        db = create_db_engine(url)
        with db.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT count(*) FROM message WHERE client_id = :c"), {"c": client_id}
            ).scalar()
        db.dispose()
        assert stored == 1
