"""/metrics in the Prometheus text format: the packages' own counters (chat_service,
connectors: process-wide) plus registry numbers read from the database at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from core.db import session_scope
from core.models import AdapterVersion, Tenant, TrainingRun


class RegistryCollector(Collector):
    """Training runs and adapter versions per tenant and status (the nightly loop runs in
    another process, so its outcomes are read from the database, not counted in memory)."""

    def __init__(self, get_db: Callable[[], DbEngine], *, name_tenants: bool) -> None:
        self._get_db = get_db
        self._name_tenants = name_tenants

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["tenant", "status"] if self._name_tenants else ["status"]
        runs = GaugeMetricFamily(
            "supportloop_training_runs",
            "Nightly training runs by tenant and outcome (succeeded, failed, skipped, running).",
            labels=labels,
        )
        versions = GaugeMetricFamily(
            "supportloop_adapter_versions",
            "Adapter versions by tenant and status.",
            labels=labels,
        )
        with session_scope(self._get_db()) as session:
            for model, family in ((TrainingRun, runs), (AdapterVersion, versions)):
                status, tenant_id = col(model.status), col(model.tenant_id)
                rows = session.exec(
                    select(col(Tenant.slug), status, func.count())
                    .select_from(model)
                    .join(Tenant, col(Tenant.id) == tenant_id)
                    .group_by(col(Tenant.slug), status)
                ).all()
                totals: Counter[tuple[str, ...]] = Counter()
                for slug, state, count in rows:
                    key: tuple[str, ...] = (
                        (slug, str(state)) if self._name_tenants else (str(state),)
                    )
                    totals[key] += count
                for key, count in sorted(totals.items()):
                    family.add_metric(list(key), count)
        yield runs
        yield versions


def metrics_text(get_db: Callable[[], DbEngine], *, name_tenants: bool) -> bytes:
    """``name_tenants``: label per-tenant series with the slug (an authenticated scraper);
    otherwise they are summed over tenants, so an open /metrics lists no customer."""
    own = CollectorRegistry(auto_describe=False)
    own.register(RegistryCollector(get_db, name_tenants=name_tenants))
    return generate_latest(REGISTRY) + generate_latest(own)
