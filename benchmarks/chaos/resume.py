"""Resume (security goal 7): a customer sends ``messages`` messages while the connection is
reset at random, half the time without a close handshake (the TCP connection is simply
dropped). After each reset the client reconnects with its conversation token and the last
sequence number it saw, and sends again what was not acknowledged, with the same client ids.

Checked: every message stored exactly once, in the order sent; every stored message delivered
to the client exactly once, in sequence order, across all the connections.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import TENANT, database
from benchmarks.databases import backends
from core.db import create_db_engine, read_scope
from core.models import Message, Role

IN_FLIGHT = 8  # messages sent ahead of their acks, so resets catch some mid-way


@dataclass
class Customer:
    """The widget's side of the protocol, kept across connections as a browser tab would."""

    texts: list[tuple[str, str]]  # (client id, text) in the order the customer typed them
    token: str | None = None
    last_seq: int = 0
    acked: dict[str, int] = field(default_factory=dict)  # client id -> seq
    delivered: list[int] = field(default_factory=list)  # seqs of message events, as received
    duplicates_delivered: int = 0
    resets: int = 0
    abrupt_resets: int = 0
    connections: int = 0
    next_index: int = 0

    def unacked(self) -> list[tuple[str, str]]:
        return [item for item in self.texts[: self.next_index] if item[0] not in self.acked]

    def receive(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "session" and frame.get("token"):
            self.token = frame["token"]
        elif kind == "ack":
            first = self.acked.setdefault(frame["client_id"], frame["seq"])
            if first != frame["seq"]:
                raise AssertionError(f"{frame['client_id']} acked as {first} and {frame['seq']}")
        elif kind == "message":
            if frame["seq"] <= self.last_seq:
                self.duplicates_delivered += 1
            else:
                self.delivered.append(frame["seq"])
                self.last_seq = frame["seq"]


async def _connection(ws_url: str, customer: Customer, rng: random.Random, reset_p: float) -> None:
    url = f"{ws_url}/v1/chat/ws?tenant={TENANT}"
    if customer.token:
        url += f"&token={customer.token}&last_seq={customer.last_seq}"
    async with connect(url, open_timeout=30) as ws:
        customer.connections += 1
        reader = asyncio.create_task(_read(ws, customer))
        try:
            for client_id, text in customer.unacked():  # resent with the same client ids
                await _send(ws, client_id, text)
            while customer.next_index < len(customer.texts) or customer.unacked():
                if reader.done():
                    return
                in_flight = len(customer.unacked())
                if customer.next_index < len(customer.texts) and in_flight < IN_FLIGHT:
                    client_id, text = customer.texts[customer.next_index]
                    customer.next_index += 1
                    await _send(ws, client_id, text)
                    if customer.token and rng.random() < reset_p:
                        await _reset(ws, customer, rng)
                        return
                else:
                    await asyncio.sleep(0.002)
            await asyncio.sleep(0.2)  # the last message events
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def _send(ws: ClientConnection, client_id: str, text: str) -> None:
    await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))


async def _read(ws: ClientConnection, customer: Customer) -> None:
    try:
        async for raw in ws:
            customer.receive(json.loads(raw))
    except ConnectionClosed:
        pass


async def _reset(ws: ClientConnection, customer: Customer, rng: random.Random) -> None:
    customer.resets += 1
    await asyncio.sleep(rng.random() * 0.01)  # sometimes after the ack, sometimes before
    if rng.random() < 0.5:
        customer.abrupt_resets += 1
        ws.transport.abort()  # no close frame: the network just went away
    else:
        await ws.close()


async def chat_with_resets(ws_url: str, messages: int, reset_p: float, seed: int) -> Customer:
    rng = random.Random(seed)
    customer = Customer(
        texts=[(uuid.uuid4().hex, f"Question {n}: where is my order?") for n in range(messages)]
    )
    while customer.next_index < messages or customer.unacked():
        try:
            await _connection(ws_url, customer, rng, reset_p)
        except (ConnectionClosed, OSError):
            customer.resets += 1
    await _connection(ws_url, customer, rng, 0.0)  # a last resume collects what is missing
    return customer


def run(backend: str, messages: int = 1000, reset_p: float = 0.05, seed: int = 7) -> dict[str, Any]:
    with database(backend) as url:
        with ServerProcess(url) as server:
            customer = asyncio.run(chat_with_resets(server.ws_url, messages, reset_p, seed))
        db = create_db_engine(url)
        with read_scope(db) as session:
            stored = session.exec(
                select(Message).where(Message.role == Role.CUSTOMER).order_by(col(Message.seq))
            ).all()
        db.dispose()
    sent_order = [client_id for client_id, _ in customer.texts]
    stored_order = [m.client_id for m in stored]
    return {
        "backend": backend,
        "messages": messages,
        "connections": customer.connections,
        "resets": customer.resets,
        "abrupt_resets": customer.abrupt_resets,
        "stored": len(stored),
        "lost": len(set(sent_order) - set(stored_order)),
        "duplicated": len(stored_order) - len(set(stored_order)),
        "order_kept": stored_order == sent_order,
        "delivered_in_order_once": customer.delivered == [m.seq for m in stored]
        and customer.duplicates_delivered == 0,
        "duplicates_delivered": customer.duplicates_delivered,
    }


def run_all(messages: int = 1000, reset_p: float = 0.05) -> list[dict[str, Any]]:
    return [run(backend, messages, reset_p) for backend in backends()]
