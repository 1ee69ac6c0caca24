"""What the REST API accepts and returns. Table models never leave the service directly."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.models import AdapterStatus, BotMode, ConversationStatus, Role


class TenantCreate(BaseModel):
    slug: str = Field(min_length=1, max_length=63, examples=["acme"])
    name: str = Field("", max_length=200)
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to open the widget's WebSocket."
    )
    bot_mode: BotMode = BotMode.AUTO


class TenantUpdate(BaseModel):
    bot_mode: BotMode | None = None
    allowed_origins: list[str] | None = Field(
        None, description="Replaces the list; [] lets any origin open the widget."
    )


class TenantPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    allowed_origins: list[str]
    bot_mode: BotMode
    active_adapter_id: int | None
    created_at: datetime


class TenantCreated(BaseModel):
    tenant: TenantPublic
    api_key: str = Field(description="Shown once; only its hash is stored.")


class ApiKeyPublic(BaseModel):
    """A key as an operator sees it: never the key, only the prefix that tells keys apart."""

    model_config = ConfigDict(from_attributes=True)

    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyRotated(BaseModel):
    api_key: str = Field(description="The new key, shown once; the old ones are refused now.")
    revoked: list[ApiKeyPublic]


class ConversationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    channel: str
    source: str
    external_id: str | None
    subject: str
    status: ConversationStatus
    assigned_agent: str | None
    csat: int | None
    last_seq: int
    created_at: datetime
    updated_at: datetime


class ConversationsPage(BaseModel):
    items: list[ConversationPublic]
    next_before: int | None = Field(
        description="Pass as `before` to get the next (older) page; null on the last page."
    )


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int
    seq: int
    role: Role
    text: str
    internal_note: bool
    author: str | None
    client_id: str | None
    sent_at: datetime
    created_at: datetime


class MessagesPage(BaseModel):
    items: list[MessagePublic]


class AgentMessageCreate(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    author: str | None = Field(
        None, max_length=200, description="Agent name shown to the customer."
    )
    internal_note: bool = Field(
        False, description="Visible to agents only; never sent or trained on."
    )
    client_id: str | None = Field(None, max_length=100, description="Retry-safe dedupe key.")


class AdapterPublish(BaseModel):
    name: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A name never used before (engines cache by name).",
    )
    path: str = Field(min_length=1, description="Adapter directory, readable by every engine.")


class AdapterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    base_model: str
    path: str
    sha256: str
    status: AdapterStatus
    status_reason: str | None
    parent_id: int | None
    created_at: datetime
    activated_at: datetime | None


class AdapterList(BaseModel):
    active: str | None
    previous: str | None
    loaded: list[str] = Field(description="Versions the engine holds right now.")
    items: list[AdapterPublic]
