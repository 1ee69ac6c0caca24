"""Segment drift after an adapter switch, against hand-computed values."""

from __future__ import annotations

from datetime import date

from analytics.drift import drift_flags
from core.models import OutcomeRollup


def bucket(adapter: int, language: str, conversations: int, resolved: int) -> OutcomeRollup:
    return OutcomeRollup(
        tenant_id=1,
        day=date(2026, 11, 1),
        adapter_key=adapter,
        channel="widget",
        language=language,
        tier="none",
        verified=True,
        sums={"conversations": conversations, "resolved_no_followup": resolved},
    )


def test_a_segment_that_got_worse_after_the_switch_is_flagged() -> None:
    rows = [
        bucket(1, "en", 100, 70),
        bucket(2, "en", 100, 80),  # English: better, so overall only slightly worse
        bucket(1, "de", 40, 28),
        bucket(2, "de", 40, 16),  # German: 0.70 -> 0.40
        bucket(1, "fr", 5, 5),
        bucket(2, "fr", 5, 0),  # French: too few conversations to judge
    ]
    flags = drift_flags(rows, before_key=1, after_key=2, threshold=0.1, min_conversations=20)
    assert [(f.segment, f.value, f.metric, f.before, f.after) for f in flags] == [
        ("language", "de", "resolution_rate", 0.7, 0.4)
    ]
    assert flags[0].describe() == (
        "language=de: resolution_rate 0.7 -> 0.4 (40 vs 40 conversations)"
    )
