"""Two real `supportloop serve` processes behind HAProxy, on the machine's PostgreSQL and Redis:
what one worker does is live on the other, limits hold across them, and a worker killed in the
middle of a reply leaves the customer exactly one complete answer, from the other worker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import select
from websockets.asyncio.client import connect

from benchmarks.balancer import Balancer
from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import add_tenants, agent_email
from benchmarks.databases import fresh_database
from core.db import create_db_engine, session_scope
from core.models import BotMode, Message, Role
from tests.chat_service.ws_client import is_bot_message, open_chat, read_until, send_message
from tests.conftest import POSTGRES_URL, REDIS_URL

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,  # two server processes and a load balancer
    pytest.mark.skipif(not POSTGRES_URL, reason="several workers share a PostgreSQL"),
]
PASSWORD = "a long enough password"


@dataclass
class Deployment:
    database_url: str
    worker_a: ServerProcess
    worker_b: ServerProcess
    balancer: Balancer


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with fresh_database("postgresql") as url:
        add_tenants(url, {"quiet": BotMode.OFF, "busy": BotMode.AUTO}, password=PASSWORD)
        shared = {
            "redis_url": REDIS_URL,
            "redis_prefix": f"supportloop-test:{uuid.uuid4().hex}",
            "reply_lease_s": "3",
            "unanswered_sweep_s": "1",
            "max_new_tokens": "48",
            "temperature": "0",
            "finetune_nightly_at": "",
        }
        workers = [ServerProcess(url, **shared) for _ in range(2)]
        try:
            for worker in workers:
                worker.start()
            with Balancer([w.port for w in workers]) as balancer:
                yield Deployment(url, workers[0], workers[1], balancer)
        finally:
            for worker in workers:
                if worker.process is not None and worker.process.poll() is None:
                    worker.terminate()


def sign_in(base_url: str, tenant: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{base_url}/console/api/login",
        json={"tenant": tenant, "email": agent_email(tenant), "password": password},
        headers={"Origin": base_url},
    )


async def test_a_customer_on_one_worker_and_an_agent_on_another_see_each_other_live(
    deployment: Deployment,
) -> None:
    worker_a, worker_b = deployment.worker_a, deployment.worker_b
    login = sign_in(worker_b.http_url, "quiet")
    assert login.status_code == 200, login.text
    cookie, csrf = login.cookies["supportloop_console"], login.json()["csrf_token"]
    headers = {"Cookie": f"supportloop_console={cookie}"}
    async with (
        open_chat(worker_a.ws_url, "quiet") as widget,
        connect(f"{worker_b.ws_url}/console/ws", additional_headers=headers) as console,
    ):
        assert json.loads(await console.recv()) == {"type": "ready"}
        await send_message(widget, "c-1", "Is my order on its way?")
        seen = await read_until(
            console, lambda f: f["type"] == "message" and f.get("role") == "customer", 15
        )
        conversation_id = seen[-1]["conversation_id"]
        answer = httpx.post(
            f"{worker_b.http_url}/console/api/conversations/{conversation_id}/messages",
            json={"text": "It left the warehouse this morning."},
            headers={**headers, "X-CSRF-Token": csrf, "Origin": worker_b.http_url},
        )
        assert answer.status_code == 201, answer.text
        reply = await read_until(
            widget, lambda f: f["type"] == "message" and f["role"] == "agent", 15
        )
        assert reply[-1]["text"] == "It left the warehouse this morning."


def test_sign_in_attempts_are_limited_across_workers(deployment: Deployment) -> None:
    urls = [deployment.worker_a.http_url, deployment.worker_b.http_url] * 3
    statuses = [sign_in(url, "busy", password="wrong password").status_code for url in urls]
    # Five attempts a minute per account: one limit, not five per worker.
    assert statuses == [401] * 5 + [429]


async def test_a_worker_killed_mid_reply_leaves_one_complete_answer_from_the_other(
    deployment: Deployment,
) -> None:
    worker_a = deployment.worker_a
    try:
        async with open_chat(worker_a.ws_url, "busy") as widget:
            await send_message(widget, "c-1", "Hello, where is my coffee order?")
            before = await read_until(widget, lambda f: f["type"] == "delta", 60)
        session = next(f for f in before if f["type"] == "session")
        acked = next(f for f in before if f["type"] == "ack")
        worker_a.kill()  # mid-reply: the model was streaming

        async with open_chat(
            deployment.balancer.ws_url, "busy", token=session["token"], last_seq=acked["seq"]
        ) as widget:
            frames = await read_until(widget, is_bot_message, 60)
            more = []
            try:
                async with asyncio.timeout(4):  # a second answer would come within the lease
                    while True:
                        more.append(json.loads(await widget.recv()))
            except TimeoutError:
                pass
        answers = [f for f in frames + more if is_bot_message(f)]
        assert len(answers) == 1 and answers[0]["text"]
        db = create_db_engine(deployment.database_url)
        with session_scope(db) as db_session:
            stored = db_session.exec(
                select(Message).where(
                    Message.conversation_id == session["conversation_id"],
                    Message.role == Role.BOT,
                )
            ).all()
        db.dispose()
        assert [m.text for m in stored] == [answers[0]["text"]]
    finally:
        if worker_a.process is not None and worker_a.process.poll() is not None:
            worker_a.start()
