"""Evaluate any adapters on any conversation file: `supportloop eval run`.

The file is the generic conversation JSONL (one conversation a line, ``messages`` with
``role`` and ``text``); agent and bot turns are the references. Each model is scored with the
same metrics the nightly gate uses (eval/metrics.py) plus the share of refusals, and the
result is written as report.json + report.html (with plots) for side-by-side comparison.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.chat_format import Turn, conversation_turns, has_target
from core.models.enums import ROLE_ALIASES
from core.settings import Settings
from engines.base_model import load_base, pick_device
from eval.metrics import prompts_and_references, score, using
from eval.report import write_report

# Replies that decline instead of helping; their share should not grow with a new adapter.
REFUSAL = re.compile(
    r"\b(I(?:'m| am) (?:sorry|afraid|unable)|I can(?:not|'t)|as an AI|I do(?:n't| not) have "
    r"(?:access|information))\b",
    re.IGNORECASE,
)


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class _Line:
    """One message of a conversation file, in the shape core.chat_format reads."""

    role: str
    text: str
    internal_note: bool

    @classmethod
    def parse(cls, message: dict[str, Any]) -> _Line:
        role = ROLE_ALIASES.get(str(message.get("role", "")).strip().lower())
        return cls(
            role=str(role or "unknown"),
            text=str(message.get("text") or ""),
            internal_note=bool(message.get("internal_note")),
        )


def read_conversations(path: Path, system_prompt: str, limit: int) -> list[list[Turn]]:
    """Up to ``limit`` conversations that have a customer turn and a reply, as model turns."""
    found: list[list[Turn]] = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if len(found) >= limit:
                break
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(f"{path}:{number}: not a conversation ({exc})") from None
            turns, _ = conversation_turns(
                system_prompt,
                [_Line.parse(m) for m in messages if isinstance(m, dict)],
                target=lambda _line: True,
            )
            if has_target(turns):
                found.append(turns)
    if not found:
        raise DatasetError(f"{path}: no conversation with a customer turn and a reply")
    return found


def refusal_rate(replies: list[str]) -> float:
    return sum(bool(REFUSAL.search(r)) for r in replies) / len(replies) if replies else 0.0


@dataclass(frozen=True)
class EvalResult:
    json_path: Path
    html_path: Path
    models: dict[str, dict[str, Any]]


def evaluate_file(
    *,
    settings: Settings,
    models: dict[str, Path | None],
    dataset: Path,
    out_dir: Path,
    limit: int = 50,
    generations: int = 16,
) -> EvalResult:
    """``models``: report name -> adapter directory (None: the base model)."""
    from peft import PeftModel

    conversations = read_conversations(dataset, settings.system_prompt, limit)
    model, tokenizer = load_base(settings.resolved_model_dir, pick_device(settings.device))
    adapters = {name: path for name, path in models.items() if path is not None}
    for i, (name, adapter_dir) in enumerate(adapters.items()):
        if i == 0:
            model = PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=name)
        else:
            model.load_adapter(str(adapter_dir), adapter_name=name)
    model.eval()
    metrics: dict[str, dict[str, Any]] = {}
    replies: dict[str, list[str]] = {}
    for name in models:
        with using(model, name if name in adapters else None):
            scores = score(
                model,
                tokenizer,
                conversations,
                max_len=settings.training.max_seq_len,
                context_tokens=settings.context_tokens,
                generations=generations,
                max_new_tokens=settings.finetune_eval_max_new_tokens,
            )
        metrics[name] = {
            **scores.metrics(),
            "refusal_rate": round(refusal_rate(scores.replies), 4),
        }
        metrics[name].pop("canary_leaks")
        replies[name] = scores.replies
    pairs = prompts_and_references(conversations, generations)
    best = min(metrics, key=lambda n: metrics[n]["loss"])
    report = {
        "title": f"Evaluation on {dataset.name}",
        "summary": f"{len(conversations)} conversations, {len(pairs)} generated replies per "
        f"model, greedy, up to {settings.finetune_eval_max_new_tokens} tokens.",
        "dataset": str(dataset),
        "decision": {"verdict": f"lowest reply loss: {best}", "reasons": []},
        "models": metrics,
        "samples": [
            {
                "prompt": prompt[-1].text,
                "reference": reference,
                "replies": {name: replies[name][i] for name in models},
            }
            for i, (prompt, reference) in enumerate(pairs[:10])
        ],
    }
    json_path, html_path = write_report(report, out_dir)
    return EvalResult(json_path, html_path, metrics)
