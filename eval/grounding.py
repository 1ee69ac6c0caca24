"""Grounding metrics: how well answers come from the help center, scored the way the
help-center dataset's README defines it (../shared/datasets/help-center/README.md).

Questions are JSON lines: id, question, answerable, gold_articles, must_contain, optional
history. Results are what the product did for each: the articles it retrieved (best first),
the answer text, the articles it cited, the sources it showed, and whether it refused.
An answer counts as correct when it does not refuse and every must_contain fact is in the
answer or in the excerpts shown under it (what the customer reads).
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.evaluate import DatasetError

KS = (1, 3, 5)
_NUM = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fourteen": "14",
    "fifteen": "15", "twenty": "20", "thirty": "30",
}  # fmt: skip


def normalise(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).lower()
    s = s.replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'")
    s = re.sub(r"\bnoon\b", "12:00 pm", s)
    s = re.sub(r"\bmidnight\b", "12:00 am", s)
    s = re.sub(r"\b([ap])\.m\.", r"\1m", s)
    s = re.sub(r"(\d)\s*([ap]m)\b", r"\1 \2", s)
    s = re.sub(r"(?<![\d:])(\d{1,2}) ([ap]m)\b", r"\1:00 \2", s)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"\s*(per ?cent|percent)\b", "%", s)
    s = re.sub(r"\b(" + "|".join(_NUM) + r")\b", lambda m: _NUM[m.group(1)], s)
    s = re.sub(r",(\s+(or|and)\b)", r"\1", s)
    return re.sub(r"\s+", " ", s).strip()


def contains(answer_norm: str, fact: str) -> bool:
    """Respects number and word starts ("150" is not in "1500"); a trailing letter is free."""
    f = normalise(fact)
    pattern = re.escape(f)
    if f[:1].isdigit():
        pattern = r"(?<![\d.])" + pattern
    elif f[:1].isalpha():
        pattern = r"(?<![a-z0-9])" + pattern
    if f[-1:].isdigit():
        pattern += r"(?!\d)"
    return re.search(pattern, answer_norm) is not None


def facts_present(text: str, must_contain: Sequence[str]) -> bool:
    normalised = normalise(text)
    return all(contains(normalised, fact) for fact in must_contain)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool
    gold_articles: list[str] = field(default_factory=list)
    must_contain: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)  # {"role", "text"}


def read_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            history = row.get("history") or []
            if not all(isinstance(t, dict) and {"role", "text"} <= t.keys() for t in history):
                raise ValueError("history turns need 'role' and 'text'")
            questions.append(
                Question(
                    id=str(row["id"]),
                    question=str(row["question"]),
                    answerable=bool(row.get("answerable", True)),
                    gold_articles=list(row.get("gold_articles") or []),
                    must_contain=list(row.get("must_contain") or []),
                    history=history,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: not a question ({exc})") from None
    if not questions:
        raise DatasetError(f"{path}: no questions")
    return questions


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarise(
    questions: Sequence[Question],
    results: Sequence[dict[str, Any]],
    *,
    superseded: set[str] = frozenset(),  # type: ignore[assignment]
) -> dict[str, Any]:
    """The dataset's metrics over one run. ``superseded``: ids of superseded documents."""
    answerable = [(q, r) for q, r in zip(questions, results, strict=True) if q.answerable]
    unanswerable = [(q, r) for q, r in zip(questions, results, strict=True) if not q.answerable]
    summary: dict[str, Any] = {"questions": len(questions), "answerable": len(answerable)}
    for k in KS:
        summary[f"recall@{k}"] = _mean(
            [len(set(r["retrieved"][:k]) & set(q.gold_articles)) / len(q.gold_articles)
             for q, r in answerable if q.gold_articles]
        )  # fmt: skip
        summary[f"hit@{k}"] = _mean(
            [float(bool(set(r["retrieved"][:k]) & set(q.gold_articles))) for q, r in answerable]
        )

    def shown(r: dict[str, Any]) -> str:
        return " ".join([r["answer"], *(s.get("excerpt", "") for s in r["sources_shown"])])

    correct = [not r["refused"] and facts_present(shown(r), q.must_contain) for q, r in answerable]
    summary["answer_correctness"] = _mean([float(c) for c in correct])
    summary["answer_text_correctness"] = _mean(
        [
            float(not r["refused"] and facts_present(r["answer"], q.must_contain))
            for q, r in answerable
        ]
    )
    summary["refusal_accuracy"] = _mean([float(r["refused"]) for _, r in unanswerable])
    summary["over_refusal"] = _mean([float(r["refused"]) for _, r in answerable])
    cited = [(q, c) for q, r in zip(questions, results, strict=True) for c in r["citations"]]
    summary["citation_precision"] = _mean(
        [float(c in q.gold_articles and c not in superseded) for q, c in cited]
    )
    summary["superseded_citations"] = sum(1 for _, c in cited if c in superseded)
    right = sum(correct) + sum(1 for _, r in unanswerable if r["refused"])
    summary["overall"] = round(right / len(questions), 4)
    return summary


SUMMARY_ORDER = [
    "recall@1", "recall@3", "recall@5", "answer_correctness", "answer_text_correctness",
    "refusal_accuracy", "over_refusal", "citation_precision", "superseded_citations", "overall",
]  # fmt: skip


def write_grounding_report(
    out_dir: Path,
    questions: Sequence[Question],
    results: Sequence[dict[str, Any]],
    summary: dict[str, Any],
) -> tuple[Path, Path, Path]:
    """results.jsonl, summary.json and report.html in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.jsonl"
    results_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    esc = html.escape
    head = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(str(summary.get(k)))}</td></tr>" for k in SUMMARY_ORDER
    )
    rows = []
    for q, r in zip(questions, results, strict=True):
        ok = "refused" if r["refused"] else "answered"
        rows.append(
            f"<tr><td>{esc(q.id)}</td><td>{esc(q.question)}</td><td>{'yes' if q.answerable else 'no'}</td>"
            f"<td>{esc(', '.join(q.gold_articles))}</td><td>{esc(', '.join(r['retrieved'][:3]))}</td>"
            f"<td>{esc(ok)}</td><td>{esc(r['answer'])}</td><td>{esc(', '.join(r['citations']))}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Grounding evaluation</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}</style></head>
<body><h1>Grounding evaluation</h1><table>{head}</table>
<h2>Questions</h2><table><tr><th>id</th><th>question</th><th>answerable</th><th>gold</th>
<th>retrieved (top 3)</th><th>outcome</th><th>answer</th><th>cited</th></tr>{"".join(rows)}</table>
</body></html>"""
    report_path = out_dir / "report.html"
    report_path.write_text(page)
    return results_path, summary_path, report_path
