"""PII out of training text, with the same placeholder for the same value in a conversation.

Presidio's pattern recognizers do the finding (emails, phone numbers, card numbers with their
Luhn check, IBANs with their checksum) with no NLP model and no network; the tenant's order-id
patterns are added as regex recognizers. Placeholders are numbered per conversation
(`<EMAIL_1>`, `<EMAIL_2>`), so the model learns the shape of a conversation about "that email"
without ever seeing one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

PLACEHOLDERS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "ORDER_ID": "ORDER_ID",
}
MIN_SCORE = 0.3  # presidio scores a bare phone-number match 0.4; checksummed kinds score 1.0


@lru_cache(maxsize=1)
def _recognizers() -> list[Any]:
    import tldextract
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
    )

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled snapshot

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's email check asks tldextract, which would fetch the suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline(pattern_text).fqdn)

    return [OfflineEmailRecognizer(), PhoneRecognizer(), CreditCardRecognizer(), IbanRecognizer()]


@dataclass
class Span:
    start: int
    end: int
    kind: str
    score: float


def find_pii(text: str, order_id_patterns: Sequence[str] = ()) -> list[Span]:
    spans = [
        Span(r.start, r.end, r.entity_type, r.score)
        for recognizer in _recognizers()
        for r in recognizer.analyze(
            text, entities=recognizer.supported_entities, nlp_artifacts=None
        )
        if r.score >= MIN_SCORE
    ]
    for pattern in order_id_patterns:
        for match in re.finditer(pattern, text):
            group = 1 if match.re.groups else 0
            spans.append(Span(match.start(group), match.end(group), "ORDER_ID", 1.0))
    # Overlaps (a card number that also looks like a phone number): the surest, then longest.
    spans.sort(key=lambda s: (-s.score, -(s.end - s.start), s.start))
    kept: list[Span] = []
    for span in spans:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


@dataclass
class Redactor:
    """One per conversation: the same value keeps its placeholder across turns."""

    order_id_patterns: Sequence[str] = ()
    seen: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        out, last = [], 0
        for span in find_pii(text, self.order_id_patterns):
            kind = PLACEHOLDERS.get(span.kind, span.kind)
            value = re.sub(r"\W", "", text[span.start : span.end]).lower()
            placeholder = self.seen.get((kind, value))
            if placeholder is None:
                self.counts[kind] = self.counts.get(kind, 0) + 1
                placeholder = self.seen[(kind, value)] = f"<{kind}_{self.counts[kind]}>"
            out += [text[last : span.start], placeholder]
            last = span.end
        return "".join([*out, text[last:]])

    @property
    def redacted(self) -> int:
        return sum(self.counts.values())
