"""The one settings object. Nothing else in SupportLoop reads the environment.

Every value can be set as ``SUPPORTLOOP_<NAME>`` or in a ``.env`` file; the defaults run the
product with no configuration at all (SQLite under ./var, the embedded engine, the base model
under ./var/models).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")
ENV_FILE = ".env"


class TrainingConfig(BaseSettings):
    """How the nightly loop trains a LoRA adapter: its own settings group, read from
    ``SUPPORTLOOP_FINETUNE_<NAME>``, and saved as ``training_config.json`` beside every adapter
    it trains, so a version can always say how it was made. Defaults suit a few hundred
    conversations on the 135M base model."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTLOOP_FINETUNE_",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    lora_rank: int = Field(8, ge=1, description="Capped at max_lora_rank, what serving takes.")
    lora_alpha: int = Field(16, ge=1, description="Usually twice the rank.")
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(2.0, gt=0)
    batch_size: int = Field(4, ge=1)
    max_seq_len: int = Field(
        512, ge=64, description="Tokens per example; longer ones lose their oldest turns."
    )
    seed: int = Field(1234, description="Data order, validation split, replay sample, canaries.")
    dropout: float = Field(0.05, ge=0, lt=1)
    warmup_fraction: float = Field(0.1, ge=0, lt=1, description="Linear warm-up, then decay.")
    checkpoint_every: int = Field(
        10, ge=1, description="Optimizer steps between checkpoints (resume after a kill)."
    )
    processes: int = Field(
        1,
        ge=1,
        description="Training processes (PyTorch DDP under torchrun): one per GPU, or gloo "
        "processes on a CPU. The same batches and loss as one process.",
    )


