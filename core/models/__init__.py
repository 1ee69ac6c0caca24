"""The domain model. Importing this package registers every table on SQLModel.metadata."""

from core.models.adapters import AdapterLineage, AdapterVersion, NightlyClaim, TrainingRun
from core.models.agents import Agent, AgentSession
from core.models.analytics import (
    BASE_MODEL_KEY,
    NO_BOT_KEY,
    ConversationFact,
    OutcomeRollup,
)
from core.models.conversations import (
    NATIVE_SOURCE,
    Conversation,
    Customer,
    CustomerExternalId,
    Message,
    Suggestion,
)
from core.models.enums import (
    AdapterStatus,
    BotMode,
    ConversationStatus,
    Role,
    SuggestionStatus,
    TrainingRunStatus,
    WebhookEventStatus,
)
from core.models.erasure import ErasureAudit, ErasureTombstone, TombstoneKind
from core.models.knowledge import KnowledgeChunk, KnowledgeDocument
from core.models.sync import SyncCursor
from core.models.tenants import ApiKey, Tenant
from core.models.types import UTCDateTime, utcnow
from core.models.webhooks import WebhookEvent

__all__ = [
    "BASE_MODEL_KEY",
    "NO_BOT_KEY",
    "ConversationFact",
    "OutcomeRollup",
    "NATIVE_SOURCE",
    "AdapterLineage",
    "Agent",
    "AgentSession",
    "AdapterStatus",
    "AdapterVersion",
    "ApiKey",
    "BotMode",
    "Conversation",
    "ErasureAudit",
    "ErasureTombstone",
    "TombstoneKind",
    "ConversationStatus",
    "Customer",
    "CustomerExternalId",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "Message",
    "NightlyClaim",
    "Role",
    "Suggestion",
    "SuggestionStatus",
    "SyncCursor",
    "Tenant",
    "TrainingRun",
    "TrainingRunStatus",
    "UTCDateTime",
    "WebhookEvent",
    "WebhookEventStatus",
    "utcnow",
]
