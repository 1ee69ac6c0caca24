"""Prometheus counters of webhook ingestion (served at /metrics by the composition root)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOK_DELIVERIES = Counter(
    "supportloop_webhook_deliveries",
    "CRM webhook deliveries by provider and HTTP answer (200 stored or duplicate, 202 retry "
    "later, 400 malformed, 401 refused).",
    ["provider", "status"],
)
WEBHOOK_SECONDS = Histogram(
    "supportloop_webhook_seconds",
    "Time from receiving a webhook to answering it (verification, storage, commit).",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
