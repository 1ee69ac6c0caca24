"""Evaluation: reply metrics (loss, ROUGE-L, BLEU, canary leaks), classification scores and
reports, for the nightly gate and for `supportloop eval run`. Pure metric maths over turns
and numbers: no database, no web (tests/test_architecture.py holds it to that)."""

from eval.classification import ClassificationReport, classification_report, report_from_counts
from eval.evaluate import DatasetError, EvalResult, evaluate_file
from eval.grounding import Question, read_questions, summarise, write_grounding_report
from eval.metrics import Scores, prompts_and_references, score, using
from eval.report import write_report

__all__ = [
    "ClassificationReport",
    "DatasetError",
    "EvalResult",
    "Question",
    "Scores",
    "classification_report",
    "evaluate_file",
    "prompts_and_references",
    "read_questions",
    "report_from_counts",
    "score",
    "summarise",
    "using",
    "write_grounding_report",
    "write_report",
]
