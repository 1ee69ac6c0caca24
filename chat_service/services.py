"""The long-lived objects a running chat service is made of, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine as DbEngine

from chat_service.adapter_leases import AdapterLeases
from chat_service.connection_caps import Caps
from chat_service.handoff import Handoff
from chat_service.hot_swap import AdapterManager
from chat_service.hub import ConversationHub
from chat_service.rate_limit import RateLimiter
from chat_service.responder import Responder
from core.group_commit import GroupCommit
from core.settings import Settings
from engines import Engine
from knowledge import KnowledgeBase


@dataclass
class Services:
    settings: Settings
    db: DbEngine
    engine: Engine
    hub: ConversationHub
    responder: Responder
    adapters: AdapterManager
    leases: AdapterLeases
    handoff: Handoff
    secret_key: bytes
    rate_limiter: RateLimiter
    connection_caps: Caps
    knowledge: KnowledgeBase
    writes: GroupCommit  # customer messages and feedback: acked after a shared commit
