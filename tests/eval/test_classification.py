"""Classification metrics against hand-computed values."""

from __future__ import annotations

import pytest

from eval.classification import classification_report, report_from_counts


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
