"""Accuracy, precision, recall and F1 (per class and macro) for the product's yes/no calls,
checked against what agents actually did (analytics/outcomes.py derives both from conversations).

Written out rather than taken from scikit-learn: a few lines of counting, and it keeps a
100 MB dependency out of the service.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int  # how many cases really were this class


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    per_class: dict[str, ClassScores] = field(default_factory=dict)
    macro_precision: float = 0.0
    macro_recall: float = 0.0
    macro_f1: float = 0.0
    total: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro": {
                "precision": round(self.macro_precision, 4),
                "recall": round(self.macro_recall, 4),
                "f1": round(self.macro_f1, 4),
            },
            "per_class": {
                label: {
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "f1": round(s.f1, 4),
                    "support": s.support,
                }
                for label, s in self.per_class.items()
            },
            "total": self.total,
        }


def _ratio(numerator: int, denominator: int) -> float:
    """0 for an empty denominator (scikit-learn's zero_division=0)."""
    return numerator / denominator if denominator else 0.0


def classification_report(
    actual: Sequence[Hashable], predicted: Sequence[Hashable]
) -> ClassificationReport:
    """Per class: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean;
    macro = the unweighted mean over the classes seen in either sequence."""
    if len(actual) != len(predicted):
        raise ValueError("actual and predicted must have the same length")
    labels = sorted({*actual, *predicted}, key=str)
    per_class = {}
    for label in labels:
        tp = sum(a == label and p == label for a, p in zip(actual, predicted, strict=True))
        fp = sum(a != label and p == label for a, p in zip(actual, predicted, strict=True))
        fn = sum(a == label and p != label for a, p in zip(actual, predicted, strict=True))
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        per_class[str(label)] = ClassScores(precision, recall, f1, tp + fn)
    n = len(labels)
    correct = sum(a == p for a, p in zip(actual, predicted, strict=True))
    return ClassificationReport(
        accuracy=_ratio(correct, len(actual)),
        per_class=per_class,
        macro_precision=sum(s.precision for s in per_class.values()) / n if n else 0.0,
        macro_recall=sum(s.recall for s in per_class.values()) / n if n else 0.0,
        macro_f1=sum(s.f1 for s in per_class.values()) / n if n else 0.0,
        total=len(actual),
    )


def report_from_counts(
    *, tp: int, fp: int, fn: int, tn: int, positive: str, negative: str
) -> ClassificationReport:
    """The same report for a yes/no call from its confusion counts (what the rollups keep)."""
    actual = [positive] * (tp + fn) + [negative] * (fp + tn)
    predicted = [positive] * tp + [negative] * fn + [positive] * fp + [negative] * tn
    return classification_report(actual, predicted)
