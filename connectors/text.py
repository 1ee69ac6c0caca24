"""Message bodies as the model should see them: plain text of the newest reply only.

Email-borne support messages carry HTML, the quoted history of the whole thread and the
sender's signature; training on those would teach the model to quote and sign. Pipeline (after
crm-formats §10): drop quoted parts of the HTML (quotequail), convert to text keeping list and
table layout (inscriptis), then cut quoted history, headers and signatures from the plain text
(mail-parser-reply), then normalise whitespace.
"""

from __future__ import annotations

import re

import quotequail
from inscriptis import get_text
from mailparser_reply import EmailReplyParser

_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """The newest part of an HTML body as plain text."""
    kept = "".join(part for is_new, part in quotequail.quote_html(html) if is_new)
    text: str = get_text(kept or html)
    return text.strip()


def newest_reply(text: str, languages: tuple[str, ...] = ("en",)) -> str:
    """Plain text without quoted history, reply headers or signature (unchanged if nothing is
    left after cutting, so a message is never emptied by mistake)."""
    parsed = EmailReplyParser(languages=list(languages)).read(text=text)
    body = parsed.replies[0].body.strip() if parsed.replies else ""
    return body or text.strip()


def clean_body(*, text: str | None = None, html: str | None = None, email: bool = False) -> str:
    """Prefer the vendor's plain text; fall back to converting HTML. Email bodies are also
    stripped of quotes and signatures."""
    body = text if text and text.strip() else html_to_text(html or "")
    if email:
        body = newest_reply(body)
    body = "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").split("\n"))
    return _BLANK_RUNS.sub("\n\n", body).strip()


# What providers (and their users' mail clients) leave where a message was deleted or redacted.
# Such a stub is never stored as a message: it teaches the model nothing and marks an erasure.
_PLACEHOLDERS = {
    "this message was deleted",
    "this message has been deleted",
    "message deleted",
    "this message was removed",
    "this message has been removed",
    "this message was redacted",
    "this message has been redacted",
    "message redacted",
    "[redacted]",
    "[deleted]",
    "this comment was redacted",
    "this comment has been redacted",
    "this content has been redacted",
}
_STUB_MARKS = re.compile(r"[\s.!*_()\[\]]+")
_REDACTION_BLOCKS = re.compile(r"^[\s▇█■*x]+$", re.IGNORECASE)
_NORMALIZED = {_STUB_MARKS.sub(" ", p).strip() for p in _PLACEHOLDERS if p[0] != "["}


def is_placeholder(text: str) -> bool:
    """A deletion stub ("This message was deleted") or text that is nothing but redaction marks
    (Zendesk redacts with ▇ characters)."""
    normalized = _STUB_MARKS.sub(" ", text.lower()).strip()
    bare = text.strip().lower()
    return (
        normalized in _NORMALIZED
        or bare in _PLACEHOLDERS
        or bool(text.strip() and _REDACTION_BLOCKS.match(text) and any(c in text for c in "▇█■"))
    )