class KnowledgeConfig(BaseSettings):
    """Grounded answers (knowledge/): when the help center is good enough to answer from, and
    how much of it goes into a prompt. Read from ``SUPPORTLOOP_KNOWLEDGE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTLOOP_KNOWLEDGE_",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    enabled: bool = Field(
        True,
        description="Ground replies in the tenant's documents; a tenant without documents is "
        "answered from the model alone either way.",
    )
    min_support: float = Field(
        0.55,
        ge=0,
        le=1,
        description="Cosine the best sentence or table row of the top articles must reach for "
        "the bot to answer; below it the bot says it does not know and offers a person.",
    )
    max_sources: int = Field(
        1,
        ge=1,
        le=5,
        description="Articles cited under one reply (a second one only when it supports the "
        "question within source_margin of the first).",
    )
    source_margin: float = Field(
        0.05, ge=0, description="A runner-up article is cited if this close to the best one."
    )
    context_chunks: int = Field(2, ge=1, le=12, description="Chunks put into the prompt.")
    min_overlap: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Share of a generated reply's words the articles must contain; a reply "
        "below it (or with a figure the articles lack) is replaced by a quote of the article.",
    )
    context_tokens: int = Field(
        400, ge=64, description="Token budget of the help-center excerpts in one prompt."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTLOOP_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    var_dir: Path = Field(
        DEFAULT_VAR_DIR, description="Where state lives when nothing else is set."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty means a SQLite file under var_dir. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    redis_url: str = Field(
        "",
        description="Redis for several workers (redis://host:6379/0): live events travel "
        "between workers over it. Empty: one process, events in memory.",
    )
    redis_prefix: str = Field(
        "supportloop",
        description="Prefix of every Redis key and channel (one per deployment sharing a Redis).",
    )
    reply_lease_s: float = Field(
        30.0,
        gt=1,
        description="With Redis: a worker's hold on a conversation it is answering, renewed "
        "while it generates; a worker that dies loses it after this long.",
    )
    admin_token: str = Field(
        "", description="Bearer token for admin endpoints; empty disables them."
    )

    engine: Literal["embedded", "vllm"] = Field("embedded", description="Serving backend.")
    model_dir: Path | None = Field(
        None, description="Prepared base model; default var_dir/models/…"
    )
    device: str = Field("auto", description="torch device for the embedded engine: auto, cpu, cuda")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description=(
            "auto: bfloat16 on GPU; on CPU float32 for the embedded engine, and for vLLM "
            "bfloat16 only where the CPU has AVX512-BF16 or AMX"
        ),
    )

    # vLLM (SUPPORTLOOP_ENGINE=vllm). Several replicas: a JSON list of base URLs.
    vllm_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8100"])
    vllm_served_model: str = Field("base", description="Name vLLM serves the base model under.")
    vllm_port: int = Field(8100, description="Port of `supportloop vllm serve`.")
    vllm_max_loras: int = Field(
        4, ge=2, description="Adapters per batch; >=2 so old and new overlap."
    )
    vllm_kv_cache_gib: int = Field(1, ge=1, description="KV cache of the CPU build, in GiB.")
    vllm_timeout_s: float = 120.0
    max_lora_rank: int = Field(
        16, description="Largest LoRA rank served; the trainer must not exceed it."
    )
    adapter_sync_interval_s: float = Field(
        2.0,
        description="How often serving is checked against the registry (reload after an "
        "engine restart, unload versions nobody uses).",
    )

    # Webhook secrets, referenced from the environment and never stored or logged:
    # SUPPORTLOOP_CONNECTOR_SECRETS='{"acme/zendesk": ["new-secret", "old-secret"]}'.
    # Several secrets per key allow rotation.
    connector_secrets: dict[str, list[str]] = Field(default_factory=dict, repr=False)
    webhook_tolerance_s: int = Field(300, description="Oldest accepted webhook timestamp.")
    max_webhook_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest webhook body accepted (413 above)."
    )
    # Provider API access per tenant, also from the environment only:
    # SUPPORTLOOP_CONNECTOR_CREDENTIALS='{"acme/intercom": {"api_base": "...", "token": "..."}}'
    connector_credentials: dict[str, dict[str, str]] = Field(default_factory=dict, repr=False)
    # Author ids our own integration writes under, per "tenant/provider": never ingested, so the
    # bot never trains on itself (loop prevention).
    connector_integration_users: dict[str, list[str]] = Field(default_factory=dict)
    webhook_max_attempts: int = Field(
        6, ge=1, description="Processing attempts before dead-letter."
    )
    webhook_retry_base_s: float = Field(30.0, description="First retry delay; doubles each time.")
    webhook_retry_interval_s: float = Field(10.0, description="How often due retries are run.")

    # The widget, visitor identity and the agent console (chat_service/identity.py, console/).
    secret_key: str = Field(
        "",
        repr=False,
        description="Signs visitor tokens and console CSRF tokens; empty: a random key is "
        "generated once into var_dir/secret_key.",
    )
    # Tenants mark customers verified by passing a JWT they signed (HS256) with their own
    # secret, from the environment only: SUPPORTLOOP_WIDGET_JWT_SECRETS='{"acme": ["s1"]}'.
    widget_jwt_secrets: dict[str, list[str]] = Field(default_factory=dict, repr=False)
    visitor_token_days: int = Field(365, ge=1, description="Lifetime of an anonymous visitor.")
    console_session_hours: int = Field(12, ge=1, description="Console sign-in lifetime.")
    console_session_check_s: float = Field(
        15.0,
        gt=0,
        description="How often an open console socket re-checks its session (a signed-out or "
        "expired agent stops receiving within this time).",
    )
    cookie_secure: bool = Field(
        True,
        description="Mark the console cookie Secure (HTTPS only). Browsers still accept it on "
        "http://localhost; turn off only to test over plain HTTP on another host.",
    )
    handoff_keywords: list[str] = Field(
        default_factory=lambda: [
            "human",
            "agent",
            "real person",
            "representative",
            "operator",
            "talk to someone",
        ],
        description="Customer words that escalate to a human (whole words, any case).",
    )
    handoff_after_failed_answers: int = Field(
        2,
        ge=1,
        description="Failed or rated-down bot answers (counted since a human last took or "
        "handed back the conversation) that escalate.",
    )
    handoff_timeout_s: float = Field(
        300.0, gt=0, description="Unclaimed escalations after this tell the customer."
    )
    handoff_check_interval_s: float = Field(5.0, gt=0)

    # Outcome analytics (analytics/outcomes.py, the dashboard).
    analytics_followup_window_h: float = Field(
        24.0, gt=0, description="A customer message this soon after resolution is a follow-up."
    )
    analytics_refresh_interval_s: float = Field(
        30.0, gt=0, description="How often serve folds changed conversations into the rollups."
    )
    analytics_drift_min_conversations: int = Field(
        20, ge=1, description="Conversations a segment needs on each side to be judged."
    )
    analytics_drift_threshold: float = Field(
        0.1, gt=0, description="A segment metric this much worse (share, or CSAT/5) is flagged."
    )

    demo_tenant: str = Field(
        "demo",
        description="Tenant created at start-up for the demo page at /; empty disables both.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses (or CIDR ranges) of the reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty: the socket's peer is the client.",
    )
    metrics_token: str = Field(
        "",
        repr=False,
        description="Bearer token for /metrics; empty: /metrics is open but names no tenant.",
    )
    # Durable acknowledgements (core/group_commit.py): writes that arrive while a commit is
    # flushed share the next one. 1 gives every write its own commit (the benchmark baseline).
    group_commit_max_batch: int = Field(
        256, ge=1, description="Most writes one shared commit holds."
    )
    # Bounded model work (chat_service/reply_slots.py, token_budget.py).
    max_concurrent_replies: int = Field(8, ge=1, description="Replies generated at once.")
    max_concurrent_replies_per_tenant: int = Field(
        4, ge=1, description="Of those, at most this many for one tenant."
    )
    reply_queue_per_tenant: int = Field(
        20,
        ge=0,
        description="Replies of one tenant waiting for a slot; beyond it a reply is refused "
        "('busy', handed to a person).",
    )
    widget_connections_per_ip: int = Field(
        50, ge=1, description="Open widget sockets from one client address (1013 beyond)."
    )
    widget_connections_per_tenant: int = Field(
        10_000, ge=1, description="Open widget sockets of one tenant (1013 beyond)."
    )
    widget_frames_per_minute: int = Field(
        120, ge=1, description="Frames of any type one widget socket may send per minute."
    )
    unanswered_sweep_s: float = Field(
        30.0,
        gt=0,
        description="How often serve looks for acknowledged customer messages left without a "
        "reply (engine failure) and answers them; also done once at start (after a crash).",
    )
    unanswered_max_age_h: float = Field(
        24.0, gt=0, description="Older unanswered messages are left to people."
    )
    shutdown_drain_s: float = Field(
        10.0, ge=0, description="On SIGTERM, how long replies under way may finish."
    )
    tenant_daily_tokens: int = Field(
        2_000_000, ge=0, description="Tokens generated per tenant per UTC day; 0: no cap."
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body read (413 above, before it is buffered).",
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest knowledge-document upload."
    )

    system_prompt: str = (
        "You are a friendly, concise customer-support assistant. Answer the customer's question "
        "helpfully and politely."
    )
    max_new_tokens: int = Field(200, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    context_tokens: int = Field(
        2048,
        ge=256,
        description="The model's window for prompt plus reply, on both engines (vLLM's "
        "--max-model-len). The conversation is fitted into it less max_new_tokens: the system "
        "prompt stays, the oldest turns go. SmolLM2 handles 8k; support chats are short and "
        "the KV cache is memory.",
    )

    # Abuse limits (security goals 5 and 6).
    ws_max_message_bytes: int = Field(64 * 1024, description="Larger frames are closed with 1009.")
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 20.0
    # Chat frames are a few hundred bytes: compressing them costs CPU per frame and a zlib
    # context (tens of KiB) per socket for almost no saving on the wire.
    ws_per_message_deflate: bool = Field(
        False, description="Offer permessage-deflate compression to WebSocket clients."
    )
    max_message_chars: int = Field(4000, description="Longest customer or agent message accepted.")
    widget_messages_per_minute: int = Field(
        20, ge=1, description="Customer messages per minute on one connection."
    )
    widget_messages_per_minute_per_ip: int = Field(
        120, ge=1, description="Per client IP (several customers may share one office NAT)."
    )
    widget_messages_per_minute_per_tenant: int = Field(1200, ge=1)

    # The nightly LoRA loop (finetune_loop/, eval/). Defaults suit a few hundred conversations.
    finetune_min_examples: int = Field(
        20, ge=1, description="Fewer new examples than this and the nightly run skips."
    )
    finetune_max_examples_per_customer: int = Field(
        5, ge=1, description="Poisoning guard: one customer cannot dominate a night's data."
    )
    finetune_require_verified: bool = Field(
        True,
        description="Widget conversations train only when the customer is verified; CRM and "
        "file imports are the tenant's own records and count as verified.",
    )
    finetune_order_id_patterns: list[str] = Field(
        default_factory=lambda: [r"(?i:\border)[ #:-]*(?:no\.?\s*)?([A-Z0-9]*\d[A-Z0-9]{3,})\b"],
        description="Regexes of the tenant's order ids, redacted like other PII (group 1 "
        "when the pattern has one, else the whole match).",
    )
    finetune_bot_target_min_csat: int = Field(
        4,
        ge=0,
        le=5,
        description="Targets come from people: agents' messages and reviewed suggestions. A "
        "bot reply is learned only with a positive signal: the customer rated it up, or (1-5) "
        "its conversation was resolved without a handoff and rated at least this CSAT. 0: "
        "thumbs up only.",
    )
    finetune_near_duplicate_jaccard: float = Field(
        0.9, gt=0, le=1, description="Examples this similar (word 3-grams) count as one."
    )
    finetune_replay_fraction: float = Field(
        0.2, ge=0, le=1, description="Share of earlier windows' examples mixed in (forgetting)."
    )
    finetune_validation_fraction: float = Field(0.15, gt=0, lt=1)
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig(),
        description="The trainer's settings (SUPPORTLOOP_FINETUNE_LORA_RANK, ...).",
    )
    knowledge: KnowledgeConfig = Field(
        default_factory=lambda: KnowledgeConfig(),
        description="Grounded answers (SUPPORTLOOP_KNOWLEDGE_MIN_SUPPORT, ...).",
    )
    finetune_gate_tolerance: float = Field(
        0.02,
        ge=0,
        description="Relative slack: the candidate may be this much worse than the active "
        "adapter on a gate metric and still pass.",
    )
    finetune_eval_generations: int = Field(
        8, ge=1, description="Validation replies generated for ROUGE-L and BLEU."
    )
    finetune_eval_max_new_tokens: int = Field(48, ge=1, description="Length of generated replies.")
    finetune_keep_versions: int = Field(5, ge=2, description="Adapter versions kept on disk.")
    finetune_nightly_at: str = Field(
        "03:00", description="Local time of the nightly run (HH:MM); empty disables it."
    )
    finetune_timezone: str = Field("UTC", description="Time zone of finetune_nightly_at.")

    @model_validator(mode="after")
    def _reply_leaves_room_for_a_prompt(self) -> Settings:
        if self.max_new_tokens > self.context_tokens // 2:
            raise ValueError(
                f"max_new_tokens ({self.max_new_tokens}) may take at most half of "
                f"context_tokens ({self.context_tokens}); the rest is the conversation"
            )
        return self

    def training_dir(self, tenant_slug: str) -> Path:
        """Where a tenant's training files live (the nightly run writes, erasure scrubs)."""
        return self.var_dir / "finetune" / tenant_slug

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'supportloop.db'}"

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.var_dir / "models" / "smollm2-135m-instruct"


@lru_cache
def get_settings() -> Settings:
    return Settings()
