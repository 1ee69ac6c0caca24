"""The grounding metrics, scored as the help-center dataset's README defines them."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval import DatasetError, Question, read_questions, summarise
from eval.grounding import facts_present


@pytest.mark.parametrize(
    ("answer", "fact", "present"),
    [
        ("We close at 7:30pm on weekdays.", "7:30 pm", True),
        ("open 7 am to noon", "7:00 am", True),
        ("open 7 am to noon", "12:00 pm", True),
        ("That costs 1,500 points.", "1500", True),
        ("That costs 1500 points.", "150", False),
        ("Points expire after nine months.", "9 months", True),
        ("Bring it to our shopping centre", "PIN", False),
        ("Fees: $3.49 and $12", "$3.49", True),
    ],
)
def test_facts_are_matched_after_normalising_and_respect_word_starts(
    answer: str, fact: str, present: bool
) -> None:
    assert facts_present(answer, [fact]) is present


def test_the_summary_counts_retrieval_answers_refusals_and_citations() -> None:
    questions = [
        Question("q1", "how much is delivery", True, ["fees"], ["$3.49"]),
        Question("q2", "opening time", True, ["hours", "stores"], ["7:00 am"]),
        Question("q3", "matcha?", False),
        Question("q4", "nitro?", False),
    ]
    results = [
        {"retrieved": ["fees", "x"], "answer": "It is", "citations": ["fees"], "refused": False,
         "sources_shown": [{"doc_id": "fees", "title": "Fees", "excerpt": "Delivery: $3.49"}]},
        {"retrieved": ["x", "stores", "hours"], "answer": "Sorry", "citations": [],
         "refused": True, "sources_shown": []},
        {"retrieved": ["menu"], "answer": "Sorry", "citations": [], "refused": True,
         "sources_shown": []},
        {"retrieved": ["menu"], "answer": "Yes at 7", "citations": ["old-menu"], "refused": False,
         "sources_shown": []},
    ]  # fmt: skip
    summary = summarise(questions, results, superseded={"old-menu"})
    assert summary["recall@1"] == 0.5  # q1 1.0, q2 0.0
    assert summary["recall@3"] == 1.0
    assert summary["answer_correctness"] == 0.5  # q1 via the excerpt shown; q2 refused
    assert summary["answer_text_correctness"] == 0.0
    assert summary["refusal_accuracy"] == 0.5 and summary["over_refusal"] == 0.5
    assert summary["citation_precision"] == 0.5 and summary["superseded_citations"] == 1
    assert summary["overall"] == 0.5


def test_a_malformed_question_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "hi", "answerable": false}\n{"id": "b"}\n')
    with pytest.raises(DatasetError, match="q.jsonl:2"):
        read_questions(path)
