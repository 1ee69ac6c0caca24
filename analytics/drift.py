"""Bias and drift watch: the outcome metrics split by segment (channel, language, customer
tier, verified or not), compared between the adapter now serving and the one before it. A
segment whose metric got worse by more than SUPPORTLOOP_ANALYTICS_DRIFT_THRESHOLD (a share, or
CSAT / 5), with at least SUPPORTLOOP_ANALYTICS_DRIFT_MIN_CONVERSATIONS conversations on each
side, is flagged: on the dashboard and in the nightly report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from sqlmodel import Session

from analytics.outcomes import SEGMENTS, grouped, rates, rollups
from core.models import BASE_MODEL_KEY, OutcomeRollup, Tenant
from core.settings import Settings

# metric -> +1 when higher is better, -1 when lower is better
WATCHED = {"resolution_rate": 1, "csat": 1, "thumbs_down_rate": -1, "escalation_rate": -1}


@dataclass(frozen=True)
class DriftFlag:
    segment: str
    value: str
    metric: str
    before: float
    after: float
    conversations_before: int
    conversations_after: int

    def describe(self) -> str:
        return (
            f"{self.segment}={self.value}: {self.metric} {self.before:g} -> {self.after:g} "
            f"({self.conversations_before} vs {self.conversations_after} conversations)"
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "text": self.describe()}


def drift_flags(
    rows: Iterable[OutcomeRollup],
    *,
    before_key: int,
    after_key: int,
    threshold: float,
    min_conversations: int,
) -> list[DriftFlag]:
    rows = list(rows)
    flags = []
    for segment in SEGMENTS:
        groups = grouped(rows, "adapter_key", segment)
        for value in sorted({key[1] for key in groups}, key=str):
            before = rates(groups.get((before_key, value), {}))
            after = rates(groups.get((after_key, value), {}))
            n_before, n_after = int(before["conversations"] or 0), int(after["conversations"] or 0)
            if min(n_before, n_after) < min_conversations:
                continue
            for metric, direction in WATCHED.items():
                old, new = before[metric], after[metric]
                if old is None or new is None:
                    continue
                scale = 5.0 if metric == "csat" else 1.0
                if (old - new) * direction / scale > threshold:
                    flags.append(
                        DriftFlag(segment, str(value), metric, old, new, n_before, n_after)
                    )
    return flags


def tenant_drift(*, session: Session, tenant: Tenant, settings: Settings) -> list[DriftFlag]:
    """The serving adapter against the one before it (or the base model)."""
    if tenant.active_adapter_id is None or tenant.id is None:
        return []
    return drift_flags(
        rollups(session=session, tenant_id=tenant.id),
        before_key=tenant.previous_adapter_id or BASE_MODEL_KEY,
        after_key=tenant.active_adapter_id,
        threshold=settings.analytics_drift_threshold,
        min_conversations=settings.analytics_drift_min_conversations,
    )
