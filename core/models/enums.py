"""Closed vocabularies of the domain. Stored as short strings so migrations stay portable."""

from enum import StrEnum


class BotMode(StrEnum):
    AUTO = "auto"  # the bot answers customers itself
    ASSIST = "assist"  # the bot drafts, an agent sends
    OFF = "off"


class ConversationStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


# How conversation logs from elsewhere (file imports, evaluation sets) spell the roles.
ROLE_ALIASES = {
    "customer": Role.CUSTOMER,
    "user": Role.CUSTOMER,
    "agent": Role.AGENT,
    "assistant": Role.AGENT,
    "bot": Role.BOT,
    "system": Role.SYSTEM,
}


class SuggestionStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    EDITED = "edited"
    REJECTED = "rejected"


class AdapterStatus(StrEnum):
    CANDIDATE = "candidate"  # registered by hand (admin API / CLI), activated right away
    APPROVED = "approved"  # passed the nightly gate; the serving process activates it
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


class TrainingRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # a candidate passed the gate and is in the registry
    REJECTED = "rejected"  # the gate refused the candidate (a verdict, not a crash)
    FAILED = "failed"  # an error stopped the run
    SKIPPED = "skipped"  # too little new data


class WebhookEventStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"  # will be retried
    DEAD = "dead"  # out of retries; `supportloop connectors replay` picks it up
    ERASED = "erased"  # its body was wiped by an erasure; kept as the idempotency key only
