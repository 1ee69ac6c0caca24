"""Help-center documents as the tenant wrote them: Markdown, HTML or plain text, with optional
YAML front matter (id, title, updated, status, superseded_by, url).

Everything becomes Markdown here, because the chunker splits on Markdown headings: HTML
(Zendesk, Intercom and Freshdesk articles are HTML) keeps its headings and tables through
markdownify, and plain text is taken as one section under its title.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import yaml
from markdownify import MarkdownConverter

from core.errors import InvalidError
from core.models.knowledge import CURRENT, SUPERSEDED

SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class DocumentError(InvalidError):
    """A document that cannot be read as given (the message says which and why)."""


@dataclass(frozen=True)
class SourceDocument:
    doc_id: str
    title: str
    body: str  # Markdown
    updated: dt.date | None = None
    status: str = CURRENT
    superseded_by: str | None = None
    url: str | None = None

    @property
    def content_hash(self) -> str:
        """What a re-sync compares: any change to the text or to the metadata re-indexes."""
        parts = [self.doc_id, self.title, self.body, str(self.updated), self.status]
        parts += [self.superseded_by or "", self.url or ""]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class _Converter(MarkdownConverter):
    """markdownify, with what a reader never sees (scripts, styles) dropped whole."""

    def convert_script(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        return ""

    convert_style = convert_script
    convert_noscript = convert_script


def html_to_markdown(html: str) -> str:
    """Headings as ATX (#), tables as pipe tables."""
    text = _Converter(heading_style="ATX", bullets="-").convert(html)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _date(value: Any, where: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise DocumentError(f"{where}: 'updated' is not an ISO date: {value!r}") from None


def make_document(
    *,
    text: str,
    kind: str,
    default_id: str,
    where: str,
    meta: dict[str, Any] | None = None,
) -> SourceDocument:
    """A document from its raw text (``kind``: markdown, html or text) and any metadata a
    provider gave; front matter in the text wins over both."""
    fields = dict(meta or {})
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            front = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise DocumentError(f"{where}: front matter is not valid YAML ({exc})") from None
        if not isinstance(front, dict):
            raise DocumentError(f"{where}: front matter must be a mapping of fields")
        fields.update(front)
        text = text[match.end() :]
    body = html_to_markdown(text) if kind == "html" else text.replace("\r\n", "\n").strip()
    doc_id = str(fields.get("id") or default_id).strip()
    if not _DOC_ID.match(doc_id):
        raise DocumentError(
            f"{where}: document id {doc_id!r} must be letters, digits, '.', '_' or '-' "
            "(at most 200, starting with a letter or digit)"
        )
    heading = _H1.search(body) if kind != "text" else None
    title = str(fields.get("title") or (heading.group(1) if heading else "") or doc_id).strip()
    status = str(fields.get("status") or CURRENT).strip().lower()
    if status not in (CURRENT, SUPERSEDED):
        raise DocumentError(
            f"{where}: status must be '{CURRENT}' or '{SUPERSEDED}', not {status!r}"
        )
    if not body:
        raise DocumentError(f"{where}: the document has no text")
    superseded_by = fields.get("superseded_by")
    url = fields.get("url")
    return SourceDocument(
        doc_id=doc_id,
        title=title[:500],
        body=body,
        updated=_date(fields.get("updated"), where),
        status=status,
        superseded_by=str(superseded_by) if superseded_by else None,
        url=str(url)[:2000] if url else None,
    )


def document_from_file(name: str, raw: bytes, where: str) -> SourceDocument:
    """A file's bytes as a document, its type by its suffix and its default id its stem: for
    a file on disk and an upload alike."""
    suffix = PurePath(name).suffix
    kind = SUFFIXES.get(suffix.lower())
    if kind is None:
        raise DocumentError(
            f"{where}: unsupported file type {suffix!r} (use {', '.join(sorted(SUFFIXES))})"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{where}: not UTF-8 text") from None
    return make_document(text=text, kind=kind, default_id=PurePath(name).stem, where=where)


def read_file(path: Path) -> SourceDocument:
    return document_from_file(path.name, path.read_bytes(), str(path))


def read_tree(root: Path) -> Iterator[SourceDocument]:
    """Every supported file under a folder (hidden files and folders skipped), or one file."""
    if root.is_file():
        yield read_file(root)
        return
    if not root.is_dir():
        raise DocumentError(f"{root}: no such file or folder")
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if path.is_file() and not hidden and path.suffix.lower() in SUFFIXES:
            yield read_file(path)
