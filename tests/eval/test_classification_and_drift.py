"""Classification metrics and segment drift, against hand-computed values."""

from __future__ import annotations

from datetime import date

import pytest

from core.models import OutcomeRollup
from eval.classification import classification_report, report_from_counts
from eval.drift import drift_flags


def test_precision_recall_f1_per_class_and_macro() -> None:
    actual = ["human", "human", "bot", "bot", "bot", "human"]
    predicted = ["human", "bot", "bot", "human", "bot", "human"]
    report = classification_report(actual, predicted)
    # human: TP 2, FP 1, FN 1 -> P 2/3, R 2/3, F1 2/3; bot: TP 2, FP 1, FN 1 -> the same
    assert report.accuracy == pytest.approx(4 / 6)
    for label in ("human", "bot"):
        scores = report.per_class[label]
        assert (scores.precision, scores.recall, scores.f1) == pytest.approx((2 / 3,) * 3)
        assert scores.support == 3
    assert report.macro_f1 == pytest.approx(2 / 3)


def test_a_class_never_predicted_scores_zero_not_an_error() -> None:
    report = classification_report(["yes", "no", "no"], ["no", "no", "no"])
    assert report.per_class["yes"].precision == 0.0 and report.per_class["yes"].recall == 0.0
    assert report.per_class["no"].recall == 1.0 and report.accuracy == pytest.approx(2 / 3)


def test_counts_give_the_same_report_as_the_sequences() -> None:
    from_counts = report_from_counts(tp=3, fp=1, fn=2, tn=4, positive="y", negative="n")
    actual = ["y"] * 3 + ["n"] + ["y"] * 2 + ["n"] * 4
    predicted = ["y"] * 3 + ["y"] + ["n"] * 2 + ["n"] * 4
    assert from_counts == classification_report(actual, predicted)


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
